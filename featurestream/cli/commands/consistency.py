"""`featurestream consistency` and `spark-submit jobs/consistency.py`: does the online store serve
what the definition says, and does the offline store hold what the online store served?

    featurestream consistency --feature-group conf/feature_groups/card_risk.yaml --env local \\
        --from-files events.jsonl --format json [--sample 1000] [--report consistency.html]

For a sample of entities (`--sample`, half hot, half cold) the online records (BatchGetRecord) are
compared feature by feature with the definition recomputed as of each record's EventTime by the
backfill's engine, from the same sources `backfill` reads (`--from-files`, `--from-archive`, `--from-jdbc-url`), and
with each entity's newest offline-store row (the group's offline store, or `--offline-store URI`,
plus the compacted output with `--compacted URI`; an Iceberg-format group's table in the profile's
catalog, compacted in place; `--no-offline` skips it). One JSON summary on
stdout, `featurestream_consistency_*` gauges pushed with the run's metrics (the profile's
batch_metrics), an HTML page with `--report FILE`.

Exit codes: 0 every threshold held, 3 a threshold was exceeded (the summary's `exceeded` says
which), 2 bad arguments or files (before Spark starts), 1 the check could not run.
"""

from __future__ import annotations

import argparse
import json
import logging
import uuid
from pathlib import Path
from typing import Any

from featurestream.cli.commands.backfill import parse_time
from featurestream.cli.job_session import job_session
from featurestream.cli.offline_target import offline_target
from featurestream.cli.profile_option import add_env_argument, profile_name
from featurestream.cli.source_options import add_source_arguments, archive_catalog, event_source
from featurestream.config import load_feature_group, load_profile
from featurestream.durations import parse_duration_ms
from featurestream.errors import ConfigError
from featurestream.logs import configure_json_logging
from featurestream.ops.batch_metrics import published_run

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--feature-group", required=True, metavar="FILE", help="conf/feature_groups/<name>.yaml")
    add_env_argument(parser)
    add_source_arguments(parser)
    parser.add_argument("--sample", type=int, default=1000, metavar="N",
                        help="entities to check (default 1000): half from the top decile by events, "
                             "half from the rest")
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed (the same seed, the same sample)")
    parser.add_argument("--start", metavar="TIME",
                        help="first event time the recompute reads (default: the source's first)")
    parser.add_argument("--end", metavar="TIME",
                        help="end of the events read, excluded (default: after the source's newest)")
    parser.add_argument("--chunk", default="1d", metavar="DURATION", help="event time per recompute chunk (default 1d)")
    parser.add_argument("--tolerance", type=float, default=1e-9,
                        help="Fractional features are equal when |a-b| <= tolerance * max(1, |b|) (default 1e-9)")
    parser.add_argument("--offline-store", metavar="URI",
                        help="the offline store's `.../data` folder (default: the group's ResolvedOutputS3Uri)")
    parser.add_argument("--compacted", metavar="URI", help="the group's compacted output (read with its ledger)")
    parser.add_argument("--no-offline", action="store_true", help="skip the online vs offline comparison")
    parser.add_argument("--report", metavar="FILE", help="write the HTML report here (a path, or s3://...)")
    parser.add_argument("--work", metavar="URI", help="scratch folder (default: under the profile's checkpoint_root)")
    limits = parser.add_argument_group("thresholds (exceeded: exit 3)")
    limits.add_argument("--min-match-rate", type=float, default=1.0, metavar="R",
                        help="per feature, equal / (compared - explained) (default 1.0)")
    limits.add_argument("--max-online-missing-rate", type=float, default=0.0, metavar="R",
                        help="sampled entities without an online record (default 0)")
    limits.add_argument("--max-offline-missing-rate", type=float, default=0.0, metavar="R",
                        help="entities without an offline row (default 0)")
    limits.add_argument("--max-offline-different-rate", type=float, default=0.0, metavar="R",
                        help="entities whose offline row at the same EventTime differs (default 0)")
    limits.add_argument("--max-offline-lag", metavar="DURATION",
                        help="event-time lag of the offline store allowed (default: not checked)")


