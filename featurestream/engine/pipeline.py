"""The streaming job's wiring: one query per source, whatever the number of feature groups.

One source per query (one Kafka source, one offset range per micro-batch, one checkpoint) feeds
every feature group that reads it, and their DLQs; each record is fetched and parsed once:

    source ─► parse ─► `routed_events` ─► shuffle ─► per group: stateless transforms ─► map side ─┐
                                                                                                 ├─► one
    (the next group on the same source reads the same shuffle: `group_events`) ─────────────────┘ state operator
                                                      ─► the union's layout (`_tagged_groups`) ─► foreachBatch
                                                                                            (`SourceBatchWriter`)
- Spark plans each branch on its own; the branches' shuffles are one plan, which Spark's
  ReuseExchange rule runs once (a group alone has no such shuffle, and its own state operator).
- Several groups have one shuffle and one state operator for all of them, keyed by (group,
  entity) (`aggregation.run_engine_groups`): one state stage, whatever the number of groups.

- `routed_events` keeps usable events and records bound for the DLQ in one frame: an invalid
  record travels through the engine like a late event (no event time, a reserved key) and comes
  out whole. No second query re-reads and re-parses the topic for the DLQ.
- The foreachBatch body (`SourceBatchWriter`) runs a small micro-batch (the previous one's output
  fit `driver_write_max_records`) as one Spark job: one Arrow collect of the union, the counters
  and freshness points computed on the driver, the groups' records written from the driver at
  once (`driver_batch`). A larger one (and the first of a start) is persisted once, its groups'
  outcomes counted in one pass, then written group by group. Per group: records to the online
  store, late events to `<dlq_path>/<group>/late/batch_id=N/` and invalid records to
  `<dlq_path>/<group>/events/batch_id=N/` (Parquet, each only when the batch has some, rewritten
  whole if the batch is replayed: exactly one copy), counters to the log and to the group's
  `EngineMetrics`.
- Per group, events in = DLQ + filtered + duplicates + late + aggregated.
- The raw event archive (a group with `archive: true`): the source's valid events, before
  transforms, are one more branch of the union (`archive_events`, from the same read: one group
  then has the shared shuffle too), and the same foreachBatch body appends them to the archive's
  Iceberg table after the groups' writes, once per batch id (`engine.archive.ArchiveWriter`),
  nothing for a batch without a valid event.

Checkpoint: `<checkpoint_root>/<group>/features` for a job of one group on its source (the
features query's checkpoint of before, reused as is), `<checkpoint_root>/<g1>+<g2>.../features`
(names sorted) for several groups on one source: the state of all of them, in one query. The
groups of one query share Spark's watermark (the newest over their events, minus the lateness),
so they must agree on the event time and the allowed lateness (`check_shared_source`).
`featurestream.ops.checkpoint_layout` stops a job (exit 2) that meets the two-query layout of
before, a group whose state is in another job's checkpoint, or several groups' checkpoint with one
state operator per group (the layout before they shared one).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import reduce
from typing import Any, Protocol, runtime_checkable

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import DataStreamWriter, StreamingQuery
from pyspark.sql.types import StructType

from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.config.profile import EnvironmentProfile
from featurestream.connectors.event_source import read_events
from featurestream.connectors.online_store import OnlineStoreTarget, build_sink
from featurestream.engine import aggregation, archive, driver_batch
from featurestream.engine.driver_batch import COUNTERS, FRESHNESS_POINTS, GROUP, TO_DLQ
from featurestream.engine.parsing import DLQ, parse_events, routed_events, valid_events
from featurestream.engine.transforms import (
    FILTERED_OBSERVATION,
    apply_stream_transforms,
    check_with_spark,
    filtered_observation,
)
from featurestream.errors import ConfigError
from featurestream.io import paths
from featurestream.ops.metrics import observe_freshness

log = logging.getLogger(__name__)

# Columns of the union of the groups' engine outputs (see `_tagged`; GROUP and TO_DLQ in
# driver_batch); the archive's branch is the group ARCHIVED_GROUP, its events in the struct column
# ARCHIVED (see `_archived`).
ARCHIVED, ARCHIVED_GROUP, _ROWS = "_archived", -1, "_rows"


def late_path(spec: FeatureGroupSpec, profile: EnvironmentProfile) -> str:
    return paths.join(profile.dlq_path, spec.name, "late")


def dlq_events_path(spec: FeatureGroupSpec, profile: EnvironmentProfile) -> str:
    return paths.join(profile.dlq_path, spec.name, "events")


def online_target(spec: FeatureGroupSpec, profile: EnvironmentProfile) -> OnlineStoreTarget:
    return OnlineStoreTarget(
        feature_group_name=spec.online_store.feature_group_name,
        record_identifier=spec.entity.key,
        event_time_feature=spec.event_time.field,
        feature_names=tuple(aggregation.feature_columns(spec)),
        region=profile.feature_store.region,
        # The engine emits at most one record per entity per micro-batch: no dedup in the sink.
        already_unique=True,
    )


def local_master(spark: SparkSession) -> bool:
    """Whether Spark runs in local mode: its executors are threads of the driver's JVM, on its cores."""
    return str(spark.sparkContext.master).startswith("local")


