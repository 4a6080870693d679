"""`featurestream backfill` and `spark-submit jobs/backfill_features.py`: a feature group's history,
computed by the stream's own engine and definition, into the group's offline store.

    featurestream backfill --feature-group conf/feature_groups/card_risk.yaml --env local \\
        --from-files events.jsonl --format json --start 2026-11-01 --end 2026-12-01 [--chunk 1d] [--online]

Sources: `--from-files PATH` (Parquet, or JSON lines with `--format json`), `--from-archive` (the
raw event archive of the group's source, in the profile's Iceberg catalog) or an RDS table
(`--from-jdbc-url URL --from-jdbc-table TABLE`; the password from FEATURESTREAM_JDBC_PASSWORD or
FEATURESTREAM_JDBC_PASSWORD_FILE, never a flag). Output: the group's offline store
(DescribeFeatureGroup's ResolvedOutputS3Uri; for a `TableFormat: Iceberg` group, its Iceberg table
in the profile's catalog), or `--output URI` (a `.../data` folder in the Glue layout).
`--online` also writes each entity's latest record of the range to the online store (Glue
layout only: exit 2 with an Iceberg-format group). A run that
is stopped (even with kill -9) resumes where it stopped when started again with the same
arguments; `--restart` recomputes the range, replacing its own output. A progress line per chunk
on a terminal, JSON log lines otherwise; a JSON summary on stdout at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from featurestream.cli.job_session import job_session
from featurestream.cli.lineage_option import add_sagemaker_lineage_argument, sagemaker_lineage
from featurestream.cli.offline_target import offline_target, refuse_online_with_iceberg
from featurestream.cli.profile_option import add_env_argument, profile_name
from featurestream.cli.source_options import add_source_arguments, archive_catalog, event_source
from featurestream.config import load_feature_group, load_profile
from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.config.profile import EnvironmentProfile
from featurestream.durations import parse_duration_ms
from featurestream.errors import ConfigError
from featurestream.logs import configure_json_logging

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from featurestream.backfill.job import ChunkReport
    from featurestream.iceberg import IcebergCatalog

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--feature-group", required=True, metavar="FILE", help="conf/feature_groups/<name>.yaml")
    add_env_argument(parser)
    add_sagemaker_lineage_argument(parser)
    parser.add_argument("--start", required=True, metavar="TIME",
                        help="first event time of the range, ISO-8601 UTC (2026-11-01 or 2026-11-01T13:00Z)")
    parser.add_argument("--end", required=True, metavar="TIME", help="end of the range (excluded), same forms")
    parser.add_argument("--chunk", default="1d", metavar="DURATION",
                        help="event time per chunk (default 1d): what is in memory at once; keep it to resume")
    add_source_arguments(parser)
    parser.add_argument("--output", metavar="URI",
                        help="write the offline rows here (a `.../data` folder) instead of the group's offline store")
    parser.add_argument("--online", action="store_true",
                        help="also write each entity's latest record of the range to the online store")
    parser.add_argument("--restart", action="store_true",
                        help="recompute the range from scratch, replacing its earlier output")


def parse_time(text: str, flag: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError("command line", flag, f"{text!r} is not an ISO-8601 time (2026-11-01, "
                                                "2026-11-01T13:00Z)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _record_sagemaker(args: argparse.Namespace, spec: FeatureGroupSpec, profile: EnvironmentProfile, source: Any,
                      data_root: str) -> Any:
    """The source (RDS table by its masked URL, or the files) ContributedTo the backfill action (one per
    group and definition), which Produced the feature group, or the folder given with --output."""
    from featurestream.backfill.sources import ArchiveSource, JdbcSource
    from featurestream.config.fingerprint import fingerprint
    from featurestream.ops import lineage as ol
    from featurestream.ops import sagemaker_lineage as sm

    recorder = sagemaker_lineage(args, profile.lineage, profile.feature_store.region)
    name, digest = spec.online_store.feature_group_name, fingerprint(spec)

    def inputs() -> dict[str, sm.Artifact]:
        if isinstance(source, ArchiveSource):  # the stream's own name for it (cli/commands/stream.py)
            return {"source": sm.Artifact(uri=f"iceberg://{source.table.replace('.', '/', 1)}", type=sm.RAW_ARCHIVE,
                                          properties={"table": source.table})}
        if isinstance(source, JdbcSource):
            table = ol.jdbc_table(source.jdbc.url, source.table)
            return {"source": sm.dataset_artifact(table.namespace, table.name, sm.DATA_SOURCE)}
        return {"source": sm.path_artifact(source.path, sm.OFFLINE_DATA, format=source.format)}

    def outputs() -> dict[str, sm.Artifact]:
        if args.output:
            return {"output": sm.path_artifact(data_root, sm.OFFLINE_DATA, feature_group=name)}
        return {"feature_group": sm.feature_group_artifact(recorder.client, name, digest)}

    action = sm.Action(job="backfill", subject=name, identity=digest, uri=f"featurestream://backfill/{name}",
                       properties={"definition_fingerprint": digest})
    return sm.record_run(recorder, action, inputs, outputs)


def _session(profile: EnvironmentProfile, spec: FeatureGroupSpec, data_root: str,
             catalog: IcebergCatalog | None) -> tuple[SparkSession, bool]:
    return job_session(f"featurestream-backfill-{spec.name}", profile, (profile.checkpoint_root, data_root),
                       catalog=catalog)


def progress_line(report: ChunkReport) -> str:
    chunk = report.chunk
    span = f"{chunk.start:%Y-%m-%d %H:%M} → {chunk.end:%Y-%m-%d %H:%M}"
    head = f"chunk {chunk.index + 1}/{report.total} {span}"
    if report.skipped:
        return f"{head}: done earlier ({report.records:,} records)"
    return (f"{head}: {report.events:,} events ({report.invalid:,} invalid), {report.records:,} records "
            f"({report.decay_records:,} decay), {report.files} files, {report.seconds:.1f} s")


def _reporter(terminal: bool) -> Any:
    def report(chunk_report: ChunkReport) -> None:
        if terminal:
            print(progress_line(chunk_report), file=sys.stderr, flush=True)
            return
        chunk = chunk_report.chunk
        log.info(json.dumps({"event": "backfill_chunk", "chunk": chunk.index, "chunks": chunk_report.total,
                             "start": chunk.start.isoformat(), "end": chunk.end.isoformat(),
                             "skipped": chunk_report.skipped, "events": chunk_report.events,
                             "invalid": chunk_report.invalid, "records": chunk_report.records,
                             "decay_records": chunk_report.decay_records, "files": chunk_report.files,
                             "seconds": round(chunk_report.seconds, 3)}))
    return report


def run(args: argparse.Namespace) -> int:
    terminal = sys.stderr.isatty()
    if not terminal:
        configure_json_logging()
    # Everything that can be wrong with the arguments and files is found before Spark starts.
    spec = load_feature_group(args.feature_group)
    args.env = profile_name(args.env)
    profile = load_profile(args.env)
    start, end = parse_time(args.start, "--start"), parse_time(args.end, "--end")
    if end <= start:
        raise ConfigError("command line", "--end", "must be later than --start")
    try:
        chunk_ms = parse_duration_ms(args.chunk)
    except ValueError as exc:
        raise ConfigError("command line", "--chunk", str(exc)) from None
    catalog = archive_catalog(args, profile)
    source = event_source(args, spec, catalog, profile)
    target = offline_target(args, spec, profile, "backfill")
    if args.online:
        refuse_online_with_iceberg(target)

    from featurestream.backfill.job import BackfillRequest, run_backfill
    from featurestream.backfill.offline import iceberg_data_root

    data_root = iceberg_data_root(target.table) if target.table else target.data_root
    request = BackfillRequest(spec, args.feature_group, profile, source, start, end, chunk_ms, data_root,
                              online=args.online, restart=args.restart)
    spark, owned = _session(profile, spec, target.data_root, catalog or target.catalog)
    try:
        result = run_backfill(spark, request, _reporter(terminal))
    finally:
        if owned:
            spark.stop()
    recorded = _record_sagemaker(args, spec, profile, source, data_root)
    print(json.dumps({"feature_group": spec.name, "range_id": result.range_id, "source": source.describe(),
                      "start": start.isoformat(), "end": end.isoformat(), "chunks": len(result.chunks),
                      "chunks_done_earlier": sum(c.skipped for c in result.chunks),
                      "events": sum(c.events for c in result.chunks), "records": result.records,
                      "online_records": result.online_records, "output": data_root, "work": result.work,
                      "sagemaker_lineage": recorded.describe() if recorded is not None else None}))
    return 0
