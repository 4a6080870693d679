"""Checkpoints on the local disk are written with plain renames (no chmod/readlink process per file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from featurestream.io.checkpoint_files import MANAGER_KEY, RENAME_MANAGER, use_rename_on_local_disk


@pytest.fixture
def clean_conf(spark: Any) -> Any:
    spark.conf.unset(MANAGER_KEY)
    yield spark
    spark.conf.unset(MANAGER_KEY)


def test_local_roots_get_plain_renames(clean_conf: Any, tmp_path: Path) -> None:
    for root in (str(tmp_path / "checkpoints"), f"file://{tmp_path}/checkpoints", f"file:{tmp_path}/c"):
        clean_conf.conf.unset(MANAGER_KEY)
        assert use_rename_on_local_disk(clean_conf, root) is True
        assert clean_conf.conf.get(MANAGER_KEY) == RENAME_MANAGER


def test_other_file_systems_keep_sparks_default(clean_conf: Any, tmp_path: Path) -> None:
    # A session reused for a checkpoint elsewhere goes back to Spark's default.
    use_rename_on_local_disk(clean_conf, str(tmp_path))
    assert use_rename_on_local_disk(clean_conf, "hdfs://127.0.0.1:1/checkpoints") is False
    assert clean_conf.conf.get(MANAGER_KEY, None) is None


def test_a_class_the_session_names_wins(clean_conf: Any, tmp_path: Path) -> None:
    theirs = "org.apache.spark.sql.execution.streaming.FileContextBasedCheckpointFileManager"
    clean_conf.conf.set(MANAGER_KEY, theirs)
    assert use_rename_on_local_disk(clean_conf, str(tmp_path)) is False
    assert clean_conf.conf.get(MANAGER_KEY) == theirs


def test_the_jobs_session_writes_local_checkpoints_with_renames(clean_conf: Any, tmp_path: Path) -> None:
    from featurestream.cli.job_session import job_session
    from featurestream.config import load_profile

    profile = load_profile("local").model_copy(update={"checkpoint_root": str(tmp_path / "checkpoints")})
    session, _ = job_session("checkpoint-files-test", profile, (profile.checkpoint_root,))
    assert session.conf.get(MANAGER_KEY) == RENAME_MANAGER