def job_key(specs: Sequence[FeatureGroupSpec]) -> str:
    """The name of a source query's checkpoint folder and query: its groups' names, sorted, joined by +."""
    return "+".join(sorted(spec.name for spec in specs))


def source_checkpoint(profile: EnvironmentProfile, specs: Sequence[FeatureGroupSpec]) -> str:
    return paths.join(profile.checkpoint_root, job_key(specs), "features")


def definition_dir(profile: EnvironmentProfile, specs: Sequence[FeatureGroupSpec], spec: FeatureGroupSpec) -> str:
    """Where the group's `definition.json` lives: beside the checkpoint that holds its state."""
    if len(specs) == 1:
        return paths.join(profile.checkpoint_root, spec.name)
    return paths.join(profile.checkpoint_root, job_key(specs), "groups", spec.name)


def by_source(specs: Sequence[FeatureGroupSpec]) -> list[list[FeatureGroupSpec]]:
    """The job's groups by the source they read (one query each), each list sorted by name."""
    groups: dict[str, list[FeatureGroupSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.source.model_dump_json(by_alias=True), []).append(spec)
    return [sorted(found, key=lambda s: s.name) for found in groups.values()]


def check_shared_source(specs: Sequence[FeatureGroupSpec], files: dict[str, str]) -> None:
    """Groups in one query share Spark's watermark: they must agree on what it is made of."""
    first = specs[0]
    for spec in specs[1:]:
        for field_name, mine, theirs in (("event_time", spec.event_time, first.event_time),
                                         ("windows.allowed_lateness", spec.windows.allowed_lateness_ms,
                                          first.windows.allowed_lateness_ms)):
            if mine != theirs:
                raise ConfigError(files.get(spec.name, spec.name), field_name,
                                  f"differs from {first.name}'s, which reads the same source in this job: the "
                                  "groups of one source share one watermark; run them as separate jobs")


@dataclass
class EngineMetrics:
    """Running totals of the engine's counters since the query started (per-batch values are logged).

    events in = dlq + filtered (by transforms, in the progress) + aggregated + duplicates + late.
    `folded`: the aggregated events that reached the state folded into map-side partials.
    """

    aggregated: int = 0
    duplicates: int = 0
    late_events: int = 0
    dlq: int = 0
    records: int = 0
    decay_records: int = 0
    folded: int = 0
    batches: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, batch: dict[str, int]) -> None:
        with self._lock:
            self.aggregated += batch["aggregated"]
            self.duplicates += batch["duplicates"]
            self.late_events += batch["late_events"]
            self.dlq += batch.get("dlq", 0)
            self.records += batch["records"]
            self.decay_records += batch["decay_records"]
            self.folded += batch["folded"]
            self.batches += 1


def _counter_columns(to_dlq: Column) -> list[Column]:
    kind = F.col(aggregation.KIND)
    is_record = kind == aggregation.RECORD
    is_late = kind == aggregation.LATE
    return [
        F.coalesce(F.sum(aggregation.AGGREGATED), F.lit(0)).alias("aggregated"),
        F.coalesce(F.sum(aggregation.DUPLICATES), F.lit(0)).alias("duplicates"),
        F.count_if(is_late & ~to_dlq).alias("late_events"),
        F.count_if(is_late & to_dlq).alias("dlq"),
        F.count_if(is_record).alias("records"),
        F.count_if(is_record & (F.col(aggregation.AGGREGATED) == 0)).alias("decay_records"),
        F.coalesce(F.sum(aggregation.FOLDED), F.lit(0)).alias("folded"),
    ]


def _bound_for_dlq(output: DataFrame, packed_type: StructType | None, within: str | None = None) -> Column:
    """Whether an engine output row is an invalid record bound for the DLQ; `packed_type`: the type
    of its `_event` (`aggregation.event_type`; None: no DLQ column); `within`: the output is that
    struct column of `output` (a group's share of `run_engine_groups`)."""
    if packed_type is None or DLQ not in packed_type.names:
        return F.lit(False)
    column = F.col(f"{within}.{aggregation.EVENT}" if within else aggregation.EVENT)
    event = aggregation.unpack_event(output.sparkSession, column, packed_type)
    return F.coalesce(event[DLQ].isNotNull(), F.lit(False))


