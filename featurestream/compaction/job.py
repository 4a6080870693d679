"""One compaction run of one feature group.

    lock → gc → ledger → list → (nothing new: done) → read new files + the touched partitions'
    current files → rules (rules.py) → one shuffle, one sort, one file per task (layout.py,
    partitions.py) → snapshot → deletion log → ledger segment → check the lock → switch the
    manifest → gc

Everything before the manifest switch writes new, unreferenced files only; a run that dies at
any point leaves the committed state untouched and the next run (after the lock goes stale)
deletes its leftovers and does the same work again. Only partitions that new source files (or,
with deletes=apply, new delete markers) touch are read and rewritten.
"""

from __future__ import annotations

import logging
import time

from pyspark.sql import DataFrame, SparkSession

from featurestream.compaction.context import CompactionSettings, FeatureGroupTarget, RunContext
from featurestream.compaction.deletes import update_deletion_log
from featurestream.compaction.gc import collect_garbage
from featurestream.compaction.layout import partition_key_of_hour
from featurestream.compaction.ledger import read_ledger, write_segment
from featurestream.compaction.lock import CompactionLock
from featurestream.compaction.manifest import (
    Manifest,
    PartitionEntry,
    RetiredFile,
    Stats,
    commit_manifest,
    read_manifest,
)
from featurestream.compaction.partitions import files_per_partition, write_partitions
from featurestream.compaction.progress import Progress
from featurestream.compaction.rules import with_event_ts, with_partitions
from featurestream.compaction.snapshot import write_snapshot
from featurestream.compaction.sources import output_bytes_per_source_byte, read_new, run_schema
from featurestream.compaction.storage import open_store
from featurestream.compaction.summary import RunSummary
from featurestream.connectors.offline_store import SourceFile, list_source_files, s3_client
from featurestream.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["CompactionSettings", "FeatureGroupTarget", "compact_feature_group"]


def compact_feature_group(
    spark: SparkSession,
    target: FeatureGroupTarget,
    settings: CompactionSettings,
    progress: Progress | None = None,
) -> RunSummary:
    """Compact what is new in `target`'s offline store; returns the run's summary.

    Raises LockBusyError when another live run holds the group, ConfigError when the output was
    built with different settings, CompactionError (and Spark's errors) on failure; in every
    failure case the committed output is unchanged.
    """
    store = open_store(target.output, settings.region)
    return _Run(RunContext(spark, target, settings, store, progress or Progress())).execute()


