"""The backfill of one feature group over one time range, chunk by chunk.

Per chunk [a, b) of event time, one batch pass (no streaming query):
1. read: the source's events of [a, b), held to the stream's validity rules, through the stream's
   transforms, laid out for the engine and kept (persisted) for the pass;
2. compute: the tile engine in history mode (`aggregation.run_history_pass`, `HistoryPass` in
   engine-jvm: the streaming state function's own history steps), the chunk's events grouped by
   entity and met with the entities' state after the previous chunk (a Parquet folder of key and
   encoded state); the watermarks are those the stream's micro-batch of the chunk and its timer
   batch would have (newest earlier event - lateness, then newest event so far - lateness);
3. write: the records to the offline store (`OfflineStoreSink`, files named by the range and the
   chunk), late events (none when the range is read in order) to the late sink, the new state to
   `state/chunk=N/`; then the progress file marks the chunk `done` with the newest event time and
   the state folder: that write commits the chunk.
Chunks are in event-time order, so the engine sees events in event-time order, as a stream that
is never late would; no event of a chunk is before the previous chunk's watermark.

A kill -9 at any point resumes where it stopped: a `done` chunk is skipped; a chunk that was not
committed is computed again from the last committed state, after its own offline files (if any
were written) are deleted. `--restart` deletes the range's work folder and its offline files
first, so a re-run replaces its own output.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from featurestream.backfill.chunks import DONE, Chunk, Progress, plan_chunks, range_id
from featurestream.backfill.offline import OfflineStoreSink, chunk_of_file, files_of_range
from featurestream.backfill.sources import EventSource
from featurestream.compaction.sparkconf import scoped_conf
from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.config.profile import EnvironmentProfile
from featurestream.connectors.online_store import build_sink
from featurestream.engine import aggregation
from featurestream.engine.parsing import usable
from featurestream.engine.pipeline import FeatureBatchWriter, online_target
from featurestream.engine.transforms import apply_stream_transforms, check_with_spark
from featurestream.errors import FeatureStreamError
from featurestream.io import hadoop_fs, paths
from featurestream.ops.definitions import check_checkpoint_definition

log = logging.getLogger(__name__)

STATE_SCHEMA = f"{aggregation.KEY} string, {aggregation.STATE_BYTES} binary"

# HotSpot compiles no method longer than 8,000 bytes of bytecode (HugeMethodLimit) and runs it
# interpreted. Whole-stage codegen made two such methods in a chunk's pass: the conversion of the
# engine's wide output rows (SerializeFromObject) and the offline rows' projection before the
# write's sort; a profile of a 1M-event backfill found the first interpreted in 21% of all JVM
# samples. At this limit Spark leaves such a stage to its per-operator code instead (split into
# small, compiled methods), as Spark's documentation of the setting advises for HotSpot.
HUGE_METHOD_LIMIT = "spark.sql.codegen.hugeMethodLimit"
HOTSPOT_HUGE_METHOD = 8000
# A chunk's engine output is cached for the pass's two reads (records, with the counters observed on
# their write, then state; late events, when there are some, a third) and dropped after it: building
# Spark's compressed columnar cache (compressibility statistics and encoders per column and batch)
# was 15% of a daily-chunk backfill's JVM samples in a profile.
# Uncompressed, the cache is a copy.
CACHE_COMPRESSED = "spark.sql.inMemoryColumnarStorage.compressed"


class BackfillError(FeatureStreamError):
    """A chunk's pass failed (the cause is Spark's first line)."""


@dataclass(frozen=True)
class BackfillRequest:
    spec: FeatureGroupSpec
    spec_file: str
    profile: EnvironmentProfile
    source: EventSource
    start: datetime
    end: datetime
    chunk_ms: int
    data_root: str  # where the group's offline rows go: `.../data` as a Spark path
    online: bool = False
    restart: bool = False


@dataclass(frozen=True)
class ChunkReport:
    chunk: Chunk
    total: int
    skipped: bool
    events: int
    invalid: int
    records: int
    decay_records: int
    files: int
    seconds: float


@dataclass
class BackfillResult:
    range_id: str
    work: str
    chunks: list[ChunkReport]
    online_records: int = 0

    @property
    def records(self) -> int:
        return sum(c.records for c in self.chunks)


@dataclass(frozen=True)
class Carried:
    """What a chunk hands the next: the newest event time so far (None: no event yet) and its state."""

    newest_event_ms: int | None = None
    state: str | None = None  # a Parquet folder of STATE_SCHEMA; None: no entity has state

    def watermark(self, spec: FeatureGroupSpec) -> int:
        # Spark's watermark starts at 0 and never goes back: max(0, newest event - lateness).
        if self.newest_event_ms is None:
            return 0
        return max(0, self.newest_event_ms - spec.windows.allowed_lateness_ms)


def work_folder(spec: FeatureGroupSpec, profile: EnvironmentProfile, rid: str) -> str:
    return paths.join(profile.checkpoint_root, spec.name, "backfill", rid)


def _read_chunk(spark: SparkSession, request: BackfillRequest, chunk: Chunk,
                watermark: int) -> tuple[DataFrame, Observation, StructType]:
    """The chunk's usable events through the stream's transforms, in the engine's input layout, and
    the type of its `_event` (`aggregation.event_type`)."""
    spec = request.spec
    frame = request.source.read(spark, spec, chunk.start, chunk.end)
    ok = usable(spec, frame)
    seen = Observation(f"backfill_chunk_{chunk.index}")
    frame = frame.observe(seen, F.count_if(ok).alias("valid"), F.count_if(~ok).alias("invalid"))
    events = frame.where(ok).select(*[F.col(f"`{c}`") for c in spec.source.schema_])
    transformed = apply_stream_transforms(events, spec, f"backfill_filtered_{chunk.index}")
    return (aggregation.history_input(transformed, spec, watermark=watermark), seen,
            aggregation.event_type(transformed))


def _state_frame(spark: SparkSession, carried: Carried) -> DataFrame:
    if carried.state is None:
        return spark.createDataFrame([], STATE_SCHEMA)
    return spark.read.schema(STATE_SCHEMA).parquet(carried.state)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _run_chunk(spark: SparkSession, request: BackfillRequest, chunk: Chunk, carried: Carried, work: str,
               writer: FeatureBatchWriter) -> tuple[dict[str, int], Carried]:
    """One chunk's pass: records and late events written, the new state written; (figures, carried on)."""
    spec = request.spec
    watermark = carried.watermark(spec)
    laid_out, seen, writer.event_type = _read_chunk(spark, request, chunk, watermark)
    laid_out = laid_out.persist()
    output: DataFrame | None = None
    try:
        row = laid_out.agg(F.count(F.lit(1)).alias("n"), F.max("_ts").alias("newest")).first()
        counts = seen.get
        figures = {"events": int(counts.get("valid", 0)), "invalid": int(counts.get("invalid", 0)),
                   "records": 0, "decay_records": 0, "files": 0, "late_events": 0}
        if row is None or not row["n"]:
            return figures, carried  # nothing happens in the stream either: no batch, no timer
        newest = int(row["newest"])
        if carried.newest_event_ms is not None:
            newest = max(newest, carried.newest_event_ms)
        state_folder = paths.join(work, "state", f"chunk={chunk.index}")
        after = Carried(newest, state_folder)
        output = aggregation.run_history_pass(laid_out, _state_frame(spark, carried), spec, watermark=watermark,
                                              watermark_after=after.watermark(spec))
        # Every task writes a file per hour of the chunk, and a file's fixed cost (writer set-up,
        # a page per column at close) outweighed its rows in a profile: no more tasks than cores.
        cores = spark.sparkContext.defaultParallelism
        if int(spark.conf.get("spark.sql.shuffle.partitions") or cores) > cores:
            output = output.coalesce(cores)
        output = output.persist()
        # The counters are observed on the records' write: no pass of their own over the output.
        counters = writer.write_counted(output, chunk.index)
        aggregation.state_rows(output).write.mode("overwrite").parquet(state_folder)
        writer.done(chunk.index, counters)
        figures.update(records=counters["records"], decay_records=counters["decay_records"],
                       late_events=counters["late_events"])
        return figures, after
    except FeatureStreamError:
        raise
    except Exception as exc:  # Spark's errors (Py4J, analysis, executor failures): one line
        raise BackfillError(f"backfill of {spec.name}: chunk {chunk.index} ({chunk.start.isoformat()}): "
                            f"{_first_line(exc)}") from exc
    finally:
        if output is not None:
            output.unpersist()
        laid_out.unpersist()


