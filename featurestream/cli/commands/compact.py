"""`featurestream compact` and `spark-submit jobs/compact_offline.py`: the same flags, the same code.

Exit codes: 0 every group compacted or had nothing new, 1 a run failed (or the group is locked
by a live run), 2 bad configuration or arguments. Prints one JSON summary to stdout; logs are
JSON lines on stderr; `--progress` adds a live display on stderr (default: when it is a terminal).
A run (not a dry run) publishes its metrics (the config's `metrics`: Pushgateway and/or textfile)
and OpenLineage START/COMPLETE events (`lineage`), the child of a scheduler's run when one is given
(spark.openlineage.parent* or OPENLINEAGE_PARENT_ID).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from featurestream import iceberg
from featurestream.cli.entrypoint import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK
from featurestream.cli.failures import describe
from featurestream.cli.lineage_option import add_sagemaker_lineage_argument, sagemaker_lineage
from featurestream.cli.profile_option import add_env_argument, profile_name
from featurestream.config import load_profile
from featurestream.config.compaction import CompactionConfig, load_compaction_config
from featurestream.durations import parse_duration_ms
from featurestream.errors import ConfigError, FeatureStreamError
from featurestream.logs import configure_json_logging
from featurestream.ops.batch_metrics import published_run
from featurestream.ops.secrets import install_redactor

log = logging.getLogger(__name__)

_RELATIVE = re.compile(r"^\d+\s*(ms|s|m|h|d)$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="conf/compaction/<name>.yaml")
    add_env_argument(parser)  # its catalog: section names the Iceberg catalog of the compacted tables
    parser.add_argument("--feature-group-name", action="append", metavar="NAME", dest="feature_groups",
                        help="compact only this configured group, by its SageMaker name (repeatable; default: all)")
    # Before 0.2 this flag took a NAME here but a FILE in stream and generate; kept, with a warning.
    parser.add_argument("--feature-group", action="append", metavar="NAME", dest="deprecated_feature_groups",
                        help=argparse.SUPPRESS)
    parser.add_argument("--since", metavar="TIME",
                        help="only source files of event hours from TIME (ISO-8601 UTC, e.g. 2026-11-01 or "
                             "2026-11-01T13:00Z, or an age such as 48h)")
    parser.add_argument("--until", metavar="TIME", help="only source files of event hours before TIME (same forms)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be compacted; write nothing")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--progress", nargs="?", choices=("auto", "always", "never"), default="auto", const="always",
                       help="live progress on stderr: --progress (always), --progress never, "
                            "default auto (when stderr is a terminal)")
    shown.add_argument("--no-progress", dest="progress", action="store_const", const="never",
                       help="no live progress (same as --progress never)")
    add_sagemaker_lineage_argument(parser)


def parse_instant(text: str, now: datetime, field: str) -> datetime:
    """ISO-8601 (naive means UTC) or an age like `48h` (that long before now)."""
    value = text.strip()
    if _RELATIVE.match(value):
        return now - timedelta(milliseconds=parse_duration_ms(value))
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError("command line", field,
                          f"{text!r} is not an ISO-8601 time (2026-11-01, 2026-11-01T13:00Z) or an age (48h)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def hour_range(since: str | None, until: str | None, now: datetime) -> tuple[datetime | None, datetime | None]:
    """[since, until) widened to whole hours: the source partitions that overlap it."""
    start = parse_instant(since, now, "--since") if since else None
    end = parse_instant(until, now, "--until") if until else None
    if start is not None:
        start = start.replace(minute=0, second=0, microsecond=0)
    if end is not None:
        floored = end.replace(minute=0, second=0, microsecond=0)
        end = floored if floored == end else floored + timedelta(hours=1)
    if start is not None and end is not None and start >= end:
        raise ConfigError("command line", "--until", "must be later than --since")
    return start, end


def _selected_groups(args: argparse.Namespace) -> list[str] | None:
    """--feature-group-name values, plus the deprecated --feature-group ones (with a warning)."""
    old = getattr(args, "deprecated_feature_groups", None)
    if not old:
        return args.feature_groups
    print("featurestream: warning: `compact --feature-group NAME` is deprecated (elsewhere --feature-group "
          "is a FILE): use --feature-group-name NAME", file=sys.stderr)
    return [*(args.feature_groups or []), *old]


def _session(config: CompactionConfig, buckets: list[str], catalog: Any) -> Any:
    from pyspark.sql import SparkSession

    from featurestream.io import s3a
    from featurestream.spark import configure_builder, start_session

    builder = configure_builder(SparkSession.builder.appName("featurestream-compact"), config.spark)
    # Spark's own console bar would interleave with ours and litter non-interactive logs.
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    builder = iceberg.configure_builder(builder, catalog)
    builder = s3a.configure_builder(builder, s3a.endpoint_from_env(), config.region, buckets)
    spark = start_session(builder)
    spark.sparkContext.setLogLevel("WARN")
    # getOrCreate may return a session that already existed: make sure the buckets are wired.
    s3a.configure_session(spark, s3a.endpoint_from_env(), config.region, buckets)
    iceberg.configure_session(spark, catalog)
    return spark


def run(args: argparse.Namespace) -> int:
    configure_json_logging()
    install_redactor()
    started, started_at = time.monotonic(), time.time()
    # Everything that can be wrong with the configuration is found here, before Spark starts.
    config_file = Path(args.config)
    config = load_compaction_config(config_file)
    since, until = hour_range(args.since, args.until, datetime.now(UTC))
    env = profile_name(getattr(args, "env", None))
    catalog = iceberg.from_profile(load_profile(env), env)

    from featurestream.compaction import compact_feature_group
    from featurestream.compaction.progress import ConsoleProgress, Progress
    from featurestream.compaction.summary import RunSummary
    from featurestream.compaction.targets import resolve_targets, settings_from_config

    selected = _selected_groups(args)
    targets = resolve_targets(config, config_file, selected, catalog=catalog.name)
    settings = settings_from_config(config, since=since, until=until, dry_run=args.dry_run)
    interactive = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    progress = ConsoleProgress() if interactive else Progress()

    buckets = sorted({u.bucket for t in targets for u in (t.source, t.output) if u.is_s3})
    if catalog.spec.warehouse and catalog.spec.warehouse.startswith(("s3://", "s3a://")):
        buckets = sorted({*buckets, catalog.spec.warehouse.split("://", 1)[1].split("/", 1)[0]})
    spark = _session(config, buckets, catalog)
    summaries: list[dict[str, Any]] = []
    exit_code = EXIT_OK
    with ExitStack() as published:
        # A dry run writes nothing: no metrics, no lineage.
        metrics = None if args.dry_run else published.enter_context(
            published_run(config.metrics, "compact", _target_name(config_file, selected)))
        if metrics is not None:
            metrics.started = started_at  # the run's duration includes Spark's start
        lineage = None if args.dry_run else published.enter_context(_lineage_run(config, config_file, targets, spark))
        recorder = None if args.dry_run else sagemaker_lineage(args, config.lineage, config.region)
        by_name = {g.name for g in config.feature_groups if g.path is None}
        for target in targets:
            try:
                summary = compact_feature_group(spark, target, settings, progress)
                summaries.append(summary.to_dict())
                recorded = _record_sagemaker(recorder, target, target.name in by_name)
                if recorded is not None:
                    summaries[-1]["sagemaker_lineage"] = recorded.describe()
            except FeatureStreamError as exc:
                log.error('{"event": "compaction_failed", "feature_group": "%s", "error": %s}',
                          target.name, json.dumps(str(exc)))
                failed = RunSummary(target.name, str(target.source), str(target.output), run_id="", error=str(exc))
                summaries.append(failed.to_dict())
                exit_code = max(exit_code, EXIT_CONFIG if isinstance(exc, ConfigError) else EXIT_FAILURE)
            except Exception as exc:
                # Spark/py4j errors: the committed output is unchanged; report and go on with the next group.
                # One line unless --debug (a traceback in the JSON log is still a traceback).
                cause = describe(exc)
                log.error('{"event": "compaction_failed", "feature_group": "%s", "error": %s}',
                          target.name, json.dumps(cause), exc_info=bool(getattr(args, "debug", False)))
                failed = RunSummary(target.name, str(target.source), str(target.output), run_id="", error=cause)
                summaries.append(failed.to_dict())
                exit_code = max(exit_code, EXIT_FAILURE)
        totals = {key: sum(s[key] for s in summaries) for key in (
            "files_in", "bytes_in", "rows_in", "files_out", "bytes_out", "rows_out", "duplicates_removed",
            "superseded_removed", "deleted_rows_removed", "partitions_rewritten")}
        if metrics is not None:
            metrics.input_rows, metrics.output_rows = totals["rows_in"], totals["rows_out"]
            metrics.input_files, metrics.output_files = totals["files_in"], totals["files_out"]
            metrics.groups_failed = sum(1 for s in summaries if s["error"])
            metrics.groups_done = len(summaries) - metrics.groups_failed
            metrics.succeeded = exit_code == EXIT_OK
        if lineage is not None:
            if exit_code == EXIT_OK:
                lineage.complete({ref.name: s["rows_out"] for ref, s in zip(_outputs(targets), summaries, strict=True)})
            else:
                lineage.fail(next(s["error"] for s in summaries if s["error"]))
    report = {
        "status": "ok" if exit_code == EXIT_OK else "failed",
        "seconds": round(time.monotonic() - started, 3),
        "feature_groups": summaries,
        "totals": totals,
    }
    print(json.dumps(report, indent=2))
    if exit_code == EXIT_CONFIG:
        # The entry point turns a ConfigError into the one-line message and exit code 2.
        first = next(s["error"] for s in summaries if s["error"])
        print(f"featurestream: config error: {first}", file=sys.stderr)
    return exit_code


def _record_sagemaker(recorder: Any, target: Any, described: bool) -> Any:
    """The group (by ARN and fingerprint when it was named, else its offline path) ContributedTo
    this compaction, which Produced the compacted output."""
    from featurestream.ops import sagemaker_lineage as sm

    source = str(target.source)
    action = sm.Action(job="compaction", subject=target.name, identity=f"{source}\0{target.output}",
                       uri=f"featurestream://compaction/{target.name}", properties={"output": str(target.output)})
    return sm.record_run(
        recorder, action,
        lambda: {"feature_group": sm.feature_group_artifact(recorder.client, target.name) if described
                 else sm.path_artifact(source)},
        lambda: {"compacted": sm.path_artifact(str(target.output), sm.OFFLINE_DATA, feature_group=target.name)})


def _target_name(config_file: Path, selected: list[str] | None) -> str:
    """The metrics' `target`: the config's name, and the selected groups when not all of them."""
    return config_file.stem + (":" + ",".join(sorted(selected)) if selected else "")


def _outputs(targets: list[Any]) -> list[Any]:
    from featurestream.ops.lineage import path_dataset

    return [path_dataset(str(t.output)) for t in targets]


def _lineage_run(config: CompactionConfig, config_file: Path, targets: list[Any], spark: Any) -> Any:
    """START now, as the child of a scheduler's run when one is given; FAIL if the block raises."""
    from featurestream.ops.lineage import job_run, path_dataset
    from featurestream.ops.parent_run import openlineage_conf, parent_run

    parent = parent_run(spark_conf=openlineage_conf(spark) if spark is not None else None)
    return job_run(config.lineage, f"compaction.{config_file.stem}", [path_dataset(str(t.source)) for t in targets],
                   _outputs(targets), parent=parent,
                   properties={"config_file": str(config_file), "feature_groups": [t.name for t in targets]})
