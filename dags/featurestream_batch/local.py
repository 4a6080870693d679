"""Run a featurestream batch job on the Airflow worker, through the `featurestream` CLI.

The CLI starts Spark itself on the master its config names (`local[2]`, or `spark://host:7077` for a
standalone cluster, where Python applications run their driver in client mode anyway), so one
operator covers a laptop, a single host and a standalone cluster. Where it runs:

    FEATURESTREAM_HOME   the folder the job runs in (a checkout or an install with conf/); configs
                         given as relative paths are read from there. Default /opt/featurestream.
    FEATURESTREAM_BIN    the `featurestream` executable. Default $FEATURESTREAM_HOME/.venv/bin/featurestream
                         when it exists, else `featurestream` on PATH.

The job gets the worker's environment plus the task's `env`, Airflow's AIRFLOW_CTX_* variables (the
training-set manifest records the run) and, when Airflow's OpenLineage provider is enabled,
OPENLINEAGE_PARENT_ID / OPENLINEAGE_ROOT_PARENT_ID, so the job's lineage run is the task run's child.
Its stderr (JSON log lines, the one-line error) goes to the task log as it comes; its stdout (the
JSON summary) is logged and returned (XCom). The exit code becomes the task's outcome
(`exit_codes`): 2 and 3 fail the task without retries, 1 is retried.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from airflow.sdk import BaseOperator

from featurestream_batch.exit_codes import raise_for_exit
from featurestream_batch.jobs import BatchJob

DEFAULT_HOME = "/opt/featurestream"
# At most this many of the job's `featurestream: ...` lines go into the task's exception.
_MAX_ERROR_LINES = 5


def featurestream_home() -> Path:
    return Path(os.environ.get("FEATURESTREAM_HOME") or DEFAULT_HOME)


def featurestream_bin(home: Path) -> str:
    given = os.environ.get("FEATURESTREAM_BIN")
    if given:
        return given
    in_venv = home / ".venv" / "bin" / "featurestream"
    return str(in_venv) if in_venv.exists() else (shutil.which("featurestream") or "featurestream")


def airflow_context_env(context: Any) -> dict[str, str]:
    """What Airflow exports for the processes of a task (the AIRFLOW_CTX_* variables)."""
    ti = context["ti"]
    values = {"AIRFLOW_CTX_DAG_ID": ti.dag_id, "AIRFLOW_CTX_TASK_ID": ti.task_id,
              "AIRFLOW_CTX_DAG_RUN_ID": ti.run_id, "AIRFLOW_CTX_TRY_NUMBER": str(ti.try_number)}
    logical = context.get("logical_date")
    if logical is not None:
        values["AIRFLOW_CTX_LOGICAL_DATE"] = logical.isoformat()
    return values


def openlineage_parent_env(context: Any) -> dict[str, str]:
    """OpenLineage's parent settings for the task's run, when the OpenLineage provider is on."""
    try:
        from airflow.providers.openlineage.conf import is_disabled
        from airflow.providers.openlineage.plugins.macros import lineage_parent_id, lineage_root_parent_id
    except ImportError:
        return {}
    if is_disabled():
        return {}
    ti = context["ti"]
    return {"OPENLINEAGE_PARENT_ID": lineage_parent_id(ti), "OPENLINEAGE_ROOT_PARENT_ID": lineage_root_parent_id(ti)}


def last_json(text: str) -> Any:
    """The job's summary: the whole stdout as JSON, else its last line that is a JSON object."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


class FeaturestreamOperator(BaseOperator):
    """`featurestream <job.command> <arguments>` on this worker; exit codes as in `exit_codes`."""

    template_fields: Sequence[str] = ("arguments", "env")
    ui_color = "#dcecf9"

    def __init__(self, *, job: BatchJob, arguments: Sequence[str], env: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.arguments = list(arguments)
        self.env = dict(env or {})

    def command(self) -> list[str]:
        return [featurestream_bin(featurestream_home()), self.job.command, *self.arguments]

    def execute(self, context: Any) -> Any:
        home = featurestream_home()
        argv = self.command()
        env = {**os.environ, **self.env, **airflow_context_env(context), **openlineage_parent_env(context)}
        self.log.info("running %s (in %s)", " ".join(argv), home)
        errors: list[str] = []
        with subprocess.Popen(argv, cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, bufsize=1) as process:
            assert process.stdout is not None and process.stderr is not None
            reader = threading.Thread(target=self._log_stderr, args=(process.stderr, errors), daemon=True)
            reader.start()
            out = process.stdout.read()
            code = process.wait()
            reader.join()
        if out.strip():
            self.log.info("%s stdout:\n%s", self.job.command, out.rstrip())
        raise_for_exit(code, f"featurestream {self.job.command}", " | ".join(errors[:_MAX_ERROR_LINES]) or None)
        return last_json(out)

    def _log_stderr(self, stream: IO[str], errors: list[str]) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            if line.startswith("featurestream: "):
                # The job's one-line error: kept for the exception, and logged as a line of its own.
                errors.append(line)
                self.log.error("%s", line)
            elif line:
                self.log.info("%s", line)
