"""A private Feature Store emulator per suite: a real subprocess on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from featurestream.dev.feature_store import EmulatorProcess


@contextmanager
def running_emulator(base: Path, **options: Any) -> Iterator[EmulatorProcess]:
    """State under `base/state`, the offline store in `base/offline`.

    The flush timer is an hour by default: tests flush the offline store explicitly, so nothing
    depends on timing.
    """
    options.setdefault("offline_local_dir", base / "offline")
    options.setdefault("flush_interval_s", 3600)
    emulator = EmulatorProcess(base / "state", **options)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
