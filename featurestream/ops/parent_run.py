"""Who started this job: the OpenLineage parent run, and the scheduler's own run, when there is one.

A scheduler that emits OpenLineage events for its tasks (Airflow's OpenLineage provider) tells the
job it starts which run is its parent, in the standard settings, so the job's run becomes the
child of the task's run. Read in this order (the first complete one wins):

1. Spark properties, as the provider injects them into spark-submit, EMR steps and EMR Serverless
   (`spark.openlineage.parentJobNamespace`, `.parentJobName`, `.parentRunId`, and
   `.rootParentJobNamespace`, `.rootParentJobName`, `.rootParentRunId`);
2. the environment, as OpenLineage's other integrations (dbt) take them:
   `OPENLINEAGE_PARENT_ID` and `OPENLINEAGE_ROOT_PARENT_ID`, each `<namespace>/<job name>/<run id>`
   (the provider's `lineage_parent_id` / `lineage_root_parent_id` macros render exactly that).

A malformed setting (a run id that is not a UUID) is a warning and no parent: lineage never stops
a job. The scheduler's run (Airflow's `AIRFLOW_CTX_*` variables, which it sets for the processes its
tasks start) goes into artefacts such as a training-set manifest.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

SPARK_PREFIX = "spark.openlineage."
PARENT_ENV = "OPENLINEAGE_PARENT_ID"
ROOT_PARENT_ENV = "OPENLINEAGE_ROOT_PARENT_ID"
# What Airflow exports for a task's processes (airflow.utils.operator_helpers.context_to_airflow_vars).
AIRFLOW_VARS = {"dag_id": "AIRFLOW_CTX_DAG_ID", "task_id": "AIRFLOW_CTX_TASK_ID",
                "run_id": "AIRFLOW_CTX_DAG_RUN_ID", "try_number": "AIRFLOW_CTX_TRY_NUMBER",
                "logical_date": "AIRFLOW_CTX_LOGICAL_DATE"}


@dataclass(frozen=True)
class RunRef:
    namespace: str
    name: str
    run_id: str

    def describe(self) -> dict[str, str]:
        return {"namespace": self.namespace, "job": self.name, "run_id": self.run_id}


@dataclass(frozen=True)
class ParentRun:
    parent: RunRef
    # The run at the top of the chain (the DAG run); the parent itself when none was given.
    root: RunRef

    def describe(self) -> dict[str, Any]:
        return {**self.parent.describe(), "root": self.root.describe()}


def _ref(namespace: str | None, name: str | None, run_id: str | None, source: str) -> RunRef | None:
    if not (namespace and name and run_id):
        return None
    try:
        uuid.UUID(run_id)
    except ValueError:
        log.warning(json.dumps({"event": "lineage_parent_ignored", "source": source,
                                "error": f"run id {run_id[:80]!r} is not a UUID"}))
        return None
    return RunRef(namespace, name, run_id)


def _split(value: str | None, source: str) -> RunRef | None:
    """`<namespace>/<name>/<run id>`; a namespace may itself hold `/`, the name and id may not."""
    if not value or not value.strip():
        return None
    parts = value.strip().rsplit("/", 2)
    if len(parts) != 3:
        log.warning(json.dumps({"event": "lineage_parent_ignored", "source": source,
                                "error": "expected <namespace>/<job name>/<run id>"}))
        return None
    namespace, name, run_id = parts
    return _ref(namespace, name, run_id, source)


def parent_run(env: Mapping[str, str] | None = None, spark_conf: Mapping[str, str] | None = None) -> ParentRun | None:
    """The parent run from Spark properties, else from the environment; None when neither gives one."""
    conf = spark_conf or {}
    environ = os.environ if env is None else env
    parent = _ref(conf.get(SPARK_PREFIX + "parentJobNamespace"), conf.get(SPARK_PREFIX + "parentJobName"),
                  conf.get(SPARK_PREFIX + "parentRunId"), "spark.openlineage.parent*")
    if parent is not None:
        root = _ref(conf.get(SPARK_PREFIX + "rootParentJobNamespace"), conf.get(SPARK_PREFIX + "rootParentJobName"),
                    conf.get(SPARK_PREFIX + "rootParentRunId"), "spark.openlineage.rootParent*")
        return ParentRun(parent, root or parent)
    parent = _split(environ.get(PARENT_ENV), PARENT_ENV)
    if parent is None:
        return None
    return ParentRun(parent, _split(environ.get(ROOT_PARENT_ENV), ROOT_PARENT_ENV) or parent)


def openlineage_conf(spark: Any) -> dict[str, str]:
    """The session's `spark.openlineage.*` properties (spark-submit --conf, spark-defaults.conf)."""
    pairs = spark.sparkContext.getConf().getAll()
    return {str(k): str(v) for k, v in pairs if str(k).startswith(SPARK_PREFIX)}


def scheduler_run(env: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The Airflow task run that started this process, from its AIRFLOW_CTX_* variables, else None."""
    environ = os.environ if env is None else env
    found = {key: environ[var] for key, var in AIRFLOW_VARS.items() if environ.get(var)}
    if "run_id" not in found:
        return None
    return {"scheduler": "airflow", **found}
