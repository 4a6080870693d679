"""`make dist`'s wheel on a node that already has Spark: a plain `pip install` of it leaves the node's
pyspark alone and brings only the `featurestream` package.

A clean venv gets EMR 7's pyspark first, as a cluster node has it, then the wheel. The downloads come
from pip's cache after the first run (pyspark's 318 MB wheel is built once from its sdist); about a
minute then.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# EMR 7.x's Spark rather than the lock's 3.5.7: a pin or a narrower range in the wheel would replace it.
CLUSTER_PYSPARK = "3.5.6"
# Top-level modules of the layout before one namespace; none may come back with the wheel.
OLD_TOP_LEVEL = ("connectors", "jobs", "local_stack")


def _env() -> dict[str, str]:
    # Nothing of the checkout or of the test's own venv may leak into the node's interpreter.
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "FEATURESTREAM_HOME"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run(args: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    return result.stdout


def build_wheel(out: Path) -> Path:
    """The wheel as `make dist` builds it, from a copy of the sources (nothing left over in build/)."""
    src = out / "src"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "featurestream", src / "featurestream",
                    ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
    _ok(_run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
              "--wheel-dir", str(out / "dist"), str(src)], cwd=out))
    (wheel,) = (out / "dist").glob("featurestream-*.whl")
    return wheel


def test_wheel_installs_beside_the_clusters_pyspark(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    top_level = {name.split("/", 1)[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert top_level == {"featurestream", wheel.name.split("-py3")[0] + ".dist-info"}

    node = tmp_path / "node"
    _ok(_run([sys.executable, "-m", "venv", str(node)], cwd=tmp_path))
    python, pip = str(node / "bin" / "python"), str(node / "bin" / "pip")
    _ok(_run([pip, "install", "-q", "--upgrade", "pip>=24"], cwd=tmp_path))
    _ok(_run([pip, "install", "-q", f"pyspark=={CLUSTER_PYSPARK}"], cwd=tmp_path))
    versions = [python, "-I", "-c", "from importlib.metadata import version as v; print(v('pyspark'), v('py4j'))"]
    before = _ok(_run(versions, cwd=tmp_path)).split()
    (record,) = node.glob("lib/python*/site-packages/pyspark-*.dist-info/RECORD")
    installed_at = record.stat().st_mtime_ns

    out = _ok(_run([pip, "install", str(wheel)], cwd=tmp_path))

    assert before[0] == CLUSTER_PYSPARK
    assert _ok(_run(versions, cwd=tmp_path)).split() == before
    assert record.stat().st_mtime_ns == installed_at  # not even reinstalled at the same version
    (installed,) = [line for line in out.splitlines() if line.startswith("Successfully installed")]
    assert "featurestream-" in installed
    assert not [p for p in installed.split()[2:] if p.lower().startswith(("pyspark-", "py4j-"))], installed

    # Run from the temporary folder with -I: only the installed wheel can answer these imports.
    _ok(_run([python, "-I", "-c", "import featurestream.cli, featurestream.connectors.online_store"], cwd=tmp_path))
    _ok(_run([str(node / "bin" / "featurestream"), "--help"], cwd=tmp_path))
    for module in OLD_TOP_LEVEL:
        result = _run([python, "-I", "-c", f"import {module}"], cwd=tmp_path)
        assert result.returncode == 1 and f"No module named '{module}'" in result.stderr, (module, result.stderr)