def _restart(spark: SparkSession, request: BackfillRequest, work: str, rid: str) -> int:
    """Delete the range's work folder and offline files; returns how many files were removed."""
    removed = 0
    for path in files_of_range(spark, request.data_root, rid):
        hadoop_fs.delete(spark, path, recursive=False)
        removed += 1
    hadoop_fs.delete(spark, work)
    log.info(json.dumps({"event": "backfill_restart", "range_id": rid, "offline_files_removed": removed}))
    return removed


def _remove_unfinished(spark: SparkSession, request: BackfillRequest, rid: str, progress: Progress,
                       chunks: list[Chunk]) -> None:
    """Delete the offline files of chunks not done (written by a run killed before their commit).

    Once per run, not per chunk: the listing covers the whole offline store, and chunks run in
    order, so no other file of a chunk that is not done can appear during the run.
    """
    done = {c.index for c in chunks if progress.state(c) == DONE}
    for path in files_of_range(spark, request.data_root, rid):
        chunk = chunk_of_file(path, rid)
        if chunk is not None and chunk not in done:
            hadoop_fs.delete(spark, path, recursive=False)


def run_backfill(spark: SparkSession, request: BackfillRequest,
                 report: Callable[[ChunkReport], None] = lambda _: None) -> BackfillResult:
    spec = request.spec
    check_with_spark(spec, spark, request.spec_file)
    rid = range_id(spec.online_store.feature_group_name, request.start, request.end)
    work = work_folder(spec, request.profile, rid)
    if request.restart:
        _restart(spark, request, work, rid)
    # The work folder holds the engine's state: the same definition guard as the stream's checkpoint.
    check_checkpoint_definition(spark, work, spec, request.spec_file)
    progress = Progress.load_or_new(spark, work, rid, spec.online_store.feature_group_name, request.start,
                                    request.end, request.chunk_ms)
    chunks = plan_chunks(request.start, request.end, request.chunk_ms)
    _remove_unfinished(spark, request, rid, progress, chunks)
    sink = OfflineStoreSink(spec, request.data_root, paths.join(work, "out"), rid)
    writer = FeatureBatchWriter(spec, sink, paths.join(work, "late"))
    result = BackfillResult(rid, work, [])
    with scoped_conf(spark, _pass_conf(spark)):
        carried = Carried()
        for chunk in chunks:
            started = time.monotonic()
            entry = progress.chunks.get(str(chunk.index), {})
            if progress.state(chunk) == DONE:
                newest = entry.get("newest_event_ms")
                carried = Carried(None if newest is None else int(newest), entry.get("state_folder"))
                done = ChunkReport(chunk, len(chunks), True, int(entry.get("events", 0)), int(entry.get("invalid", 0)),
                                   int(entry.get("records", 0)), int(entry.get("decay_records", 0)),
                                   int(entry.get("files", 0)), 0.0)
                result.chunks.append(done)
                report(done)
                continue
            files_before = sink.files_written
            figures, after = _run_chunk(spark, request, chunk, carried, work, writer)
            figures["files"] = sink.files_written - files_before
            progress.mark(spark, chunk, DONE, **figures, newest_event_ms=after.newest_event_ms,
                          state_folder=after.state)
            if carried.state is not None and carried.state != after.state:
                hadoop_fs.delete(spark, carried.state)  # no chunk starts from it any more
            carried = after
            finished = ChunkReport(chunk, len(chunks), False, figures["events"], figures["invalid"], figures["records"],
                                   figures["decay_records"], figures["files"], time.monotonic() - started)
            result.chunks.append(finished)
            report(finished)
    if request.online:
        result.online_records = write_online(spark, request, rid)
    return result


