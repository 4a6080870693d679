"""Fixtures of the compaction suite: a private Feature Store emulator writing the offline store
to a local folder, a private moto S3 server, and helpers to build targets and settings."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from featurestream.compaction import CompactionSettings, FeatureGroupTarget
from featurestream.compaction.schema import offline_schema
from featurestream.connectors.offline_store import StoreUri
from featurestream.dev.feature_store import EmulatorProcess
from tests.compaction.data import Group, region
from tests.emulators import running_emulator


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with running_emulator(tmp_path_factory.mktemp("compaction-emulator")) as emu:
        yield emu


@pytest.fixture(scope="session")
def offline_root(emulator: EmulatorProcess) -> Path:
    return Path(emulator.options["offline_local_dir"])


def source_of(group: Group, offline_root: Path) -> StoreUri:
    """Where the emulator put this group's `s3://…/data` prefix on disk."""
    return StoreUri.parse(offline_root / group.resolved_uri.removeprefix("s3://"))


def target_for(group: Group, source: StoreUri, output: Path | StoreUri, *, by_path: bool = False) -> FeatureGroupTarget:
    out = output if isinstance(output, StoreUri) else StoreUri.parse(output)
    schema = None if by_path else offline_schema(group.description["FeatureDefinitions"])
    return FeatureGroupTarget(group.name, source, out, "id", "ts", schema)


def settings(**overrides: Any) -> CompactionSettings:
    base: dict[str, Any] = {"target_file_bytes": 64 * 1024, "gc_grace_s": 0.0, "stale_after_s": 60.0,
                            "heartbeat_s": 5.0, "region": region()}
    base.update(overrides)
    return CompactionSettings(**base)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """A private moto server on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_env(moto_s3: str) -> Iterator[dict[str, str]]:
    """AWS_ENDPOINT_URL_S3 pointing at the private moto server for the duration of a test."""
    saved = os.environ.get("AWS_ENDPOINT_URL_S3")
    os.environ["AWS_ENDPOINT_URL_S3"] = moto_s3
    yield {"AWS_ENDPOINT_URL_S3": moto_s3}
    if saved is None:
        os.environ.pop("AWS_ENDPOINT_URL_S3", None)
    else:
        os.environ["AWS_ENDPOINT_URL_S3"] = saved


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name=region())
