"""The backfill of one feature group over one time range, chunk by chunk.

Per chunk [a, b) of event time:
1. stage: the source's events of [a, b), held to the stream's validity rules, written as Parquet
   to a staging folder and moved into the query's input folder (`staged` in the progress file);
2. compute: the stream's pipeline (transforms, the tile engine in history mode) as a streaming
   query over that folder, Trigger.AvailableNow: the new chunk is one micro-batch (plus Spark's
   timer batch, which emits the decay records up to the chunk's newest event); records go to the
   offline store (`OfflineStoreSink`), and the engine state stays in the query's checkpoint for
   the next chunk (`done`).
Chunks are in event-time order, so the engine sees events in event-time order, as a stream that
is never late would; no event of a chunk is before the previous chunk's watermark.

A kill -9 at any point resumes where it stopped: a `done` chunk is skipped, a `staged` one is
computed (the query replays a batch it had not committed, writing the same file names again), an
unstaged one is staged again. `--restart` deletes the range's work folder and its offline files
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

from pyspark.sql import Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType, TimestampType, _parse_datatype_string

from featurestream.backfill.chunks import DONE, STAGED, Chunk, Progress, plan_chunks, range_id
from featurestream.backfill.offline import OfflineStoreSink, files_of_range
from featurestream.backfill.sources import EventSource
from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.config.profile import EnvironmentProfile
from featurestream.connectors.online_store import build_sink
from featurestream.engine import aggregation
from featurestream.engine.parsing import usable
from featurestream.engine.pipeline import EngineMetrics, FeatureBatchWriter, feature_stream, online_target
from featurestream.engine.transforms import check_with_spark
from featurestream.errors import FeatureStreamError
from featurestream.io import hadoop_fs, paths
from featurestream.ops.definitions import check_checkpoint_definition

log = logging.getLogger(__name__)


class BackfillError(FeatureStreamError):
    """A chunk's query failed (the cause is Spark's first line)."""


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


def work_folder(spec: FeatureGroupSpec, profile: EnvironmentProfile, rid: str) -> str:
    return paths.join(profile.checkpoint_root, spec.name, "backfill", rid)


def staged_schema(spec: FeatureGroupSpec) -> StructType:
    """The source schema as the staged Parquet holds it: the event time a timestamp."""
    parsed = _parse_datatype_string(spec.source.ddl())
    assert isinstance(parsed, StructType)
    return StructType([StructField(f.name, TimestampType(), True) if f.name == spec.event_time.field else f
                       for f in parsed.fields])


def _stage(spark: SparkSession, request: BackfillRequest, chunk: Chunk, work: str) -> tuple[int, int]:
    """The chunk's usable events into the query's input folder; (events, invalid events)."""
    spec = request.spec
    frame = request.source.read(spark, spec, chunk.start, chunk.end)
    ok = usable(spec, frame)
    seen = Observation(f"backfill_chunk_{chunk.index}")
    frame = frame.observe(seen, F.count_if(ok).alias("valid"), F.count_if(~ok).alias("invalid"))
    staging = paths.join(work, "staging", f"chunk={chunk.index}")
    frame.where(ok).select(*[F.col(f"`{c}`") for c in spec.source.schema_]).write.mode("overwrite").parquet(staging)
    counts = seen.get
    inputs = paths.join(work, "input")
    hadoop_fs.mkdirs(spark, inputs)  # the query's source folder exists even when a chunk has no event
    prefix = f"chunk-{chunk.index:05d}-"
    for old in hadoop_fs.glob(spark, paths.join(inputs, f"{prefix}*")):
        hadoop_fs.delete(spark, old, recursive=False)  # a staging cut short by a kill
    staged = [f for f in hadoop_fs.list_files(spark, staging) if f.endswith(".parquet")]
    for number, source in enumerate(staged):
        hadoop_fs.rename(spark, source, paths.join(inputs, f"{prefix}{number:04d}.parquet"))
    hadoop_fs.delete(spark, staging)
    return int(counts.get("valid", 0)), int(counts.get("invalid", 0))


def _compute(spark: SparkSession, request: BackfillRequest, work: str, sink: OfflineStoreSink) -> EngineMetrics:
    """Everything staged and not yet processed, through the stream's pipeline in history mode."""
    spec = request.spec
    checkpoint = paths.join(work, "checkpoint")
    writer = FeatureBatchWriter(spec, sink, paths.join(work, "late"), checkpoint=checkpoint)
    events = spark.readStream.schema(staged_schema(spec)).parquet(paths.join(work, "input"))
    query = (feature_stream(events, spec, history=True)
             .writeStream.queryName(f"{spec.name}-backfill")
             .outputMode("update")
             .foreachBatch(writer)
             .option("checkpointLocation", checkpoint)
             .trigger(availableNow=True)
             .start())
    query.awaitTermination()
    error = query.exception()
    if error is not None:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BackfillError(f"backfill of {spec.name}: the engine's query failed: {first}")
    return writer.metrics


