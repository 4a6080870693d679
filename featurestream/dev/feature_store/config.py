"""Emulator settings: command-line flags, each defaulting to env FEATURESTREAM_FS_<FLAG>."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from featurestream.dev.feature_store.faults import FaultSettings
from featurestream.dev.feature_store.iceberg_offline import CRASH_POINTS

DEFAULT_PORT = 18080
ACCOUNT_ID = "123456789012"


class ConfigError(ValueError):
    """A flag or FEATURESTREAM_FS_* variable has an invalid value."""


@dataclass(frozen=True)
class EmulatorConfig:
    host: str
    port: int
    state_dir: Path
    offline_local_dir: Path | None
    flush_interval_s: float
    region: str
    account_id: str
    faults: FaultSettings
    request_timeout_s: float = 30.0
    idle_timeout_s: float = 120.0
    workers: int = 32
    # The profile (name or file) whose `catalog:` holds Iceberg offline stores; None = no Iceberg.
    catalog_profile: str | None = None
    # Test-only: SIGKILL the process at this point of an Iceberg flush (iceberg_offline.CRASH_POINTS).
    crash_point: str | None = None


def _env(env: Mapping[str, str], flag: str) -> str | None:
    return env.get("FEATURESTREAM_FS_" + flag.upper().replace("-", "_"))


def parse_args(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> EmulatorConfig:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="python -m featurestream.dev.feature_store",
        description="SageMaker Feature Store emulator (control plane + runtime + offline store).",
    )

    def flag(name: str, default: object, help_text: str, kind: type = str) -> None:
        parser.add_argument(
            f"--{name}", type=kind, default=_env(env, name) or default,
            help=f"{help_text} (env FEATURESTREAM_FS_{name.upper().replace('-', '_')})",
        )

    port_default = env.get("FEATURESTREAM_FEATURE_STORE_PORT") or DEFAULT_PORT
    flag("host", "127.0.0.1", "address to bind")
    flag("port", port_default, "port to bind; 0 picks a free one (see <state-dir>/endpoint.json)", int)
    flag("state-dir", os.path.join(os.getcwd(), ".state", "feature-store"), "SQLite and logs")
    flag("offline-local-dir", None, "write the offline store here (s3://b/k -> DIR/b/k) instead of S3")
    flag("flush-interval-s", 5.0, "seconds between offline-store flushes", float)
    flag("latency-ms", 0.0, "latency added to every runtime call", float)
    flag("throttle-rate", 0.0, "fraction of runtime calls answered with ThrottlingException", float)
    flag("error-rate", 0.0, "fraction of runtime calls answered with a 5xx", float)
    flag("unprocessed-rate", 0.0, "fraction of batch entries returned unprocessed", float)
    flag("record-write-limit", None, "writes per second allowed per record identifier", int)
    flag("seed", 0, "seed of every injected fault", int)
    flag("request-timeout-s", 30.0, "seconds a request may take to arrive before it is answered 408", float)
    flag("idle-timeout-s", 120.0, "seconds an idle keep-alive connection is kept open", float)
    flag("workers", 32, "threads that handle requests (idle or slow connections take none)", int)
    flag("catalog-profile", None, "environment profile (name or file) whose Iceberg catalog holds TableFormat "
         "Iceberg offline stores")
    args = parser.parse_args(argv)

    for rate in ("throttle_rate", "error_rate", "unprocessed_rate"):
        value = float(getattr(args, rate))
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"--{rate.replace('_', '-')} must be between 0 and 1, got {value}")
    if float(args.flush_interval_s) <= 0:
        raise ConfigError("--flush-interval-s must be positive")
    limit = args.record_write_limit
    if limit is not None and int(limit) < 1:
        raise ConfigError("--record-write-limit must be at least 1")
    for timeout in ("request_timeout_s", "idle_timeout_s"):
        if float(getattr(args, timeout)) <= 0:
            raise ConfigError(f"--{timeout.replace('_', '-')} must be positive")
    if not 1 <= int(args.workers) <= 1024:
        raise ConfigError("--workers must be between 1 and 1024")
    crash_point = env.get("FEATURESTREAM_FS_CRASH_POINT") or None
    if crash_point is not None and crash_point not in CRASH_POINTS:
        raise ConfigError(f"FEATURESTREAM_FS_CRASH_POINT must be one of {', '.join(CRASH_POINTS)}")
    return EmulatorConfig(
        host=str(args.host),
        port=int(args.port),
        state_dir=Path(args.state_dir),
        offline_local_dir=Path(args.offline_local_dir) if args.offline_local_dir else None,
        flush_interval_s=float(args.flush_interval_s),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        account_id=env.get("FEATURESTREAM_FS_ACCOUNT_ID") or ACCOUNT_ID,
        faults=FaultSettings(
            latency_ms=float(args.latency_ms),
            throttle_rate=float(args.throttle_rate),
            error_rate=float(args.error_rate),
            unprocessed_rate=float(args.unprocessed_rate),
            record_write_limit=int(limit) if limit is not None else None,
            seed=int(args.seed),
        ),
        request_timeout_s=float(args.request_timeout_s),
        idle_timeout_s=float(args.idle_timeout_s),
        workers=int(args.workers),
        catalog_profile=str(args.catalog_profile) if args.catalog_profile else None,
        crash_point=crash_point,
    )
