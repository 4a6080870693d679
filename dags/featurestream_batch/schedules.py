"""What every featurestream DAG shares: retries, one run at a time, and the time windows of a run.

Runs are idempotent per logical date: compaction takes the closed event hours before the run's
logical date (`--until`), and its ledger makes a rerun of the same date pick up only what arrived
since for those hours (nothing, or late files: the same final state); a training set is written to
a folder of its logical date, overwritten by a rerun. Retries and their delay can be set per
deployment: FEATURESTREAM_DAG_RETRIES (default 2), FEATURESTREAM_DAG_RETRY_DELAY_S (default 600).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG

# In the past (catchup is off): a logical date before a task's start date would create no task at all.
START_DATE = datetime(2026, 1, 1)
# The hour / day the run's logical date falls in, as the jobs' ISO-8601 UTC flags take them.
HOUR_START = "{{ logical_date.strftime('%Y-%m-%dT%H:00Z') }}"
DAY_START = "{{ logical_date.strftime('%Y-%m-%dT00:00Z') }}"
# An hourly run lists two days of hour prefixes, not the whole store; the daily run lists all of
# it and so catches files that arrived later than that.
HOURLY_SINCE = "{{ (logical_date - macros.timedelta(hours=48)).strftime('%Y-%m-%dT%H:00Z') }}"
HOURLY_WINDOW = ("--since", HOURLY_SINCE, "--until", HOUR_START)
DAILY_WINDOW = ("--until", DAY_START)


def default_args() -> dict[str, Any]:
    return {"owner": "featurestream", "retries": int(os.environ.get("FEATURESTREAM_DAG_RETRIES", "2")),
            "retry_delay": timedelta(seconds=float(os.environ.get("FEATURESTREAM_DAG_RETRY_DELAY_S", "600")))}


def batch_dag(dag_id: str, *, schedule: str | None, doc: str, params: dict[str, Any],
              tasks: Callable[[], object]) -> DAG:
    """One DAG of featurestream batch work: `tasks()` creates its tasks inside it (schedule None:
    triggered by hand, as a backfill is)."""
    with DAG(dag_id=dag_id, schedule=schedule, start_date=START_DATE, catchup=False, max_active_runs=1,
             default_args=default_args(), params=params, doc_md=doc, tags=["featurestream"]) as dag:
        tasks()
    return dag
