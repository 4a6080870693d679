"""featurestream's scheduled batch jobs as EMR Serverless job runs (Amazon provider), from a release
of `make dist` on S3 (see featurestream_batch/aws.py for the variables that say where).

    featurestream_aws_compact_hourly   :15 every hour: the closed hours of the last two days
    featurestream_aws_compact_daily    02:45 every day: everything before the day (late files too)
    featurestream_aws_training_set     04:00 every day: a training set into <output_root>/ds=<date>
    featurestream_aws_backfill         by hand: a feature group's history over [start, end) from S3 files
    featurestream_aws_consistency      :30 every hour: online vs definition vs offline, report to S3

Exit codes as in the local DAGs, as far as EMR Serverless reports them (featurestream_batch/aws.py).
"""

from __future__ import annotations

import os

from airflow.sdk import Param
from featurestream_batch.aws import FeaturestreamEmrServerlessOperator
from featurestream_batch.jobs import BACKFILL, COMPACT, CONSISTENCY, TRAINING_SET
from featurestream_batch.schedules import DAILY_WINDOW, HOURLY_WINDOW, batch_dag

# File names: shipped with --files from FEATURESTREAM_CONF_S3_URI/<path>, read by their base name.
COMPACTION_CONFIG = "compaction/aws.yaml"
TRAINING_SET_CONFIG = "training_sets/card_fraud.yaml"
BACKFILL_GROUP = "feature_groups/card_activity.yaml"
TRAINING_SET_ROOT = os.environ.get("FEATURESTREAM_TRAINING_ROOT", "s3://example-featurestream/training_sets/card_fraud")


def _compact(window: tuple[str, ...]) -> None:
    FeaturestreamEmrServerlessOperator(
        task_id="compact", job=COMPACT, files=[COMPACTION_CONFIG], name="featurestream-compact-{{ ts_nodash }}",
        arguments=["--config", os.path.basename(COMPACTION_CONFIG), "--env", "aws", *window, "--no-progress"])


def _training_set() -> None:
    FeaturestreamEmrServerlessOperator(
        task_id="build", job=TRAINING_SET, files=[TRAINING_SET_CONFIG], name="featurestream-training-set-{{ ds }}",
        arguments=["--config", os.path.basename(TRAINING_SET_CONFIG), "--env", "aws", "--no-progress"],
        env={"FEATURESTREAM_TRAINING_URI": "{{ params.output_root }}/ds={{ ds }}"})


def _backfill() -> None:
    FeaturestreamEmrServerlessOperator(
        task_id="backfill", job=BACKFILL, files=[BACKFILL_GROUP], name="featurestream-backfill-{{ ts_nodash }}",
        arguments=["--feature-group", os.path.basename(BACKFILL_GROUP), "--env", "aws",
                   "--from-files", "{{ params.from_files }}", "--format", "{{ params.format }}",
                   "--start", "{{ params.start }}", "--end", "{{ params.end }}", "--chunk", "{{ params.chunk }}"])


def _consistency() -> None:
    FeaturestreamEmrServerlessOperator(
        task_id="check", job=CONSISTENCY, files=[BACKFILL_GROUP], name="featurestream-consistency-{{ ts_nodash }}",
        arguments=["--feature-group", os.path.basename(BACKFILL_GROUP), "--env", "aws",
                   "--from-files", "{{ params.from_files }}", "--format", "{{ params.format }}",
                   "--sample", "{{ params.sample }}",
                   "--report", "{{ params.report_root }}/consistency-{{ ts_nodash }}.html"])


compact_hourly = batch_dag("featurestream_aws_compact_hourly", schedule="15 * * * *", doc=__doc__, params={},
                           tasks=lambda: _compact(HOURLY_WINDOW))
compact_daily = batch_dag("featurestream_aws_compact_daily", schedule="45 2 * * *", doc=__doc__, params={},
                          tasks=lambda: _compact(DAILY_WINDOW))
training_set = batch_dag("featurestream_aws_training_set", schedule="0 4 * * *", doc=__doc__,
                         params={"output_root": Param(TRAINING_SET_ROOT, type="string")}, tasks=_training_set)
backfill = batch_dag("featurestream_aws_backfill", schedule=None, doc=__doc__,
                     params={"from_files": Param("s3://example-featurestream/events/", type="string"),
                             "format": Param("parquet", enum=["json", "parquet"]),
                             "start": Param("2026-11-01", type="string"), "end": Param("2026-12-01", type="string"),
                             "chunk": Param("1d", type="string")},
                     tasks=_backfill)
consistency = batch_dag("featurestream_aws_consistency", schedule="30 * * * *", doc=__doc__,
                        params={"from_files": Param("s3://example-featurestream/events/", type="string"),
                                "format": Param("parquet", enum=["json", "parquet"]),
                                "sample": Param(1000, type="integer"),
                                "report_root": Param("s3://example-featurestream/consistency", type="string")},
                        tasks=_consistency)