def _pass_conf(spark: SparkSession) -> dict[str, str]:
    """Session settings for the chunks' passes (a lower limit the user set is kept)."""
    settings = {CACHE_COMPRESSED: "false"}
    limit = spark.conf.get(HUGE_METHOD_LIMIT, None)
    if limit is not None and limit.isdigit() and int(limit) <= HOTSPOT_HUGE_METHOD:
        return settings
    return {**settings, HUGE_METHOD_LIMIT: str(HOTSPOT_HUGE_METHOD)}


def write_online(spark: SparkSession, request: BackfillRequest, rid: str) -> int:
    """The range's latest record per entity to the online store, through the stream's writer.

    SageMaker keeps the newest EventTime online, so a record the stream already wrote after the
    range is never replaced by an older backfilled one.
    """
    spec, profile = request.spec, request.profile
    files = files_of_range(spark, request.data_root, rid)
    if not files:
        return 0
    target = replace(online_target(spec, profile), already_unique=False)
    names = [spec.entity.key, spec.event_time.field, *aggregation.feature_columns(spec)]
    records = spark.read.parquet(*files).select(*[F.col(f"`{n}`") for n in names])
    sink = build_sink(target, profile.feature_store, paths.join(profile.dlq_path, spec.name, "online-store"))
    metrics: Any = sink.write_batch(records, 0)
    return int(getattr(metrics, "records_written", 0))
