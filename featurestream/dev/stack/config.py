"""The stack's settings: state directory, ports and region, read once from the environment.

Each port is overridable by `FEATURESTREAM_<NAME>_PORT` (NAME upper-cased, `-` as `_`), so a test
run can take a private set of ports next to a stack on the defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from featurestream.dev.stack import paths
from featurestream.dev.stack.errors import StackConfigError

ACCOUNT_ID = "123456789012"
LOOPBACK = "127.0.0.1"
DEFAULT_REGION = "us-east-1"

DEFAULT_PORTS: dict[str, int] = {
    "kafka": 19092,
    "kafka-controller": 19093,
    "kinesis": 14567,
    "kinesis-tls": 14568,
    "s3": 15000,
    "postgres": 15432,
    "feature-store": 18080,
    "pushgateway": 19091,
}


def port_env_var(name: str) -> str:
    """`feature-store` -> `FEATURESTREAM_FEATURE_STORE_PORT`."""
    return f"FEATURESTREAM_{name.upper().replace('-', '_')}_PORT"


def _parse_port(var: str, raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise StackConfigError(f"{var}={raw!r}: not an integer port") from None
    if not 1 <= port <= 65535:
        raise StackConfigError(f"{var}={port}: port must be within 1..65535")
    return port


def ports_from_env(environ: Mapping[str, str]) -> dict[str, int]:
    """The default ports with every FEATURESTREAM_<NAME>_PORT override applied."""
    ports = dict(DEFAULT_PORTS)
    for name in ports:
        var = port_env_var(name)
        if environ.get(var):
            ports[name] = _parse_port(var, environ[var])
    clashes = {p for p in ports.values() if list(ports.values()).count(p) > 1}
    if clashes:
        taken = ", ".join(f"{n}={p}" for n, p in ports.items() if p in clashes)
        raise StackConfigError(f"two services configured on the same port: {taken}")
    return ports


@dataclass(frozen=True)
class StackConfig:
    """Everything a service needs to know to start, be checked, or be described."""

    state_dir: Path
    root: Path
    region: str = DEFAULT_REGION
    ports: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StackConfig:
        env = os.environ if environ is None else environ
        state = env.get(paths.STATE_DIR_ENV)
        home = env.get(paths.HOME_ENV)
        return cls(
            state_dir=Path(state).resolve() if state else (Path.cwd() / ".state").resolve(),
            root=Path(home).resolve() if home else paths.project_root(),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
            ports=ports_from_env(env),
        )

    def port(self, name: str) -> int:
        return self.ports[name]

    def service_dir(self, service: str) -> Path:
        """`<state>/<service>`: the service's pid file, log and data live here."""
        return self.state_dir / service

    def url(self, name: str) -> str:
        return f"http://{LOOPBACK}:{self.port(name)}"

    def aws_env(self) -> dict[str, str]:
        """Dummy credentials and region: local services accept anything, clients need something."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }
