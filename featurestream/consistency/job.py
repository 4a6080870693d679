"""One consistency run of one feature group: sample, read online, recompute, read offline, judge.

    events (source) → sample (hot + cold) → BatchGetRecord → recompute as of each EventTime
    → per-feature tallies (compare.py) → newest offline rows → offline outcome per entity
    → summary (JSON), thresholds → exit 0 or 3

Offline outcome of an entity, its online record (EventTime T) against its newest offline row (T'):
`equal` (T' = T and every feature equal by compare.py's rules), `different` (T' = T, a feature
differs), `behind` (T' < T: by T - T' of event time; wall time = now - the row's write_time),
`ahead` (T' > T), `missing` (no offline row). An entity without an online record is
`online_missing` and is not compared.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from featurestream.backfill.sources import EventSource
from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.config.profile import EnvironmentProfile
from featurestream.connectors.online_reader import batch_get_records
from featurestream.connectors.provisioning import feature_definitions
from featurestream.consistency.compare import IN_FLIGHT, LATE, FeatureTally, equal, parse
from featurestream.consistency.events import ENTITY, EVENT_MS, engine_events, time_range
from featurestream.consistency.offline import newest_rows
from featurestream.consistency.recompute import Recompute, event_ms, values_as_of
from featurestream.consistency.sample import SampledEntity, draw_sample
from featurestream.engine.pipeline import late_path
from featurestream.errors import FeatureStreamError
from featurestream.io import hadoop_fs

log = logging.getLogger(__name__)

EQUAL, DIFFERENT, BEHIND, AHEAD, MISSING = "equal", "different", "behind", "ahead", "missing"
OUTCOMES = (EQUAL, DIFFERENT, BEHIND, AHEAD, MISSING)


class ConsistencyError(FeatureStreamError):
    """The check could not run (no events, no records to compare)."""


@dataclass(frozen=True)
class Thresholds:
    """Exceeding any of these makes the run exit 3."""

    min_match_rate: float = 1.0  # per feature, equal / (compared - explained)
    max_online_missing_rate: float = 0.0  # sampled entities without an online record
    max_offline_missing_rate: float = 0.0
    max_offline_different_rate: float = 0.0
    max_offline_lag_ms: int | None = None  # event-time lag of a `behind` entity; None: not checked


@dataclass(frozen=True)
class ConsistencyRequest:
    spec: FeatureGroupSpec
    spec_file: str
    profile: EnvironmentProfile
    source: EventSource
    runtime: Any  # a boto3 sagemaker-featurestore-runtime client
    offline_data_root: str | None  # the offline store's `.../data` (Spark path); None: not checked
    compacted: str | None  # the compacted output root of the group, if it is compacted
    work: str  # scratch folder (removed at the end)
    sample_size: int = 1000
    seed: int = 0
    tolerance: float = 1e-9
    chunk_ms: int = 86_400_000
    start: datetime | None = None
    end: datetime | None = None
    thresholds: Thresholds = Thresholds()
    # An Iceberg-format group's offline table (`<catalog>.<database>.<table>`): read instead of files.
    offline_table: str | None = None


@dataclass
class OfflineEntity:
    entity: str
    outcome: str
    online_ms: int
    offline_ms: int | None = None
    wall_lag_s: float | None = None
    features: list[str] = field(default_factory=list)


@dataclass
class ConsistencyResult:
    request: ConsistencyRequest
    start: datetime
    end: datetime
    sample: list[SampledEntity]
    online_missing: list[str]
    tallies: dict[str, FeatureTally]
    offline: list[OfflineEntity]
    offline_figures: dict[str, int]
    seconds: float
    exceeded: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 3 if self.exceeded else 0


def _ms_of_text(text: str) -> int:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return round(parsed.timestamp() * 1000)


def _kinds(spec: FeatureGroupSpec) -> dict[str, str]:
    skip = {spec.entity.key, spec.event_time.field}
    return {d["FeatureName"]: d["FeatureType"] for d in feature_definitions(spec) if d["FeatureName"] not in skip}


def _late_before(spark: SparkSession, spec: FeatureGroupSpec, profile: EnvironmentProfile,
                 entities: list[str]) -> dict[str, int]:
    """Per sampled entity, the oldest event time (ms) the stream sent to its late sink."""
    root = late_path(spec, profile)
    if not hadoop_fs.exists(spark, root) or not hadoop_fs.glob(spark, f"{root}/batch_id=*/*.parquet"):
        return {}
    key = spec.entity.key
    late = spark.read.parquet(root)
    rows = (late.withColumn(key, F.col(f"`{key}`").cast("string")).where(F.col(key).isin(entities))
            .groupBy(key).agg(F.min(event_ms(spec.event_time.field)).alias("oldest")).collect())
    return {str(r[key]): int(r["oldest"]) for r in rows}


def _newest_events(events: DataFrame, entities: list[str]) -> dict[str, int]:
    rows = events.where(F.col(ENTITY).isin(entities)).groupBy(ENTITY).agg(F.max(EVENT_MS).alias("newest")).collect()
    return {str(r[ENTITY]): int(r["newest"]) for r in rows}


def explain(entity: str, as_of_ms: int, late: dict[str, int], newest: dict[str, int]) -> str | None:
    """The documented cause of a difference at this record, if any (compare.py)."""
    if entity in late and late[entity] <= as_of_ms:
        return LATE
    if newest.get(entity, -1) > as_of_ms:
        return IN_FLIGHT
    return None


def run_consistency(spark: SparkSession, request: ConsistencyRequest) -> ConsistencyResult:
    started = time.monotonic()
    spec = request.spec
    event_time = spec.event_time.field
    span = ((request.start, request.end) if request.start and request.end
            else time_range(spark, spec, request.source))
    if span is None:
        raise ConsistencyError(f"consistency of {spec.name}: the source {request.source.describe()} holds no event")
    start, end = span
    events = engine_events(spark, spec, request.source, start, end).cache()
    try:
        sample = draw_sample(events, request.sample_size, request.seed)
        entities = [s.entity for s in sample]
        online = batch_get_records(request.runtime, spec.online_store.feature_group_name, entities)
        as_of = {e: _ms_of_text(v[event_time]) for e, v in online.items() if v.get(event_time)}
        newest = _newest_events(events, entities)
    finally:
        events.unpersist()
    late = _late_before(spark, spec, request.profile, entities)
    try:
        recomputed = values_as_of(spark, Recompute(spec, request.spec_file, request.profile, request.source, start,
                                                   end, request.chunk_ms, request.work), as_of)
    finally:
        hadoop_fs.delete(spark, request.work)  # the scratch history: never reused
    kinds = _kinds(spec)
    tallies = {name: FeatureTally(name, kind) for name, kind in kinds.items()}
    for entity, t in sorted(as_of.items()):
        want = recomputed.get(entity, {})
        cause = explain(entity, t, late, newest)
        stamp = online[entity][event_time]
        for name, kind in kinds.items():
            tallies[name].add(entity, stamp, parse(online[entity].get(name), kind), parse(want.get(name), kind),
                              request.tolerance, cause)
    offline: list[OfflineEntity] = []
    figures: dict[str, int] = {}
    if request.offline_data_root is not None or request.offline_table is not None:
        rows, figures = newest_rows(spark, spec, request.offline_data_root, request.compacted,
                                    request.profile.feature_store.region, sorted(as_of), request.offline_table)
        offline = [_offline_outcome(e, t, online[e], rows.get(e), kinds, request.tolerance)
                   for e, t in sorted(as_of.items())]
    result = ConsistencyResult(request, start, end, sample, sorted(set(entities) - set(as_of)), tallies, offline,
                               figures, time.monotonic() - started)
    result.exceeded = exceeded(result)
    return result


def _offline_outcome(entity: str, online_ms: int, online: dict[str, str], row: dict[str, Any] | None,
                     kinds: dict[str, str], tolerance: float) -> OfflineEntity:
    if row is None:
        return OfflineEntity(entity, MISSING, online_ms)
    offline_ms = int(row["_fs_event_ms"])
    written = row.get("write_time")
    wall = None if written is None else max(0.0, time.time() - written.timestamp())
    if offline_ms < online_ms:
        return OfflineEntity(entity, BEHIND, online_ms, offline_ms, wall)
    if offline_ms > online_ms:
        return OfflineEntity(entity, AHEAD, online_ms, offline_ms, wall)
    differing = [n for n, kind in kinds.items()
                 if not equal(parse(online.get(n), kind), parse(row.get(n), kind), kind, tolerance)]
    return OfflineEntity(entity, DIFFERENT if differing else EQUAL, online_ms, offline_ms, wall, differing)


def exceeded(result: ConsistencyResult) -> list[str]:
    limits = result.request.thresholds
    problems = [f"{t.name}: match rate {t.match_rate:.4f} < {limits.min_match_rate}"
                for t in result.tallies.values() if t.match_rate < limits.min_match_rate]
    drawn = len(result.sample)
    if drawn and len(result.online_missing) / drawn > limits.max_online_missing_rate:
        problems.append(f"online records missing for {len(result.online_missing)} of {drawn} sampled entities")
    checked = len(result.offline)
    if checked:
        rates = ((MISSING, limits.max_offline_missing_rate), (DIFFERENT, limits.max_offline_different_rate))
        for outcome, limit in rates:
            count = sum(o.outcome == outcome for o in result.offline)
            if count / checked > limit:
                problems.append(f"offline {outcome} for {count} of {checked} entities")
        if limits.max_offline_lag_ms is not None:
            lagging = [o for o in result.offline if o.outcome == BEHIND and o.offline_ms is not None
                       and o.online_ms - o.offline_ms > limits.max_offline_lag_ms]
            if lagging:
                problems.append(f"offline behind by more than {limits.max_offline_lag_ms} ms "
                                f"for {len(lagging)} entities")
    return problems
