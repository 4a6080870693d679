"""Writer suite fixtures: private Feature Store emulators (real HTTP) with fault options."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from featurestream.dev.feature_store import EmulatorProcess
from tests.emulators import running_emulator

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """A clean, fault-free emulator shared by the tests that inject nothing."""
    with running_emulator(tmp_path_factory.mktemp("writer-emulator")) as emu:
        yield emu


@pytest.fixture
def emulator_factory(tmp_path: Path) -> Iterator[Callable[..., EmulatorProcess]]:
    """Emulators with fault options (throttle_rate, error_rate, latency_ms, ...), stopped at teardown."""
    started: list[EmulatorProcess] = []

    def start(**options: Any) -> EmulatorProcess:
        base = tmp_path / f"emu{len(started)}"
        options.setdefault("offline_local_dir", base / "offline")
        options.setdefault("flush_interval_s", 3600)
        emu = EmulatorProcess(base / "state", **options)
        started.append(emu)
        return emu.start()

    yield start
    for emu in started:
        emu.stop()
