"""The definition's values as of each online record's EventTime, computed by the backfill's engine.

The backfill runs unchanged (`featurestream.backfill.job.run_backfill`: the stream's transforms and
tile engine in history mode, a record at every event and decay boundary) over the whole source
range into a scratch folder; the value as of T is then the entity's newest history record at or
before T. It runs over every entity of the range, not only the sample: the engine's clock
(watermark, decay boundaries) is global, so an entity's record depends on the others' event times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from featurestream.backfill.job import BackfillRequest, run_backfill
from featurestream.backfill.sources import EventSource
from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.config.profile import EnvironmentProfile
from featurestream.io import paths

_AS_OF = "_fs_as_of_ms"


@dataclass(frozen=True)
class Recompute:
    spec: FeatureGroupSpec
    spec_file: str
    profile: EnvironmentProfile
    source: EventSource
    start: datetime
    end: datetime
    chunk_ms: int
    work: str  # scratch folder: the backfill's work and output; the caller removes it


def event_ms(column: str) -> Any:
    """An offline row's EventTime (ISO-8601 text, a timestamp or Unix seconds) as epoch ms."""
    return F.floor(F.unix_micros(F.col(f"`{column}`").cast(T.TimestampType())) / 1000).cast("long")


def values_as_of(spark: SparkSession, job: Recompute, as_of: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Per entity of `as_of` (entity → EventTime ms), the recomputed record at that time."""
    spec = job.spec
    profile = job.profile.model_copy(update={"checkpoint_root": paths.join(job.work, "checkpoints"),
                                             "dlq_path": paths.join(job.work, "dlq")})
    data_root = paths.join(job.work, "history", "data")
    request = BackfillRequest(spec, job.spec_file, profile, job.source, job.start, job.end, job.chunk_ms,
                              data_root, restart=True)
    result = run_backfill(spark, request)
    if not result.records or not as_of:
        return {}
    key, event_time = spec.entity.key, spec.event_time.field
    wanted = spark.createDataFrame([(k, v) for k, v in as_of.items()], f"{key} string, {_AS_OF} long")
    history = (spark.read.parquet(data_root)
               .withColumn(key, F.col(f"`{key}`").cast("string"))
               .withColumn("_fs_event_ms", event_ms(event_time)))
    joined = history.join(F.broadcast(wanted), key).where(F.col("_fs_event_ms") <= F.col(_AS_OF))
    from pyspark.sql import Window

    newest = Window.partitionBy(key).orderBy(F.col("_fs_event_ms").desc())
    rows = (joined.withColumn("_fs_rank", F.row_number().over(newest)).where("_fs_rank = 1")
            .drop("_fs_rank", _AS_OF).collect())
    return {str(r[key]): r.asDict() for r in rows}
