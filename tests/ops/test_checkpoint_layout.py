"""The checkpoint layout guard: an old two-query checkpoint, a group's state in another job's
checkpoint, or several groups' checkpoint with one state operator per group, stops the job with one
line (exit 2) before any query starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from featurestream.errors import ConfigError
from featurestream.ops.checkpoint_layout import check_layout

# An offset-log entry as Spark writes it (version, metadata, one source's offsets).
ENTRY = 'v1\n{"batchWatermarkMs":0,"batchTimestampMs":1,"conf":{"spark.sql.shuffle.partitions":"2"}}\n{"t":{"0":5}}\n'


def _batch(checkpoint: Path) -> None:
    (checkpoint / "offsets").mkdir(parents=True)
    (checkpoint / "offsets" / "0").write_text(ENTRY)


def test_old_layout_and_moved_groups_exit_2(spark: Any, tmp_path: Path) -> None:
    root, dlq = tmp_path / "checkpoints", tmp_path / "dlq"
    _batch(root / "a" / "features")
    check_layout(spark, str(root), str(dlq), ["a"], "local.yaml")  # the one-group layout, unchanged

    _batch(root / "a" / "dlq")  # the DLQ query of before
    with pytest.raises(ConfigError, match=r"local.yaml: checkpoint_root: .*/a has the two-query layout of before"):
        check_layout(spark, str(root), str(dlq), ["a"], "local.yaml")

    # a's state is in a's own checkpoint: a job of a + b would start a from nothing.
    (root / "a" / "dlq").rename(tmp_path / "dlq-v1")
    with pytest.raises(ConfigError, match=r"the state of a is in .*/a, the checkpoint of a job of a on the same"):
        check_layout(spark, str(root), str(dlq), ["b", "a"], "local.yaml")
    check_layout(spark, str(root), str(dlq), ["b"], "local.yaml")  # b alone shares nothing with it

    # a + b's checkpoint with one state operator per group (before they shared one), and the new one.
    _batch(root / "a+b" / "features")
    (root / "a+b" / "features" / "state" / "0" / "0").mkdir(parents=True)
    (root / "a").rename(tmp_path / "a-alone")
    check_layout(spark, str(root), str(dlq), ["a", "b"], "local.yaml")
    (root / "a+b" / "features" / "state" / "1" / "0").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"local.yaml: checkpoint_root: .*/a\+b/features has one state operator "
                                          r"per group \(the layout before all groups of a source shared one\): stop "
                                          r"the old"):
        check_layout(spark, str(root), str(dlq), ["b", "a"], "local.yaml")
