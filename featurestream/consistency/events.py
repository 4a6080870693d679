"""The source's events as the engine sees them before its state: valid, transformed (no dedupe).

Sampling and the `in_flight` rule read them; the recompute itself goes through the backfill, which
applies the same rules on its own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from featurestream.backfill.sources import EventSource
from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.engine.parsing import usable
from featurestream.engine.transforms import stateless_steps, step_transform

ENTITY, EVENT_MS = "_fs_entity", "_fs_event_ms"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def engine_events(spark: SparkSession, spec: FeatureGroupSpec, source: EventSource, start: datetime,
                  end: datetime) -> DataFrame:
    """(entity as text, event time in ms) of every event that reaches the engine."""
    frame = source.read(spark, spec, start, end)
    frame = frame.where(usable(spec, frame))
    for step in stateless_steps(spec):
        frame = frame.transform(step_transform(step, spec))
    return frame.select(F.col(f"`{spec.entity.key}`").cast("string").alias(ENTITY),
                        F.floor(F.unix_micros(F.col(f"`{spec.event_time.field}`")) / 1000).cast("long").alias(EVENT_MS))


def time_range(spark: SparkSession, spec: FeatureGroupSpec, source: EventSource) -> tuple[datetime, datetime] | None:
    """[first, newest + 1 ms) of the source's usable events; None when it holds none."""
    frame = source.read(spark, spec, EPOCH, datetime(9999, 1, 1, tzinfo=UTC))
    frame = frame.where(usable(spec, frame))
    column = F.col(f"`{spec.event_time.field}`")
    row = frame.agg(F.min(F.unix_micros(column)).alias("lo"), F.max(F.unix_micros(column)).alias("hi")).first()
    if row is None or row["lo"] is None:
        return None
    return _from_micros(row["lo"]), _from_micros(row["hi"] + 1000)


def _from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(micros))