def _restart(spark: SparkSession, request: BackfillRequest, work: str, rid: str) -> int:
    """Delete the range's work folder and offline files; returns how many files were removed."""
    removed = 0
    for path in files_of_range(spark, request.data_root, rid):
        hadoop_fs.delete(spark, path, recursive=False)
        removed += 1
    hadoop_fs.delete(spark, work)
    log.info(json.dumps({"event": "backfill_restart", "range_id": rid, "offline_files_removed": removed}))
    return removed


def run_backfill(spark: SparkSession, request: BackfillRequest,
                 report: Callable[[ChunkReport], None] = lambda _: None) -> BackfillResult:
    spec = request.spec
    check_with_spark(spec, spark, request.spec_file)
    rid = range_id(spec.online_store.feature_group_name, request.start, request.end)
    work = work_folder(spec, request.profile, rid)
    if request.restart:
        _restart(spark, request, work, rid)
    # The work folder is the engine's checkpoint: the same definition guard as the stream's.
    check_checkpoint_definition(spark, work, spec, request.spec_file)
    progress = Progress.load_or_new(spark, work, rid, spec.online_store.feature_group_name, request.start,
                                    request.end, request.chunk_ms)
    chunks = plan_chunks(request.start, request.end, request.chunk_ms)
    sink = OfflineStoreSink(spec, request.data_root, paths.join(work, "out"), rid)
    result = BackfillResult(rid, work, [])
    for chunk in chunks:
        started = time.monotonic()
        state = progress.state(chunk)
        if state == DONE:
            entry = progress.chunks[str(chunk.index)]
            done = ChunkReport(chunk, len(chunks), True, int(entry.get("events", 0)), int(entry.get("invalid", 0)),
                               int(entry.get("records", 0)), int(entry.get("decay_records", 0)),
                               int(entry.get("files", 0)), 0.0)
            result.chunks.append(done)
            report(done)
            continue
        if state != STAGED:
            events, invalid = _stage(spark, request, chunk, work)
            progress.mark(spark, chunk, STAGED, events=events, invalid=invalid)
        entry = progress.chunks[str(chunk.index)]
        files_before = sink.files_written
        metrics = _compute(spark, request, work, sink)
        figures = {"events": int(entry.get("events", 0)), "invalid": int(entry.get("invalid", 0)),
                   "records": metrics.records, "decay_records": metrics.decay_records,
                   "files": sink.files_written - files_before, "late_events": metrics.late_events}
        progress.mark(spark, chunk, DONE, **figures)
        finished = ChunkReport(chunk, len(chunks), False, figures["events"], figures["invalid"], figures["records"],
                               figures["decay_records"], figures["files"], time.monotonic() - started)
        result.chunks.append(finished)
        report(finished)
    if request.online:
        result.online_records = write_online(spark, request, rid)
    return result


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