def batch_counters(output: DataFrame, packed_type: StructType | None = None,
                   columns: Sequence[Column] | None = None) -> dict[str, int]:
    """One pass over a micro-batch of one group's engine output: what happened to its events
    (`packed_type`: the type of its `_event`, see `_bound_for_dlq`; `columns`: `counter_columns`
    made once, for a caller that counts every micro-batch)."""
    row = output.agg(*(columns or counter_columns(output, packed_type))).first()
    return _counts(row.asDict() if row else {})


def counter_columns(output: DataFrame, packed_type: StructType | None = None) -> list[Column]:
    """`batch_counters`' aggregation (unresolved: the same columns serve every micro-batch of a query)."""
    return _counter_columns(_bound_for_dlq(output, packed_type))


def _counts(values: dict[str, Any]) -> dict[str, int]:
    """The counter columns' values as ints (a sum over no rows is null)."""
    return {k: int(v or 0) for k, v in values.items()}


class RecordSink(Protocol):
    """Where a micro-batch's records go: the online store (the stream), the offline store (a backfill)."""

    def write_batch(self, records: DataFrame, batch_id: int, rows: int | None = None) -> object: ...


@dataclass
class FeatureBatchWriter:
    """One group's share of a micro-batch: records to their sink, late events and invalid records to theirs."""

    spec: FeatureGroupSpec
    sink: RecordSink
    late_root: str
    metrics: EngineMetrics = field(default_factory=EngineMetrics)
    # The query's checkpoint: its offset log gives the batch's watermark to the engine's map side
    # (events folded per entity before the shuffle). None: events travel one by one.
    checkpoint: str | None = None
    # Where invalid records go (`<dlq_path>/<group>/events`); None: the output holds none.
    dlq_root: str | None = None
    # The type of the engine output's `_event` (`aggregation.event_type` of the events the engine
    # got): the late sink's and the DLQ's rows are read back from it.
    event_type: Any = None
    _seconds: dict[str, float] = field(default_factory=dict, repr=False)
    _selection: aggregation.RecordSelection | None = field(default=None, repr=False)
    # The counters' columns, made at the first micro-batch (py4j look-ups, see `_BatchColumns`).
    _counters: list[Column] | None = field(default=None, repr=False)

    def __call__(self, output: DataFrame, batch_id: int) -> None:
        """The foreachBatch body of a query of this group alone (the backfill, a benchmark's component)."""
        spark = output.sparkSession
        if self.checkpoint is not None:
            aggregation.use_batch_watermark(spark, self.checkpoint, batch_id)
        timer = _Timer()
        self._counters = self._counters or counter_columns(output, self.event_type)
        # `cache()`, not `persist()`: the same storage level, without py4j's look-up of StorageLevel.
        output = output.cache()
        try:
            counters = batch_counters(output, columns=self._counters)
            timer.lap("engine_and_counters_s")
            self.write(output, batch_id, counters)
        finally:
            output.unpersist()
            if self.checkpoint is not None:
                aggregation.clear_batch_watermark(spark)
        self.done(batch_id, counters, timer.laps)

    def write(self, output: DataFrame, batch_id: int, counters: dict[str, int]) -> None:
        """Write what the counters say the batch holds, nothing else (no empty files)."""
        # One folder per batch (a Hive-style `batch_id` partition), overwritten: a replayed batch
        # leaves exactly one copy. One partition: Spark's writer always writes a file for its first
        # task, so rows of another partition would come with an empty file beside them.
        timer = _Timer()
        self.write_rejected(output, batch_id, counters, timer)
        if counters["records"]:
            self.sink.write_batch(self._records(output), batch_id, rows=counters["records"])
            timer.lap("records_s")
        self._seconds = timer.laps

    def write_counted(self, output: DataFrame, batch_id: int) -> dict[str, int]:
        """`batch_counters` and `write` in one pass over `output` for the records: the counters are
        observed on the records' write (a batch with no record writes no file), then the late
        events and invalid records, when the counters say there are some, each by a pass of its own.
        For an output that is costly to read again (a backfill chunk's) and seldom has late events."""
        timer = _Timer()
        observation = Observation(f"batch_counters_{batch_id}")
        observed = output.observe(observation, *_counter_columns(_bound_for_dlq(output, self.event_type)))
        self.sink.write_batch(self._records(observed), batch_id)
        counters = _counts(observation.get)
        timer.lap("records_s")
        self.write_rejected(output, batch_id, counters, timer)
        self._seconds = timer.laps
        return counters

    def _records(self, output: DataFrame) -> DataFrame:
        # The record columns once per query (py4j look-ups, see `_BatchColumns`).
        self._selection = self._selection or aggregation.record_selection(self.spec)
        return aggregation.records(output, self.spec, self._selection)

    def write_rejected(self, output: DataFrame, batch_id: int, counters: dict[str, int], timer: _Timer) -> None:
        """The batch's late events and invalid records (the engine's late rows of `output`), each
        to its folder when there are some."""
        if counters["late_events"]:
            (aggregation.late_events(output, self.event_type).coalesce(1)
             .write.mode("overwrite").parquet(paths.join(self.late_root, f"batch_id={batch_id}")))
            timer.lap("late_s")
        if counters.get("dlq") and self.dlq_root is not None:
            (aggregation.dlq_events(output, self.event_type).coalesce(1)
             .write.mode("overwrite").parquet(paths.join(self.dlq_root, f"batch_id={batch_id}")))
            timer.lap("dlq_s")

    def note(self, lap: str, seconds: float) -> None:
        """A lap of this group's share of the batch, for the `engine_batch` line."""
        self._seconds[lap] = round(seconds, 3)

    def done(self, batch_id: int, counters: dict[str, int], seconds: dict[str, float] | None = None) -> None:
        """Totals, and one log line: the batch's counters and where its time went (`seconds`)."""
        self.metrics.add(counters)
        spent = {**(seconds or {}), **self._seconds}
        self._seconds = {}
        log.info(json.dumps({"event": "engine_batch", "feature_group": self.spec.name, "batch_id": batch_id,
                             **counters, "seconds": spent}))


