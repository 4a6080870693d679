"""The layer contracts of `.importlinter` hold, and they catch a wrong-way import.

The second test copies the package, adds one import of the engine into a connector module (the
kind of shortcut the layers forbid) and expects lint-imports to fail on exactly that contract.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(LINT), "--no-cache", str(cwd / ".importlinter")], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "featurestream", tmp_path / "featurestream",
                    ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def test_contracts_kept(tmp_path: Path) -> None:
    done = _lint(_copy(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout


def test_connector_importing_the_engine_breaks_the_layers(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    sink = tree / "featurestream/connectors/offline_store.py"
    sink.write_text(sink.read_text() + "\nfrom featurestream.engine import pipeline  # noqa\n")
    done = _lint(tree)
    assert done.returncode != 0
    assert "featurestream.connectors.offline_store -> featurestream.engine.pipeline" in done.stdout
    assert "BROKEN" in done.stdout