def _rate(value: float, flag: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise ConfigError("command line", flag, f"{value} is not a share between 0 and 1")
    return value


def _duration(text: str, flag: str) -> int:
    try:
        return parse_duration_ms(text)
    except ValueError as exc:
        raise ConfigError("command line", flag, str(exc)) from None


def run(args: argparse.Namespace) -> int:
    configure_json_logging()
    spec = load_feature_group(args.feature_group)
    args.env = profile_name(args.env)
    profile = load_profile(args.env)
    if args.sample < 1:
        raise ConfigError("command line", "--sample", "must be at least 1")
    if args.tolerance < 0:
        raise ConfigError("command line", "--tolerance", "must not be negative")
    start = parse_time(args.start, "--start") if args.start else None
    end = parse_time(args.end, "--end") if args.end else None
    if (start is None) != (end is None):
        raise ConfigError("command line", "--end" if start else "--start", "give --start and --end together")
    if start and end and end <= start:
        raise ConfigError("command line", "--end", "must be later than --start")
    from featurestream.consistency.job import ConsistencyRequest, Thresholds

    thresholds = Thresholds(
        min_match_rate=_rate(args.min_match_rate, "--min-match-rate"),
        max_online_missing_rate=_rate(args.max_online_missing_rate, "--max-online-missing-rate"),
        max_offline_missing_rate=_rate(args.max_offline_missing_rate, "--max-offline-missing-rate"),
        max_offline_different_rate=_rate(args.max_offline_different_rate, "--max-offline-different-rate"),
        max_offline_lag_ms=_duration(args.max_offline_lag, "--max-offline-lag") if args.max_offline_lag else None)
    chunk_ms = _duration(args.chunk, "--chunk")
    catalog = archive_catalog(args, profile)
    source = event_source(args, spec, catalog, profile)
    args.output = args.offline_store
    target = None if args.no_offline else offline_target(args, spec, profile, "consistency")
    if target is not None and target.is_iceberg and args.compacted:
        raise ConfigError("command line", "--compacted", f"an Iceberg-format group is compacted in place: "
                          f"its table {target.table} is read, drop --compacted")
    from featurestream.io import paths, s3a

    work = s3a.to_s3a(args.work) if args.work else paths.join(profile.checkpoint_root, spec.name, "consistency",
                                                               uuid.uuid4().hex[:12])
    import boto3

    runtime = boto3.client("sagemaker-featurestore-runtime", region_name=profile.feature_store.region)
    request = ConsistencyRequest(spec, args.feature_group, profile, source, runtime,
                                 None if target is None else target.data_root,
                                 s3a.to_s3a(args.compacted) if args.compacted else None, work,
                                 sample_size=args.sample, seed=args.seed, tolerance=args.tolerance,
                                 chunk_ms=chunk_ms, start=start, end=end, thresholds=thresholds,
                                 offline_table=None if target is None else target.table)
    return _check(request, profile, args.report, catalog or (target.catalog if target else None))


def _check(request: Any, profile: Any, report: str | None, catalog: Any = None) -> int:
    from featurestream.consistency.job import run_consistency
    from featurestream.consistency.report import render
    from featurestream.consistency.summary import gauges, summary

    spec = request.spec
    from featurestream.io import s3a

    remote_report = s3a.to_s3a(report) if report and "://" in report else None
    uris = [u for u in (profile.checkpoint_root, request.offline_data_root, request.work, request.compacted,
                        remote_report) if u]
    with published_run(profile.batch_metrics, "consistency", spec.name) as metrics:
        spark, owned = job_session(f"featurestream-consistency-{spec.name}", profile, uris, catalog=catalog)
        try:
            result = run_consistency(spark, request)
            body = summary(result)
            if report:
                _write_report(spark, report, render(result, body))
                body["report"] = report
        finally:
            if owned:
                spark.stop()
        metrics.input_rows = len(result.sample)
        metrics.output_rows = sum(t.compared for t in result.tallies.values())
        metrics.groups_done = 1
        metrics.gauges = gauges(result)
    print(json.dumps(body, default=str))
    return result.exit_code


def _write_report(spark: Any, target: str, html: str) -> None:
    """A local file, or any URI Hadoop writes (s3a://... on a cluster)."""
    if "://" not in target:
        Path(target).write_text(html, encoding="utf-8")
        return
    from featurestream.io import hadoop_fs, s3a

    hadoop_fs.write_text(spark, s3a.to_s3a(target), html)
