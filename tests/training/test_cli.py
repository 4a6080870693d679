"""The entry points end to end, in their own processes: `spark-submit jobs/build_training_set.py`
(exit 0, progress display, manifest, the password nowhere in output) and `featurestream
training-set` failing with exit 1 on a missing feature path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.training.conftest import Loaded

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    return {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
            "SPARK_LOCAL_IP": "127.0.0.1"}


def _config(loaded: Loaded, tmp_path: Path, **overrides: Any) -> Path:
    spec = loaded.spec(**overrides)
    spec.pop("name")
    # As a user writes it: the URL and the secret file come from the environment.
    spec["labels"]["jdbc"] = {"url": "${FEATURESTREAM_JDBC_URL}",
                              "password_file": "${FEATURESTREAM_JDBC_PASSWORD_FILE}"}
    path = tmp_path / "fraud_cli.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_missing_feature_path_exits_1(loaded: Loaded, tmp_path: Path) -> None:
    groups = loaded.spec()["feature_groups"]
    groups[0] = {**groups[0], "path": str(tmp_path / "no-such-group")}
    config = _config(loaded, tmp_path, feature_groups=groups, output={"path": str(tmp_path / "set")})
    done = subprocess.run([str(VENV_BIN / "featurestream"), "training-set", "--config", str(config), "--no-progress"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr[-3000:]
    assert f"featurestream: cannot read feature Parquet at {tmp_path / 'no-such-group'}" in done.stderr
