"""Settings a streaming checkpoint fixes for good, checked before any query starts.

Spark records `spark.sql.shuffle.partitions` (and the state store provider) in every offset-log
entry and, on restart, silently uses the recorded value instead of the configured one: state is
partitioned by it. A profile that says otherwise is a configuration error, so we stop with one
line that names the profile field, the checkpoint and both values.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from featurestream.errors import ConfigError
from featurestream.io import hadoop_fs, paths

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"
STATE_PROVIDER = "spark.sql.streaming.stateStore.providerClass"


@dataclass(frozen=True)
class CheckpointConf:
    path: str
    batch_id: int
    conf: dict[str, str]


def parse_offset_entry(text: str) -> dict[str, str]:
    """The Spark conf recorded in an offset-log entry (`v1`, metadata JSON, source offsets...)."""
    lines = text.splitlines()
    if len(lines) < 2 or not lines[0].startswith("v"):
        return {}
    try:
        metadata = json.loads(lines[1])
    except ValueError:
        return {}
    conf = metadata.get("conf") if isinstance(metadata, dict) else None
    return {str(k): str(v) for k, v in conf.items()} if isinstance(conf, dict) else {}


def recorded_conf(spark: SparkSession, checkpoint: str) -> CheckpointConf | None:
    """The conf of the newest offset-log entry of `checkpoint`; None for a new checkpoint."""
    offsets = paths.join(checkpoint, "offsets")
    batches = [int(name) for name in hadoop_fs.list_names(spark, offsets) if name.isdigit()]
    if not batches:
        return None
    newest = max(batches)
    entry = hadoop_fs.read_text(spark, paths.join(offsets, str(newest)))
    return CheckpointConf(checkpoint, newest, parse_offset_entry(entry))


def checkpoints_under(spark: SparkSession, root: str) -> list[str]:
    """Query checkpoints at `root` or one or two levels below it (one per query of a group)."""
    found: list[str] = []
    for pattern in ("offsets", "*/offsets", "*/*/offsets"):
        found += [path.rsplit("/offsets", 1)[0] for path in hadoop_fs.glob(spark, paths.join(root, pattern))]
    return sorted(set(found))


def check_fixed_settings(spark: SparkSession, roots: list[str], shuffle_partitions: int, profile_file: str) -> None:
    """Raise ConfigError when a checkpoint under `roots` was made with other shuffle partitions."""
    for root in roots:
        for checkpoint in checkpoints_under(spark, root):
            recorded = recorded_conf(spark, checkpoint)
            if recorded is None:
                continue
            value = recorded.conf.get(SHUFFLE_PARTITIONS)
            if value is not None and value.isdigit() and int(value) != shuffle_partitions:
                raise ConfigError(
                    profile_file, "spark.shuffle_partitions",
                    f"is {shuffle_partitions} but the checkpoint {checkpoint} was made with {value} (Spark keeps "
                    f"the checkpoint's value: state is partitioned by it); set it back to {value}, or use a new "
                    "checkpoint_root and replay the source",
                )
            provider = recorded.conf.get(STATE_PROVIDER)
            configured = spark.conf.get(STATE_PROVIDER, None)
            if provider and configured and provider != configured:
                log.warning(json.dumps({"event": "state_store_fixed_by_checkpoint", "checkpoint": checkpoint,
                                        "recorded": provider, "configured": configured}))