class _Run:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.started = time.monotonic()

    def execute(self) -> RunSummary:
        ctx = self.ctx
        try:
            if ctx.settings.dry_run:
                self._dry_run()
            else:
                lock = CompactionLock(ctx.store, ctx.target.output, ctx.run_id,
                                      stale_after_s=ctx.settings.stale_after_s, heartbeat_s=ctx.settings.heartbeat_s)
                ctx.phase("lock")
                lock.acquire()
                if lock.took_over is not None:
                    ctx.summary.lock_taken_over_from = lock.took_over.run_id
                try:
                    self._locked(lock)
                finally:
                    lock.release()
        finally:
            ctx.summary.seconds = time.monotonic() - self.started
        ctx.phase("done", f"{ctx.summary.status} in {ctx.summary.seconds:.1f}s")
        return ctx.summary

    def _check_compatible(self, manifest: Manifest | None) -> None:
        if manifest is None:
            return
        settings, target = self.ctx.settings, self.ctx.target
        for name, ours, theirs in (
            ("partition_by", settings.partition_by, manifest.partition_by),
            ("deletes", settings.deletes, manifest.deletes),
            ("record_identifier", target.record_identifier, manifest.record_identifier),
            ("event_time", target.event_time, manifest.event_time),
        ):
            if ours != theirs:
                raise ConfigError(str(target.output), name,
                                  f"the output was built with {name}={theirs!r}, not {ours!r}; "
                                  "compact into a new output folder (or delete this one to rebuild)")
        if manifest.source != str(target.source):
            log.warning("feature group %s: source changed from %s to %s (recreated group?); new files are merged",
                        target.name, manifest.source, target.source)

    def _new_source_files(self, manifest: Manifest | None) -> tuple[list[SourceFile], list[SourceFile]]:
        """(new files, every listed file)."""
        ctx = self.ctx
        processed = read_ledger(ctx.store, ctx.target.output, manifest.ledger if manifest else [])
        ctx.phase("list", str(ctx.target.source))
        client = s3_client(ctx.settings.region) if ctx.target.source.is_s3 else None
        listed = list_source_files(ctx.target.source, since=ctx.settings.since, until=ctx.settings.until,
                                   client=client)
        return [f for f in listed if str(f.uri) not in processed], listed

    def _dry_run(self) -> None:
        ctx = self.ctx
        manifest, _ = read_manifest(ctx.store, ctx.target.output)
        self._check_compatible(manifest)
        new, listed = self._new_source_files(manifest)
        touched = sorted({partition_key_of_hour(f.hour, ctx.settings.partition_by) for f in new})
        summary = ctx.summary
        summary.status = "dry-run"
        summary.version = manifest.version if manifest else 0
        summary.files_in = len(new)
        summary.bytes_in = sum(f.size for f in new)
        summary.partitions = touched
        summary.partitions_rewritten = len(touched)
        summary.existing_files_read = len(manifest.data_files(touched)) if manifest else 0
        ctx.phase("plan", f"{len(new)} new of {len(listed)} source files, {len(touched)} partitions to rewrite")

    def _locked(self, lock: CompactionLock) -> None:
        ctx = self.ctx
        summary = ctx.summary
        manifest, token = read_manifest(ctx.store, ctx.target.output)
        self._check_compatible(manifest)
        summary.version = manifest.version if manifest else 0
        ctx.phase("gc")
        summary.garbage_files_deleted = collect_garbage(ctx.store, ctx.target.output, manifest, time.time(),
                                                        ctx.settings.gc_grace_s)
        new, listed = self._new_source_files(manifest)
        summary.files_in = len(new)
        summary.bytes_in = sum(f.size for f in new)
        if not new:
            summary.status = "noop"
            ctx.phase("plan", f"no new files among {len(listed)}")
            return
        ctx.phase("plan", f"{len(new)} new of {len(listed)} source files")
        updated = self._compact(manifest, new, listed)
        lock.ensure_held()
        ctx.phase("commit", f"version {updated.version}")
        commit_manifest(ctx.store, ctx.target.output, updated, token)
        summary.version = updated.version
        summary.status = "compacted"
        ctx.phase("committed", f"version {updated.version}")
        summary.garbage_files_deleted += collect_garbage(ctx.store, ctx.target.output, updated, time.time(),
                                                         ctx.settings.gc_grace_s)

    def _compact(self, manifest: Manifest | None, new: list[SourceFile], listed: list[SourceFile]) -> Manifest:
        """Write every file of the next version and return its manifest (not yet committed)."""
        ctx = self.ctx
        settings, target, summary = ctx.settings, ctx.target, ctx.summary
        version = (manifest.version if manifest else 0) + 1
        now = time.time()
        schema = run_schema(ctx, manifest, new)
        new_rows = with_partitions(with_event_ts(read_new(ctx, new, listed, schema), target.event_time),
                                   settings.partition_by)
        touched = {partition_key_of_hour(f.hour, settings.partition_by) for f in new}

        tombstones = manifest.tombstones if manifest else None
        deletions: DataFrame | None = None
        retired: list[str] = []
        if settings.deletes == "apply":
            tombstones, deletions, affected = update_deletion_log(ctx, manifest, new_rows, schema)
            if manifest and manifest.tombstones and tombstones != manifest.tombstones:
                retired += [f.path for f in manifest.tombstones]
            touched |= affected

        existing = manifest.data_files(sorted(touched)) if manifest else []
        retired += [f.path for f in existing]
        ratio = output_bytes_per_source_byte(ctx, manifest, new)
        sizes = files_per_partition(ctx, manifest, new, sorted(touched), ratio)
        written = write_partitions(ctx, sorted(touched), sizes, schema, new_rows, existing, deletions)

        partitions = dict(manifest.partitions) if manifest else {}
        for key in touched:
            files = written.get(key)
            if files:
                partitions[key] = PartitionEntry(files=files, version=version)
            else:
                partitions.pop(key, None)  # every row of it was deleted

        snapshot = manifest.snapshot if manifest else None
        if settings.snapshot:
            retired += [f.path for f in snapshot or []]
            snapshot = write_snapshot(ctx, schema, [f for key in sorted(written) for f in written[key]],
                                      snapshot or [], deletions)

        ctx.phase("ledger")
        segments, retired_segments = write_segment(
            ctx.store, target.output, version=version, run_id=ctx.run_id, new_files=new,
            previous_segments=list(manifest.ledger) if manifest else [],
        )
        retired += retired_segments

        kept = [r for r in (manifest.retired if manifest else []) if now - r.retired_at < settings.gc_grace_s]
        return Manifest(
            feature_group=target.name,
            version=version,
            run_id=ctx.run_id,
            committed_at=time.time(),
            source=str(target.source),
            record_identifier=target.record_identifier,
            event_time=target.event_time,
            partition_by=settings.partition_by,  # type: ignore[arg-type]
            deletes=settings.deletes,  # type: ignore[arg-type]
            spark_schema=schema.json(),
            partitions=partitions,
            snapshot=snapshot,
            tombstones=tombstones,
            ledger=segments,
            retired=kept + [RetiredFile(path=p, retired_at=now) for p in retired],
            stats=Stats(
                source_rows_per_byte=summary.rows_in / summary.bytes_in if summary.bytes_in and summary.rows_in
                else None,
                output_bytes_per_row=summary.bytes_out / summary.rows_out if summary.rows_out else None,
            ),
        )
