"""Fixtures of the compaction suite: a private Feature Store emulator writing the offline store
to a local folder, a private moto S3 server, and helpers to build targets and settings."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from featurestream import iceberg as iceberg_catalog
from featurestream.compaction import CompactionSettings, FeatureGroupTarget, TableRef
from featurestream.compaction.schema import offline_schema
from featurestream.compaction.table import table_name_for
from featurestream.config import load_profile
from featurestream.connectors.offline_store import StoreUri
from featurestream.dev.feature_store import EmulatorProcess
from featurestream.iceberg import IcebergCatalog
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


NAMESPACE = "compaction_tests"


def table_ref(name: str, output: StoreUri) -> TableRef:
    """One table per output folder: tests compact one group into several outputs."""
    suffix = hashlib.sha256(str(output).encode()).hexdigest()[:8]
    return TableRef("featurestream", NAMESPACE, f"{table_name_for(name)}_{suffix}", output)


def target_for(group: Group, source: StoreUri, output: Path | StoreUri, *, by_path: bool = False) -> FeatureGroupTarget:
    out = output if isinstance(output, StoreUri) else StoreUri.parse(output)
    schema = None if by_path else offline_schema(group.description["FeatureDefinitions"])
    return FeatureGroupTarget(group.name, source, out, "id", "ts", schema, table_ref(group.name, out))


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


@pytest.fixture(scope="session")
def catalog(spark: Any) -> Iterator[IcebergCatalog]:
    """The local profile's catalog (JDBC on the stack's PostgreSQL, started if it is not up) on the
    test session."""
    from featurestream.dev.stack import manager

    before = {s.name for s in manager.status(["postgres"]) if s.healthy}
    manager.up(["postgres"])
    found = iceberg_catalog.from_profile(load_profile("local"))
    iceberg_catalog.configure_session(spark, found)
    yield found
    if "postgres" not in before:
        manager.down(["postgres"])


def renamed(catalog: IcebergCatalog, name: str) -> IcebergCatalog:
    """The same catalog under another Spark name. Spark's Iceberg catalog takes the session's S3A
    settings when it is first used: one configured after S3A knows a new bucket reaches it."""
    return dataclasses.replace(catalog, spec=catalog.spec.model_copy(update={"name": name}))


def iceberg(catalog: IcebergCatalog, ref: TableRef) -> Any:
    """The table as pyiceberg reads it from the catalog: no featurestream code between."""
    return iceberg_catalog.load_catalog(catalog).load_table(f"{ref.namespace}.{ref.name}")
