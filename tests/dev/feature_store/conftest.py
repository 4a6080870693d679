"""Fixtures for the Feature Store emulator conformance suite.

The emulator runs as a real subprocess on a free loopback port with a temporary state
directory; every test talks to it over HTTP with boto3. Tests that restart it or inject faults
start their own instance (`emulator_factory`), so the shared one stays clean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from featurestream.dev.feature_store import EmulatorProcess
from tests.dev.feature_store.helpers import (
    DEFAULT_FEATURES,
    UNVALIDATED,
    runtime_client,
    sagemaker_client,
    unique_name,
)
from tests.emulators import running_emulator


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with running_emulator(tmp_path_factory.mktemp("feature-store")) as emu:
        yield emu


@pytest.fixture(scope="session")
def offline_dir(emulator: EmulatorProcess) -> Path:
    return Path(emulator.options["offline_local_dir"])


@pytest.fixture(scope="session")
def sm(emulator: EmulatorProcess) -> Any:
    return sagemaker_client(emulator.url)


@pytest.fixture(scope="session")
def rt(emulator: EmulatorProcess) -> Any:
    return runtime_client(emulator.url)


@pytest.fixture(scope="session")
def sm_raw(emulator: EmulatorProcess) -> Any:
    """A control-plane client without botocore's parameter validation."""
    return sagemaker_client(emulator.url, UNVALIDATED)


@pytest.fixture(scope="session")
def rt_raw(emulator: EmulatorProcess) -> Any:
    """A runtime client without botocore's parameter validation."""
    return runtime_client(emulator.url, UNVALIDATED)


@pytest.fixture
def make_group(sm: Any) -> Callable[..., dict[str, Any]]:
    """Create a feature group (defaults: online + offline, String event time); returns Describe."""

    def create(
        features: list[dict[str, Any]] | None = None,
        *,
        name: str | None = None,
        online: dict[str, Any] | None = None,
        offline: bool = True,
        event_time: str = "ts",
        client: Any = None,
    ) -> dict[str, Any]:
        client = client or sm
        name = name or unique_name()
        kwargs: dict[str, Any] = {
            "FeatureGroupName": name,
            "RecordIdentifierFeatureName": "id",
            "EventTimeFeatureName": event_time,
            "FeatureDefinitions": features or DEFAULT_FEATURES,
            "OnlineStoreConfig": online if online is not None else {"EnableOnlineStore": True},
        }
        if offline:
            kwargs["OfflineStoreConfig"] = {"S3StorageConfig": {"S3Uri": "s3://offline-bucket/conformance"}}
        client.create_feature_group(**kwargs)
        return dict(client.describe_feature_group(FeatureGroupName=name))

    return create


@pytest.fixture
def emulator_factory(tmp_path: Path) -> Iterator[Callable[..., EmulatorProcess]]:
    """Start extra emulators (own state dir, own options); all are stopped at teardown."""
    started: list[EmulatorProcess] = []

    def start(**options: Any) -> EmulatorProcess:
        base = tmp_path / f"emu{len(started)}"
        if "offline_local_dir" not in options:
            options["offline_local_dir"] = base / "offline"
        options.setdefault("flush_interval_s", 3600)
        env = options.pop("env", None)
        emu = EmulatorProcess(base / "state", env=env, **options)
        started.append(emu)
        return emu.start()

    yield start
    for emu in started:
        emu.stop()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """moto's S3 server on a free loopback port (the emulator's offline store without a local dir)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
