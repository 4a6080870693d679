"""Which checkpoint holds a feature group's state, checked before any query starts.

A job reads each source once, in one query whose checkpoint holds the state of every group on
that source (`featurestream.engine.pipeline`): `<checkpoint_root>/<group>/features` for a group
alone, `<checkpoint_root>/<g1>+<g2>.../features` for several. Two layouts would silently lose
state, so both stop the job with exit 2 and one line saying what to do:

- the two-query layout of before (a `dlq` query checkpoint beside `features`): its DLQ query kept
  its own offsets; see docs/operations.md, "Checkpoint layout", for the one-step migration;
- a group whose state is in the checkpoint of another set of groups (run alone before, now with
  others, or the other way round): a new combination would start from an empty state.
- several groups' checkpoint with one state operator per group (before all groups of a source
  shared one, keyed by group and entity): the one operator would read the first group's state only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from featurestream.errors import ConfigError
from featurestream.io import hadoop_fs, paths
from featurestream.ops.checkpoints import recorded_conf

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def _has_batches(spark: SparkSession, checkpoint: str) -> bool:
    return recorded_conf(spark, checkpoint) is not None


def check_layout(spark: SparkSession, root: str, dlq_root: str, groups: Sequence[str], profile_file: str) -> None:
    """Raise ConfigError when a group's state is in an old-layout or another job's checkpoint.

    `groups`: the names of the groups of one source query (its key is their sorted names joined by +).
    """
    key = "+".join(sorted(groups))
    for group in groups:
        old_dlq = paths.join(root, group, "dlq")
        # Spark's file sink log: Spark readers of the folder would see only the files it lists.
        old_sink = paths.join(dlq_root, group, "events", "_spark_metadata")
        if _has_batches(spark, old_dlq) or hadoop_fs.exists(spark, old_sink):
            raise ConfigError(
                profile_file, "checkpoint_root",
                f"{paths.join(root, group)} has the two-query layout of before (a DLQ query with its own "
                f"checkpoint {old_dlq} and file sink {paths.join(dlq_root, group, 'events')}); the job now reads "
                "the source once: stop the old job, move both away and start again (docs/operations.md, "
                "'Checkpoint layout')")
    # Spark names a query's state operators 0, 1, ... in the checkpoint: a second one is the old layout.
    per_group = paths.join(root, key, "features", "state", "1")
    if len(groups) > 1 and hadoop_fs.exists(spark, per_group):
        raise ConfigError(
            profile_file, "checkpoint_root",
            f"{paths.join(root, key, 'features')} has one state operator per group (the layout before all "
            "groups of a source shared one): stop the old job, use a new checkpoint_root and backfill the "
            "groups (docs/operations.md, 'Checkpoint layout')")
    for found in hadoop_fs.glob(spark, paths.join(root, "*", "features", "offsets")):
        name = found.rsplit("/features/offsets", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        shared = sorted(set(name.split("+")) & set(groups))
        if name == key or not shared or not _has_batches(spark, paths.join(root, name, "features")):
            continue
        raise ConfigError(
            profile_file, "checkpoint_root",
            f"the state of {', '.join(shared)} is in {paths.join(root, name)}, the checkpoint of a job of "
            f"{' + '.join(name.split('+'))} on the same source; this job ({' + '.join(sorted(groups))}) would "
            "start it from nothing: run the groups as before, or use a new checkpoint_root and backfill")
