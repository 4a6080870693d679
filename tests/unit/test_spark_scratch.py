"""scripts/with-spark-scratch: Spark's scratch space per run, gone when the run ends whatever its exit."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _script_in(tmp_path: Path) -> Path:
    # A copy under tmp_path, so its build/scratch is not the one the running suite uses.
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "with-spark-scratch"
    shutil.copy2(ROOT / "scripts" / "with-spark-scratch", script)
    return script


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_command_gets_a_fresh_dir_that_is_removed_and_its_exit_code_kept(tmp_path: Path) -> None:
    script = _script_in(tmp_path)
    body = 'echo "$SPARK_LOCAL_DIRS"; touch "$SPARK_LOCAL_DIRS/blockmgr-x"; exit 3'
    run = subprocess.run([str(script), "bash", "-c", body], capture_output=True, text=True, check=False)
    assert run.returncode == 3, run.stderr
    used = Path(run.stdout.strip())
    assert used.parent == tmp_path / "build" / "scratch"
    assert not used.exists()


def test_folders_of_runs_that_died_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    script = _script_in(tmp_path)
    scratch = tmp_path / "build" / "scratch"
    stale = scratch / str(_dead_pid())
    live = scratch / "1"  # init: always alive
    for folder in (stale, live):
        (folder / "spark-x").mkdir(parents=True)
    run = subprocess.run([str(script), "true"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert not stale.exists()
    assert live.exists()
