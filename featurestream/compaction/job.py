"""One compaction run of one feature group.

    lock → (predecessor died: remove orphan files) → sweep side files → ledger → list →
    (nothing new: done) → read new files + the touched partitions of the current snapshot →
    rules (rules.py) → snapshot, deletion log, ledger segment (side files) → check the lock →
    one shuffle, one sort, one file per task, and one Iceberg commit that replaces the touched
    partitions and names the side files in its summary → expire superseded snapshots

The Iceberg commit is the only switch: before it the table's current snapshot is unchanged and
whatever the run wrote is unreferenced (orphan data files, side files no snapshot names); the
next run removes them and does the same work again. Only partitions that new source files (or,
with deletes=apply, new delete markers) touch are read and rewritten.
"""

from __future__ import annotations

import logging
import time

from pyspark.sql import DataFrame, SparkSession

from featurestream.compaction import table
from featurestream.compaction.context import CompactionSettings, FeatureGroupTarget, RunContext
from featurestream.compaction.deletes import update_deletion_log
from featurestream.compaction.gc import sweep_side_files
from featurestream.compaction.layout import partition_key_of_hour
from featurestream.compaction.ledger import read_ledger, write_segment
from featurestream.compaction.lock import CompactionLock
from featurestream.compaction.maintenance import maintain
from featurestream.compaction.partitions import files_per_partition, write_partitions
from featurestream.compaction.progress import Progress
from featurestream.compaction.rules import with_event_ts, with_partitions
from featurestream.compaction.snapshot import write_snapshot
from featurestream.compaction.sources import output_bytes_per_source_byte, read_new, run_schema
from featurestream.compaction.state import CommittedState
from featurestream.compaction.storage import open_store
from featurestream.compaction.summary import RunSummary
from featurestream.compaction.table import STATE_PROPERTY, TableState
from featurestream.connectors.offline_store import SourceFile, list_source_files, s3_client
from featurestream.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["CompactionSettings", "FeatureGroupTarget", "compact_feature_group"]

OLD_MANIFEST = "_compaction/manifest.json"


def compact_feature_group(
    spark: SparkSession,
    target: FeatureGroupTarget,
    settings: CompactionSettings,
    progress: Progress | None = None,
) -> RunSummary:
    """Compact what is new in `target`'s offline store into its Iceberg table; returns the summary.

    Raises LockBusyError when another live run holds the group, ConfigError when the table was
    built with different settings, CompactionError (and Spark's errors) on failure; in every
    failure case the table's current snapshot is unchanged.
    """
    store = open_store(target.output, settings.region)
    return _Run(RunContext(spark, target, settings, store, progress or Progress())).execute()


