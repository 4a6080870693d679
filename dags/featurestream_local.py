"""featurestream's scheduled batch jobs run by this Airflow's workers through the `featurestream` CLI
(local Spark, or a standalone cluster named by the configs' `spark.master`).

    featurestream_compact_hourly   :15 every hour: the closed hours of the last two days
    featurestream_compact_daily    02:45 every day: everything before the day (late files too)
    featurestream_training_set     04:00 every day: a training set into <output_root>/ds=<date>
    featurestream_backfill         by hand: a feature group's history over [start, end) from files
    featurestream_consistency      :30 every hour: online vs definition vs offline for a sample (exit 3: drift)

Exit codes: 2 (configuration) and 3 (a check's threshold) fail the task without retries; 1 is
retried. Configs are paths relative to FEATURESTREAM_HOME (see featurestream_batch/local.py); each
DAG's params can be changed per run (`airflow dags trigger -c '{"config": ...}'`).
A new job is a BatchJob in featurestream_batch/jobs.py and a DAG here.
"""

from __future__ import annotations

import os

from airflow.sdk import Param
from featurestream_batch.jobs import BACKFILL, COMPACT, CONSISTENCY, TRAINING_SET
from featurestream_batch.local import FeaturestreamOperator
from featurestream_batch.schedules import DAILY_WINDOW, HOURLY_WINDOW, batch_dag

COMPACTION_CONFIG = os.environ.get("FEATURESTREAM_COMPACTION_CONFIG", "conf/compaction/local.yaml")
TRAINING_SET_CONFIG = os.environ.get("FEATURESTREAM_TRAINING_SET_CONFIG", "conf/training_sets/card_fraud.yaml")
TRAINING_SET_ROOT = os.environ.get("FEATURESTREAM_TRAINING_ROOT", ".state/training_sets/card_fraud")
PROFILE = os.environ.get("FEATURESTREAM_PROFILE", "local")
BACKFILL_GROUP = os.environ.get("FEATURESTREAM_BACKFILL_FEATURE_GROUP", "conf/feature_groups/card_activity.yaml")
CONSISTENCY_GROUP = os.environ.get("FEATURESTREAM_CONSISTENCY_FEATURE_GROUP", BACKFILL_GROUP)
CONSISTENCY_EVENTS = os.environ.get("FEATURESTREAM_CONSISTENCY_EVENTS", "events/")
CONSISTENCY_REPORTS = os.environ.get("FEATURESTREAM_CONSISTENCY_REPORTS", ".state/consistency")


def _compact(window: tuple[str, ...]) -> None:
    FeaturestreamOperator(task_id="compact", job=COMPACT,
                          arguments=["--config", "{{ params.config }}", *window, "--no-progress"])


def _training_set() -> None:
    # The shipped config writes to ${FEATURESTREAM_TRAINING_URI}: one folder per logical date.
    FeaturestreamOperator(task_id="build", job=TRAINING_SET,
                          arguments=["--config", "{{ params.config }}", "--env", "{{ params.profile }}",
                                     "--no-progress"],
                          env={"FEATURESTREAM_TRAINING_URI": "{{ params.output_root }}/ds={{ ds }}"})


def _backfill() -> None:
    # A rerun with the same params resumes (finished chunks are kept) and replaces its own output.
    FeaturestreamOperator(task_id="backfill", job=BACKFILL,
                          arguments=["--feature-group", "{{ params.feature_group }}", "--env", "{{ params.profile }}",
                                     "--from-files", "{{ params.from_files }}", "--format", "{{ params.format }}",
                                     "--start", "{{ params.start }}", "--end", "{{ params.end }}",
                                     "--chunk", "{{ params.chunk }}"])


def _consistency() -> None:
    # Exit 3 (a threshold exceeded) fails the task at once, without retries: a finding, not a crash.
    FeaturestreamOperator(task_id="check", job=CONSISTENCY,
                          arguments=["--feature-group", "{{ params.feature_group }}", "--env", "{{ params.profile }}",
                                     "--from-files", "{{ params.from_files }}", "--format", "{{ params.format }}",
                                     "--sample", "{{ params.sample }}",
                                     "--report", "{{ params.report_dir }}/consistency-{{ ts_nodash }}.html"])


compact_hourly = batch_dag("featurestream_compact_hourly", schedule="15 * * * *", doc=__doc__,
                           params={"config": Param(COMPACTION_CONFIG, type="string")},
                           tasks=lambda: _compact(HOURLY_WINDOW))
compact_daily = batch_dag("featurestream_compact_daily", schedule="45 2 * * *", doc=__doc__,
                          params={"config": Param(COMPACTION_CONFIG, type="string")},
                          tasks=lambda: _compact(DAILY_WINDOW))
training_set = batch_dag("featurestream_training_set", schedule="0 4 * * *", doc=__doc__,
                         params={"config": Param(TRAINING_SET_CONFIG, type="string"),
                                 "profile": Param(PROFILE, type="string"),
                                 "output_root": Param(TRAINING_SET_ROOT, type="string")},
                         tasks=_training_set)
backfill = batch_dag("featurestream_backfill", schedule=None, doc=__doc__,
                     params={"feature_group": Param(BACKFILL_GROUP, type="string"),
                             "profile": Param(PROFILE, type="string"),
                             "from_files": Param("events/", type="string"),
                             "format": Param("json", enum=["json", "parquet"]),
                             "start": Param("2026-11-01", type="string"), "end": Param("2026-12-01", type="string"),
                             "chunk": Param("1d", type="string")},
                     tasks=_backfill)
consistency = batch_dag("featurestream_consistency", schedule="30 * * * *", doc=__doc__,
                        params={"feature_group": Param(CONSISTENCY_GROUP, type="string"),
                                "profile": Param(PROFILE, type="string"),
                                "from_files": Param(CONSISTENCY_EVENTS, type="string"),
                                "format": Param("json", enum=["json", "parquet"]),
                                "sample": Param(1000, type="integer"),
                                "report_dir": Param(CONSISTENCY_REPORTS, type="string")},
                        tasks=_consistency)