_FRESH = "_fresh_as_of"


def _freshness_column() -> Column:
    """Quantiles of the EventTime (epoch s) of the batch's records that carry new events (not decay)."""
    fresh = (F.col(aggregation.KIND) == aggregation.RECORD) & (F.col(aggregation.AGGREGATED) > 0)
    as_of = F.when(fresh, F.col(aggregation.AS_OF).cast("double"))
    points = [i / (FRESHNESS_POINTS - 1) for i in range(FRESHNESS_POINTS)]
    return F.percentile_approx(as_of, points, 1000).alias(_FRESH)


class _Timer:
    """Seconds between laps, by name: where a micro-batch's time goes (in the `engine_batch` line)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = self._start = time.monotonic()

    def total(self, name: str = "body_s") -> dict[str, float]:
        """The laps and, under `name`, the whole time since the timer started."""
        return {**self.laps, name: round(time.monotonic() - self._start, 3)}

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps[name] = round(now - self._last, 3)
        self._last = now


@dataclass(frozen=True)
class _BatchColumns:
    """The columns the foreachBatch body applies to every micro-batch, built once per query.

    Building a column goes through py4j, and pyspark finds `functions` (and the like) by trying
    each of the gateway's imported packages in turn: every miss is a class search over every jar
    on the driver's classpath. Built per batch, these made ~200 such look-ups a micro-batch (32 of
    them for the freshness points alone); the same unresolved columns serve every batch.
    """

    counters: tuple[Column, ...]
    of_group: tuple[Column, ...]
    # The collected path's projection (`driver_batch.collected_columns`).
    collected: tuple[Column, ...]

    @classmethod
    def build(cls, specs: Sequence[FeatureGroupSpec], archived: bool) -> _BatchColumns:
        return cls((*_counter_columns(F.col(TO_DLQ)), _freshness_column(), F.count(F.lit(1)).alias(_ROWS)),
                   tuple(F.col(GROUP) == index for index in range(len(specs))),
                   tuple(driver_batch.collected_columns(specs, ARCHIVED if archived else None)))


def _tagged(output: DataFrame, index: int, packed_type: StructType) -> DataFrame:
    """A group's engine output in the union's layout: what the counters need on top, the rest in a
    struct (`packed_type`: the type of its `_event`)."""
    return output.select(
        F.lit(index).alias(GROUP), aggregation.KIND, aggregation.AGGREGATED, aggregation.DUPLICATES,
        aggregation.FOLDED, aggregation.AS_OF, _bound_for_dlq(output, packed_type).alias(TO_DLQ),
        F.struct(*[F.col(f"`{name}`") for name in output.columns]).alias(f"_g{index}"),
    )


def _tagged_groups(output: DataFrame, packed_types: Sequence[StructType]) -> DataFrame:
    """The one state operator's output of several groups (`aggregation.run_engine_groups`) in the
    union's layout `_tagged` gives each group alone: one projection, so one branch and one stage
    (`packed_types`: the type of each group's `_event`)."""
    shares = [f"_o{index}" for index in range(len(packed_types))]

    def common(name: str) -> Column:
        return F.coalesce(*[F.col(f"{share}.{name}") for share in shares]).alias(name)

    return output.select(
        F.col("_group").alias(GROUP), common(aggregation.KIND), common(aggregation.AGGREGATED),
        common(aggregation.DUPLICATES), common(aggregation.FOLDED), common(aggregation.AS_OF),
        F.coalesce(*[F.when(F.col("_group") == index, _bound_for_dlq(output, packed, share))
                     for index, (share, packed) in enumerate(zip(shares, packed_types, strict=True))]).alias(TO_DLQ),
        *[F.col(share).alias(f"_g{index}") for index, share in enumerate(shares)],
    )


def _archived(events: DataFrame) -> DataFrame:
    """The archive's valid events in the union's layout: the group ARCHIVED_GROUP, the events in a struct."""
    return events.select(F.lit(ARCHIVED_GROUP).alias(GROUP),
                         F.struct(*[F.col(f"`{name}`") for name in events.columns]).alias(ARCHIVED))


@runtime_checkable
class ArrowRecordSink(Protocol):
    """A sink that also takes a group's records as Arrow on the driver (`OnlineStoreSink`)."""

    driver_write_max_records: int

    def write_arrow(self, spark: SparkSession, batches: Sequence[Any], batch_id: int, *,
                    concurrent: int = 1) -> object: ...


@dataclass
class SourceBatchWriter:
    """The foreachBatch body of a source's query: each group's writes and the archive's append.

    A micro-batch goes one of two ways (see `driver_batch`): collected (one Spark job, the rest on
    the driver) when the previous micro-batch of this query had at most `driver_write_max_records`
    rows of output (records, late events, invalid records and archived events together) and every
    group's sink takes Arrow records; else cached (the batch persisted, counted in one pass, each
    group's records written by their own Spark job, on the executors above that many records). The
    first micro-batch of a start, which may carry a backlog, is cached; so is every batch with
    `driver_write_max_records: 0`.
    """

    writers: list[FeatureBatchWriter]
    checkpoint: str
    archive: archive.ArchiveWriter | None = None
    _columns: _BatchColumns | None = field(default=None, repr=False)
    # Output rows of this query's previous micro-batch (None before the first): the rule above.
    _previous_rows: int | None = field(default=None, repr=False)
    # The union's schema: the type of the rows a collected batch sends back to Spark.
    _schema: Any = field(default=None, repr=False)

    def __call__(self, output: DataFrame, batch_id: int) -> None:
        spark = output.sparkSession
        timer = _Timer()
        specs = [writer.spec for writer in self.writers]
        columns = self._columns = self._columns or _BatchColumns.build(specs, self.archive is not None)
        aggregation.use_batch_watermark(spark, self.checkpoint, batch_id)
        try:
            if self.collects():
                counters, self._previous_rows = self._collected(output, batch_id, columns, timer)
            else:
                counters, self._previous_rows = self._cached(output, batch_id, columns, timer)
        finally:
            aggregation.clear_batch_watermark(spark)
        timer.lap("cleanup_s")
        for writer, counted in zip(self.writers, counters, strict=True):
            writer.done(batch_id, counted, timer.total())

    def collects(self) -> bool:
        """Whether the next micro-batch takes the collected path (the rule in the class's docstring)."""
        sinks = [writer.sink for writer in self.writers]
        if self._previous_rows is None or not all(isinstance(sink, ArrowRecordSink) for sink in sinks):
            return False
        return self._previous_rows <= min(sink.driver_write_max_records for sink in sinks)  # type: ignore[attr-defined]

    def _cached(self, output: DataFrame, batch_id: int, columns: _BatchColumns,
                timer: _Timer) -> tuple[list[dict[str, int]], int]:
        # `cache()`, not `persist()`: the same storage level, without py4j's look-up of StorageLevel.
        output = output.cache()
        timer.lap("setup_s")
        try:
            # The first action: runs the micro-batch (source, parse, engine, state commit) into the cache.
            rows = output.groupBy(GROUP).agg(*columns.counters).collect()
            timer.lap("engine_and_counters_s")
            found = {int(row[GROUP]): row for row in rows}
            counters = [{k: int(found[index][k] or 0) for k in COUNTERS} if index in found
                        else dict.fromkeys(COUNTERS, 0) for index in range(len(self.writers))]
            for index, (writer, counted) in enumerate(zip(self.writers, counters, strict=True)):
                if any(counted.values()):
                    writer.write(output.where(columns.of_group[index]).select(f"_g{index}.*"), batch_id, counted)
                    self._freshness(found[index][_FRESH], counted, time.time())
            timer.lap("writes_s")
            if self.archive is not None and ARCHIVED_GROUP in found:  # no valid event: no commit
                self.archive.write(output.where(F.col(GROUP) == ARCHIVED_GROUP).select(f"{ARCHIVED}.*"), batch_id,
                                   int(found[ARCHIVED_GROUP][_ROWS]))
                timer.lap("archive_s")
        finally:
            output.unpersist()
        return counters, sum(int(row[_ROWS]) for row in rows)

    def _collected(self, output: DataFrame, batch_id: int, columns: _BatchColumns,
                   timer: _Timer) -> tuple[list[dict[str, int]], int]:
        spark = output.sparkSession
        # The only Spark job of the batch: runs it (source, parse, engine, state commit) into Arrow.
        table = driver_batch.as_table(output.select(*columns.collected)._collect_as_arrow())
        timer.lap("engine_and_counters_s")
        if table is None:
            return [dict.fromkeys(COUNTERS, 0) for _ in self.writers], 0
        parts = [driver_batch.group_rows(table, index) for index in range(len(self.writers))]
        counters = [driver_batch.group_counters(part) for part in parts]
        self._schema = self._schema or output.schema  # the same every batch of the query
        for index, (writer, counted) in enumerate(zip(self.writers, counters, strict=True)):
            if counted["late_events"] or counted["dlq"]:  # rare: back to Spark's Parquet writer
                rows = driver_batch.struct_batches(table, driver_batch.late_column(index))
                late = driver_batch.local_frame(spark, rows, self._schema[f"_g{index}"].dataType)
                laps = _Timer()
                writer.write_rejected(late, batch_id, counted, laps)
                for lap, seconds in laps.laps.items():
                    writer.note(lap, seconds)
        ended = self._write_records(spark, table, counters, batch_id)
        for index, counted in enumerate(counters):
            if index in ended:
                self._freshness(driver_batch.freshness_points(parts[index]), counted, ended[index])
        timer.lap("writes_s")
        archived = driver_batch.struct_batches(table, ARCHIVED) if self.archive is not None else []
        if archived:  # no valid event: no commit
            self.archive.write(driver_batch.local_frame(spark, archived,  # type: ignore[union-attr]
                                                        self._schema[ARCHIVED].dataType),
                               batch_id, sum(batch.num_rows for batch in archived))
            timer.lap("archive_s")
        return counters, table.num_rows

    def _write_records(self, spark: SparkSession, table: Any, counters: list[dict[str, int]],
                       batch_id: int) -> dict[int, float]:
        """Each group's records from the driver, the groups at once (independent HTTP writes, no
        Spark action: the batch's watermark, a property of this thread, is not needed there).
        Returns when each group's write ended (epoch s)."""
        todo = [index for index, counted in enumerate(counters) if counted["records"]]

        def write(index: int) -> float:
            started = time.monotonic()
            sink: Any = self.writers[index].sink
            sink.write_arrow(spark, driver_batch.struct_batches(table, driver_batch.records_column(index)),
                             batch_id, concurrent=len(todo))
            self.writers[index].note("records_s", time.monotonic() - started)
            return time.time()

        if len(todo) <= 1:
            return {index: write(index) for index in todo}
        with ThreadPoolExecutor(max_workers=min(len(todo), _WRITE_THREADS)) as pool:
            futures = {index: pool.submit(write, index) for index in todo}
            return {index: future.result() for index, future in futures.items()}

    @staticmethod
    def _freshness(points: list[float] | None, counted: dict[str, int], ended: float) -> None:
        """Freshness of the records just written: the end of their write minus their EventTime.

        The end of the write, not of the micro-batch (the offset commit and the other groups' writes
        come after): from then on GetRecord returns them. Per record, which is per event when an
        entity has one event in the batch (a probe's brand-new entity).
        """
        times = [t for t in (points or []) if t is not None]
        fresh = counted["records"] - counted["decay_records"]
        if times and fresh > 0:
            observe_freshness([ended - t for t in times], at=ended, weight=fresh / len(times))


# Groups whose records a collected micro-batch writes at once (each a thread of HTTP calls).
_WRITE_THREADS = 4


@dataclass(frozen=True)
class SourceQuery:
    """The one query of a source: its groups (sorted by name) and each group's running totals."""

    query: StreamingQuery
    specs: tuple[FeatureGroupSpec, ...]
    metrics: tuple[EngineMetrics, ...]

    def all(self) -> list[StreamingQuery]:
        return [self.query]


@dataclass(frozen=True)
class StreamQueries:
    """A one-group job: its query and the engine's totals."""

    features: StreamingQuery
    metrics: EngineMetrics

    def all(self) -> list[StreamingQuery]:
        return [self.features]


def _trigger(writer: DataStreamWriter, available_now: bool, interval: str) -> DataStreamWriter:
    return writer.trigger(availableNow=True) if available_now else writer.trigger(processingTime=interval)


def feature_stream(events: DataFrame, spec: FeatureGroupSpec, *, history: bool = False,
                   observation: str = FILTERED_OBSERVATION, append: bool = False) -> DataFrame:
    """Events → the engine's output (records, late events, counters); `history`: the backfill's
    record at every event and decay boundary. Events may carry records bound for the DLQ
    (`parsing.routed_events`): they come out as late rows whose `_event` has a `_dlq`."""
    return aggregation.run_engine(apply_stream_transforms(events, spec, observation), spec, history=history,
                                  append=append)


def source_events(spark: SparkSession, specs: Sequence[FeatureGroupSpec], profile: EnvironmentProfile) -> DataFrame:
    """The source's records, read once for every group of the job that reads it.

    The one place where a micro-batch's records exist once, before they fan out to the groups
    and the raw event archive.
    """
    return read_events(spark, specs[0], profile)


def _parse_key(spec: FeatureGroupSpec) -> tuple[Any, ...]:
    """What `parse_events` and `routed_events` take from a group besides its source."""
    return (spec.entity.key, spec.event_time.model_dump_json(), tuple(sorted(spec.string_limits().items())),
            bool(spec.derived_string_limits()))


def _shared(frame: DataFrame, *by: str) -> DataFrame:
    """`frame` behind one shuffle that every group's branch of the query shares.

    Spark plans each branch of the union on its own, so n groups would fetch (and parse) the
    micro-batch n times. When the branches' shuffles are the same plan, Spark's ReuseExchange
    rule runs one of them and the others read its output: the source is fetched (and the records
    parsed) once. Hashed by the columns `by` (the same rows in the same partitions on a replay).
    Every column then passes a condition that is always true but not deterministic to the
    optimizer (`spark_partition_id() >= 0`), so no group's filter is pushed below the shuffle,
    which would make the branches differ and each fetch the batch again.
    """
    partitions = int(frame.sparkSession.conf.get("spark.sql.shuffle.partitions") or "2")
    spread = frame.repartition(partitions, *[F.col(f"`{c}`") for c in by])
    barrier = F.spark_partition_id() >= 0
    return spread.select(*[F.when(barrier, F.col(f"`{c}`")).alias(c) for c in frame.columns])


def group_events(raw: DataFrame, specs: Sequence[FeatureGroupSpec], *, archived: FeatureGroupSpec | None = None,
                 ) -> list[DataFrame]:
    """Each group's routed events (`parsing.routed_events`) from one read of the source, and after
    them, with `archived` (the group whose parse decides what is valid), the archive's events.

    One group alone: parsed in place. Several (a group and the archive are two): parsed once and
    shared through one shuffle when they parse alike (the same entity key, event time and string
    limits), else the raw records are shared and each group parses them.
    """
    if len(specs) == 1 and archived is None:
        return [routed_events(parse_events(raw, specs[0]), specs[0])]
    if len({_parse_key(spec) for spec in specs}) == 1:
        shared = _shared(routed_events(parse_events(raw, specs[0]), specs[0]), specs[0].entity.key)
        return [shared] * len(specs) + ([archive_events(shared, archived)] if archived is not None else [])
    records = _shared(raw, "partition", "offset")
    routed = [routed_events(parse_events(records, spec), spec) for spec in specs]
    if archived is None:
        return routed
    return [*routed, archive_events(routed[list(specs).index(archived)], archived)]


def archive_events(routed: DataFrame, spec: FeatureGroupSpec) -> DataFrame:
    """The valid events of routed ones (`parsing.routed_events`), as the source has them: the archive's rows."""
    return routed.where(F.col(DLQ).isNull()).select(*[F.col(f"`{name}`") for name in spec.source.schema_])


def start_source_query(spark: SparkSession, specs: Sequence[FeatureGroupSpec], profile: EnvironmentProfile,
                       *, available_now: bool = False, sinks: dict[str, Any] | None = None,
                       archive_table: str | None = None) -> SourceQuery:
    """Check the groups against Spark, start the one query of their source; the caller waits or stops it.

    `specs` read the same source (see `by_source`). `sinks` replaces a group's online-store sink
    (anything with `write_batch(records, batch_id)`), by group name. `archive_table`: also archive
    the source's valid events there (engine.archive), from the same read, in the same foreachBatch.
    """
    ordered = sorted(specs, key=lambda s: s.name)
    raw = source_events(spark, ordered, profile)
    checkpoint = source_checkpoint(profile, ordered)
    archived = next((spec for spec in ordered if spec.archive), ordered[0]) if archive_table is not None else None
    frames = group_events(raw, ordered, archived=archived)
    writers, outputs = [], []
    transformed: list[tuple[DataFrame, FeatureGroupSpec]] = []
    for index, (spec, events) in enumerate(zip(ordered, frames[:len(ordered)], strict=True)):
        check_with_spark(spec, spark)
        sink = (sinks or {}).get(spec.name) or build_sink(online_target(spec, profile), profile.feature_store,
                                                          paths.join(profile.dlq_path, spec.name, "online-store"),
                                                          local_master=local_master(spark))
        # Filter counts per group: one observation name per group when several share the query.
        stream = apply_stream_transforms(events, spec, FILTERED_OBSERVATION if len(ordered) == 1
                                         else filtered_observation(spec.name))
        writers.append(FeatureBatchWriter(spec, sink, late_path(spec, profile), checkpoint=checkpoint,
                                          dlq_root=dlq_events_path(spec, profile),
                                          event_type=aggregation.event_type(stream)))
        if len(ordered) == 1:
            # Append mode, as the several groups' one operator (their records are never revised).
            outputs.append(_tagged(aggregation.run_engine(stream, spec, append=True), index,
                                   aggregation.event_type(stream)))
        else:
            transformed.append((stream, spec))
    if transformed:
        # Several groups: one shuffle and one state operator for all (keyed by group and entity).
        outputs.append(_tagged_groups(aggregation.run_engine_groups(transformed),
                                      [aggregation.event_type(stream) for stream, _ in transformed]))
    archiver = None
    if archive_table is not None and archived is not None:
        archiver = archive.ArchiveWriter(archive_table, checkpoint, archived.event_time.field)
        outputs.append(_archived(frames[-1]))
    union = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), outputs)
    if len(ordered) > 1:
        # One watermark per group (on its branch, before the shared state operator); the job's is
        # the newest (the source's clock): with Spark's default (the oldest), a group whose filter
        # let nothing through yet, or whose batch held only invalid records (null event times),
        # would hold every group's clock back.
        # Recorded in the checkpoint's offset log at the query's start (Spark keeps it on restart).
        spark.conf.set("spark.sql.streaming.multipleWatermarkPolicy", "max")
    writer = (
        union.writeStream.queryName(f"{job_key(ordered)}-features")
        .outputMode("append")
        .foreachBatch(SourceBatchWriter(writers, checkpoint, archiver))
        .option("checkpointLocation", checkpoint)
    )
    query = _trigger(writer, available_now, profile.spark.trigger_interval).start()
    return SourceQuery(query, tuple(ordered), tuple(w.metrics for w in writers))