class _Run:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.started = time.monotonic()

    def execute(self) -> RunSummary:
        ctx = self.ctx
        iceberg_store = ctx.target.source_table
        ctx.summary.table = str(iceberg_store or ctx.target.table_ref)
        try:
            if ctx.settings.dry_run:
                if iceberg_store is not None:
                    maintain(ctx, iceberg_store)
                else:
                    self._dry_run()
            else:
                lock = CompactionLock(ctx.store, ctx.target.output, ctx.run_id,
                                      stale_after_s=ctx.settings.stale_after_s, heartbeat_s=ctx.settings.heartbeat_s)
                ctx.phase("lock")
                lock.acquire()
                if lock.took_over is not None:
                    ctx.summary.lock_taken_over_from = lock.took_over.run_id
                try:
                    if iceberg_store is not None:
                        maintain(ctx, iceberg_store)
                    else:
                        self._locked(lock)
                finally:
                    lock.release()
        finally:
            ctx.summary.seconds = time.monotonic() - self.started
        ctx.phase("done", f"{ctx.summary.status} in {ctx.summary.seconds:.1f}s")
        return ctx.summary

    def _load(self) -> tuple[TableState | None, CommittedState | None]:
        ctx = self.ctx
        current = table.load_state(ctx.spark, ctx.target.table_ref, ctx.pcols)
        if current is None and ctx.store.read(ctx.out(OLD_MANIFEST)) is not None:
            raise ConfigError(str(ctx.target.output), "output",
                              "holds a compacted folder of the pre-Iceberg format (_compaction/manifest.json); "
                              "move it away and compact again to rebuild it as an Iceberg table (docs/compaction.md)")
        self._check_compatible(current)
        committed = CommittedState.decode(current.summary.get(STATE_PROPERTY)) if current else None
        return current, committed

    def _check_compatible(self, current: TableState | None) -> None:
        if current is None:
            return
        settings, target = self.ctx.settings, self.ctx.target
        for name, key, ours in (
            ("partition_by", "partition-by", settings.partition_by),
            ("deletes", "deletes", settings.deletes),
            ("record_identifier", "record-identifier", target.record_identifier),
            ("event_time", "event-time", target.event_time),
        ):
            theirs = current.setting(key)
            if theirs is not None and ours != theirs:
                raise ConfigError(str(target.output), name,
                                  f"the table {target.table_ref} was built with {name}={theirs!r}, not {ours!r}; "
                                  "compact into a new table (or drop this one to rebuild)")

    def _new_source_files(self, committed: CommittedState | None) -> tuple[list[SourceFile], list[SourceFile]]:
        """(new files, every listed file)."""
        ctx = self.ctx
        processed = read_ledger(ctx.store, ctx.target.output, committed.ledger if committed else [])
        if committed and committed.source and committed.source != str(ctx.target.source):
            log.warning("feature group %s: source changed from %s to %s (recreated group?); new files are merged",
                        ctx.target.name, committed.source, ctx.target.source)
        ctx.phase("list", str(ctx.target.source))
        client = s3_client(ctx.settings.region) if ctx.target.source.is_s3 else None
        listed = list_source_files(ctx.target.source, since=ctx.settings.since, until=ctx.settings.until,
                                   client=client)
        return [f for f in listed if str(f.uri) not in processed], listed

    def _dry_run(self) -> None:
        ctx = self.ctx
        current, committed = self._load()
        new, listed = self._new_source_files(committed)
        touched = sorted({partition_key_of_hour(f.hour, ctx.settings.partition_by) for f in new})
        summary = ctx.summary
        summary.status = "dry-run"
        summary.version = committed.version if committed else 0
        summary.snapshot_id = current.snapshot_id if current else None
        summary.files_in = len(new)
        summary.bytes_in = sum(f.size for f in new)
        summary.partitions = touched
        summary.partitions_rewritten = len(touched)
        if current is not None and current.snapshot_id is not None and touched:
            existing = table.data_files(ctx.spark, ctx.target.table_ref, current.snapshot_id, ctx.pcols, touched)
            summary.existing_files_read = sum(len(v) for v in existing.values())
        ctx.phase("plan", f"{len(new)} new of {len(listed)} source files, {len(touched)} partitions to rewrite")

    def _locked(self, lock: CompactionLock) -> None:
        ctx = self.ctx
        summary = ctx.summary
        current, committed = self._load()
        summary.version = committed.version if committed else 0
        summary.snapshot_id = current.snapshot_id if current else None
        ctx.phase("gc")
        if lock.took_over is not None and current is not None:
            # The previous run died: the data files it wrote before committing are orphans.
            summary.garbage_files_deleted += table.remove_orphan_files(ctx.spark, ctx.target.table_ref,
                                                                       self._cutoff_ms())
        summary.garbage_files_deleted += self._sweep(current)
        new, listed = self._new_source_files(committed)
        summary.files_in = len(new)
        summary.bytes_in = sum(f.size for f in new)
        if not new:
            summary.status = "noop"
            ctx.phase("plan", f"no new files among {len(listed)}")
            return
        ctx.phase("plan", f"{len(new)} new of {len(listed)} source files")
        after = self._compact(current, committed, new, listed, lock)
        summary.snapshot_id = after.snapshot_id if after else None
        summary.status = "compacted"
        ctx.phase("committed", f"version {summary.version}, snapshot {summary.snapshot_id}")
        summary.snapshots_expired = table.expire_superseded(ctx.spark, ctx.target.table_ref, int(time.time() * 1000),
                                                            int(ctx.settings.gc_grace_s * 1000))
        if summary.snapshots_expired:
            after = table.load_state(ctx.spark, ctx.target.table_ref, ctx.pcols)
        summary.garbage_files_deleted += self._sweep(after)

    def _cutoff_ms(self) -> int:
        return int((time.time() - self.ctx.settings.gc_grace_s) * 1000)

    def _sweep(self, current: TableState | None) -> int:
        """Side files no retained snapshot of `current` (the table as last loaded) names."""
        ctx = self.ctx
        keep: set[str] = set()
        for _, _, summary in current.snapshots if current else []:
            state = CommittedState.decode(summary.get(STATE_PROPERTY))
            if state is not None:
                keep |= state.referenced()
        return sweep_side_files(ctx.store, ctx.target.output, keep, time.time(), ctx.settings.gc_grace_s)

    def _compact(self, current: TableState | None, committed: CommittedState | None, new: list[SourceFile],
                 listed: list[SourceFile], lock: CompactionLock) -> TableState | None:
        """Write the side files, then the touched partitions in one Iceberg commit."""
        ctx = self.ctx
        settings, target, summary = ctx.settings, ctx.target, ctx.summary
        ref = target.table_ref
        version = (committed.version if committed else 0) + 1
        schema = run_schema(ctx, current, new)
        if current is None:
            table.create(ctx.spark, ref, schema, ctx.partition_schema(), ctx.pcols, {
                "partition-by": settings.partition_by, "deletes": settings.deletes,
                "record-identifier": target.record_identifier, "event-time": target.event_time,
            }, settings.compression)
        base = current.snapshot_id if current else None
        new_rows = with_partitions(with_event_ts(read_new(ctx, new, listed, schema), target.event_time),
                                   settings.partition_by)
        touched = {partition_key_of_hour(f.hour, settings.partition_by) for f in new}

        tombstones = committed.tombstones if committed else None
        deletions: DataFrame | None = None
        if settings.deletes == "apply":
            tombstones, deletions, affected = update_deletion_log(ctx, committed, base, new_rows, schema)
            touched |= affected

        keys = sorted(touched)
        existing = table.data_files(ctx.spark, ref, base, ctx.pcols, keys) if base is not None else {}
        ratio = output_bytes_per_source_byte(ctx, current, committed, new)
        sizes = files_per_partition(ctx, existing, new, keys, ratio)

        snapshot = committed.snapshot if committed else None
        if settings.snapshot:
            snapshot = write_snapshot(ctx, schema, new_rows, snapshot or [], deletions, current)

        ctx.phase("ledger")
        segments = write_segment(ctx.store, target.output, version=version, run_id=ctx.run_id, new_files=new,
                                 previous_segments=list(committed.ledger) if committed else [])
        state = CommittedState(
            version=version,
            run_id=ctx.run_id,
            committed_at=time.time(),
            source=str(target.source),
            ledger=segments,
            snapshot=snapshot,
            tombstones=tombstones,
            source_bytes=(committed.source_bytes if committed else 0) + summary.bytes_in,
        )
        lock.ensure_held()
        after = write_partitions(ctx, keys, sizes, schema, new_rows, existing, base, deletions, state)
        summary.version = version
        return after
