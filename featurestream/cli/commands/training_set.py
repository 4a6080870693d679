"""`featurestream training-set` and `spark-submit jobs/build_training_set.py`: same flags, same code.

    featurestream training-set --config conf/training_sets/card_fraud.yaml            # build
    featurestream training-set --config conf/training_sets/card_fraud.yaml --export-history

Exit codes: 0 done, 2 bad config or arguments (one line naming file and field, before Spark
starts where possible), 1 any other failure. Run metrics go to the profile's `batch_metrics`
(Pushgateway and/or textfile); a scheduler's OpenLineage parent run (spark.openlineage.parent* or
OPENLINEAGE_PARENT_ID) becomes the parent of this run, and the manifest records the scheduler's run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

from featurestream.cli.failures import describe
from featurestream.cli.lineage_option import add_sagemaker_lineage_argument, sagemaker_lineage
from featurestream.cli.profile_option import add_env_argument, profile_name
from featurestream.config import load_profile
from featurestream.config.training_set import load_training_set
from featurestream.errors import ConfigError, FeatureStreamError
from featurestream.logs import configure_json_logging
from featurestream.ops import lineage as ol
from featurestream.ops.batch_metrics import published_run
from featurestream.ops.parent_run import openlineage_conf, parent_run, scheduler_run
from featurestream.ops.secrets import install_redactor
from featurestream.training.lineage import datasets

log = logging.getLogger(__name__)


class TrainingSetError(FeatureStreamError):
    """Building or exporting failed (Spark, storage or database); the cause is chained."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="conf/training_sets/<name>.yaml")
    add_env_argument(parser)
    parser.add_argument("--export-history", action="store_true",
                        help="copy the RDS table's rows changed since the last export to Parquet, then stop")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--progress", dest="progress", action="store_true", default=None,
                       help="live progress on stderr (default: when stderr is a terminal)")
    shown.add_argument("--no-progress", dest="progress", action="store_false",
                       help="no live progress: each phase is a JSON log line with its duration")
    add_sagemaker_lineage_argument(parser)


def run(args: argparse.Namespace) -> int:
    configure_json_logging()
    install_redactor()
    started_at = time.time()
    # Everything the files can get wrong is found here, before Spark starts.
    spec = load_training_set(args.config)
    args.env = profile_name(args.env)
    profile = load_profile(args.env)
    if args.export_history:
        export = spec.require_export(args.config)
    else:
        spec.require_output(args.config)

    from featurestream.spark import local_session
    from featurestream.training.progress import Progress

    interactive = sys.stderr.isatty() if args.progress is None else bool(args.progress)
    conf = dict(profile.spark.conf)
    # Never Spark's own `[Stage N:>` bars: with our live line they fight over the terminal, and
    # without it (--no-progress, stderr not a terminal) they interleave with the JSON log lines.
    conf.setdefault("spark.ui.showConsoleProgress", "false")
    spark = local_session(f"featurestream-training-{spec.name}", profile.spark.model_copy(update={"conf": conf}))
    catalog = None
    if any(group.table is not None for group in spec.feature_groups):
        # Groups named in the catalog (compacted tables, Iceberg offline stores): its settings on the session.
        from featurestream import iceberg
        from featurestream.training import storage

        found = iceberg.from_profile(profile, args.env)
        # S3A for the warehouse's bucket before the catalog is first used (it keeps the settings it saw then).
        storage.prepare(spark, found.spec.warehouse)
        iceberg.configure_session(spark, found)
        catalog = found.name
    progress = Progress(spark, interactive=interactive)
    inputs, outputs = datasets(spec, export=args.export_history)
    job = f"training_set.{spec.name}" + (".export_history" if args.export_history else "")
    parent = parent_run(spark_conf=openlineage_conf(spark))
    scheduler = scheduler_run()
    batch_job = "training_set_export" if args.export_history else "training_set"
    try:
        # START now, COMPLETE or FAIL at the end; the manifest points at this run.
        with published_run(profile.batch_metrics, batch_job, spec.name) as metrics, \
                ol.job_run(profile.lineage, job, inputs, outputs, parent=parent,
                           properties={"config_file": args.config, "profile": args.env}) as lineage_run:
            metrics.started = started_at  # the run's duration includes Spark's start
            if args.export_history:
                from featurestream.training import storage
                from featurestream.training.history import export_history

                storage.prepare(spark, export.path, export.state_path)
                with progress.phase("exporting history"):
                    result = export_history(spark, spec.labels, export, source=args.config)
                metrics.output_rows, metrics.groups_done = result.rows, 1
                print(json.dumps({"export": result.path, "run_id": result.run_id, "rows": result.rows,
                                  "watermark": result.upper.isoformat() if result.upper else None,
                                  "lineage_run_id": lineage_run.run_id}))
                return 0
            from featurestream.training.build import build_training_set

            built = build_training_set(spark, spec, source=args.config, progress=progress,
                                       lineage=lineage_run.reference(), scheduler=scheduler, catalog=catalog)
            metrics.input_rows = _labels_read(built.manifest)
            metrics.output_rows = sum(built.rows.values())
            metrics.groups_done = 1
            recorder = sagemaker_lineage(args, profile.lineage, profile.feature_store.region)
            recorded = None
            if recorder is not None:
                from featurestream.training.sagemaker_lineage import record

                recorded = record(spark, recorder, spec, built.path, built.manifest_path, built.manifest)
            print(json.dumps({"path": built.path, "manifest": built.manifest_path, "rows": built.rows,
                              "seconds": round(built.seconds, 1), "lineage_run_id": lineage_run.run_id,
                              "sagemaker_lineage": recorded.describe() if recorded is not None else None}))
            return 0
    except (ConfigError, FeatureStreamError):
        raise
    except Exception as exc:
        # A Py4JJavaError's own first line names the py4j call; the Java exception says what failed.
        java = getattr(exc, "java_exception", None)
        text = str(java.toString()) if java is not None else describe(exc)
        first = ([line for line in text.strip().splitlines() if line.strip()] or [type(exc).__name__])[0][:500]
        raise TrainingSetError(f"training set {spec.name} failed: {first}") from exc


def _labels_read(manifest: dict[str, Any]) -> int | None:
    """Label rows read, as the manifest counts them."""
    rows = manifest.get("inputs", {}).get("labels", {}).get("rows")
    return rows if isinstance(rows, int) else None