def start_stream(spark: SparkSession, spec: FeatureGroupSpec, profile: EnvironmentProfile,
                 *, available_now: bool = False, sink: Any = None, archive_table: str | None = None) -> StreamQueries:
    """A job of one feature group: its one query (features, DLQ, archive); the caller waits or stops it."""
    started = start_source_query(spark, [spec], profile, available_now=available_now,
                                 sinks={spec.name: sink} if sink is not None else None, archive_table=archive_table)
    return StreamQueries(features=started.query, metrics=started.metrics[0])


def start_features_query(spark: SparkSession, spec: FeatureGroupSpec, profile: EnvironmentProfile,
                         parsed: DataFrame, *, available_now: bool = False, sink: Any = None) -> tuple[StreamingQuery,
                                                                                                   EngineMetrics]:
    """A component, not the shipped job: the features query alone on already parsed rows, usable events
    only (no DLQ). Benchmarks time the engine with it."""
    batch_sink = sink or build_sink(online_target(spec, profile), profile.feature_store,
                                    paths.join(profile.dlq_path, spec.name, "online-store"),
                                    local_master=local_master(spark))
    checkpoint = paths.join(profile.checkpoint_root, spec.name, "features")
    stream = apply_stream_transforms(valid_events(parsed, spec), spec)
    writer = FeatureBatchWriter(spec, batch_sink, late_path(spec, profile), checkpoint=checkpoint,
                                event_type=aggregation.event_type(stream))
    features = (
        aggregation.run_engine(stream, spec)
        .writeStream.queryName(f"{spec.name}-features")
        .outputMode("update")
        .foreachBatch(writer)
        .option("checkpointLocation", checkpoint)
    )
    return _trigger(features, available_now, profile.spark.trigger_interval).start(), writer.metrics
