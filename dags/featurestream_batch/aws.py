"""Run a featurestream batch job as an EMR Serverless job run (Amazon provider), built from a release.

A release is what `make dist` writes (build/dist/), copied to S3: `jobs/`, `jars/`,
`featurestream-<version>-pyfiles.zip`, plus a packed virtualenv of `requirements.txt` built on
Amazon Linux 2023 (`featurestream-venv.tar.gz`, see docs/operations.md). Configs are shipped with
`--files` and named by their file name. Where things are (read when the DAG file is parsed):

    FEATURESTREAM_EMR_APPLICATION_ID     the EMR Serverless application (Spark, EMR 7.x)
    FEATURESTREAM_EMR_EXECUTION_ROLE_ARN the job runs' role
    FEATURESTREAM_RELEASE_S3_URI         s3://.../releases/<version>
    FEATURESTREAM_CONF_S3_URI            s3://.../conf (compaction/aws.yaml, training_sets/..., environments/...)
    FEATURESTREAM_DRIVER_ENV             comma-separated NAMEs of worker variables handed to the driver
                                         (default: the ones the shipped aws configs read)

Exit codes: EMR Serverless reports a failed run's driver exit code only in the run's free-text
`stateDetails`. When it names one (`ExitCode: 2`), the contract applies as locally (2 and 3 fail
without retries); when it names none, the failure is retried like exit 1. The parent lineage run
reaches the job as `spark.openlineage.parent*` properties, which the operator injects
(`openlineage_inject_parent_job_info`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.providers.amazon.aws.operators.emr import EmrServerlessStartJobOperator
from airflow.sdk.exceptions import AirflowFailException

from featurestream_batch.exit_codes import raise_for_exit
from featurestream_batch.jobs import BatchJob

VERSION = "0.1.0"
PYTHON = "./environment/bin/python"
# The variables the shipped aws configs and profile read, handed to the driver when the worker has them.
DEFAULT_DRIVER_ENV = ("AWS_REGION", "FEATURESTREAM_COMPACTED_URI", "FEATURESTREAM_TRAINING_URI",
                      "FEATURESTREAM_JDBC_URL", "FEATURESTREAM_PUSHGATEWAY_URL", "KAFKA_BOOTSTRAP_SERVERS",
                      "FEATURESTREAM_OFFLINE_S3_URI", "FEATURESTREAM_CHECKPOINT_ROOT", "FEATURESTREAM_DLQ_PATH")
_EXIT_CODE = re.compile(r"exit\s*code\W{0,3}(\d+)", re.IGNORECASE)


def release() -> str:
    return os.environ.get("FEATURESTREAM_RELEASE_S3_URI", f"s3://example-featurestream/releases/{VERSION}").rstrip("/")


def conf_uri() -> str:
    return os.environ.get("FEATURESTREAM_CONF_S3_URI", "s3://example-featurestream/conf").rstrip("/")


def driver_env() -> dict[str, str]:
    names = os.environ.get("FEATURESTREAM_DRIVER_ENV")
    wanted = [n.strip() for n in names.split(",") if n.strip()] if names else DEFAULT_DRIVER_ENV
    return {name: os.environ[name] for name in wanted if os.environ.get(name)}


def job_driver(job: BatchJob, arguments: Sequence[str], files: Sequence[str],
               env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """StartJobRun's `jobDriver` for `job`: its jobs/ script, the release's code, the configs as --files."""
    base = release()
    parameters = []
    if job.packages:
        parameters += ["--packages", ",".join(job.packages)]
    if job.jars:
        parameters += ["--jars", ",".join(f"{base}/jars/{jar}" for jar in job.jars)]
    parameters += ["--py-files", f"{base}/featurestream-{VERSION}-pyfiles.zip"]
    if files:
        parameters += ["--files", ",".join(f"{conf_uri()}/{f}" for f in files)]
    settings = {
        "spark.archives": f"{base}/featurestream-venv.tar.gz#environment",
        "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": PYTHON,
        "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": PYTHON,
        "spark.executorEnv.PYSPARK_PYTHON": PYTHON,
        **{f"spark.emr-serverless.driverEnv.{k}": v for k, v in {**driver_env(), **(env or {})}.items()},
    }
    for key, value in settings.items():
        parameters += ["--conf", f"{key}={value}"]
    return {"sparkSubmit": {"entryPoint": f"{base}/jobs/{job.script}", "entryPointArguments": list(arguments),
                            "sparkSubmitParameters": " ".join(parameters)}}


class FeaturestreamEmrServerlessOperator(EmrServerlessStartJobOperator):
    """An EMR Serverless job run of a featurestream job; a run that exited 2 or 3 is not retried."""

    def __init__(self, *, job: BatchJob, arguments: Sequence[str], files: Sequence[str] = (),
                 env: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("application_id", os.environ.get("FEATURESTREAM_EMR_APPLICATION_ID", "00example0application"))
        kwargs.setdefault("execution_role_arn", os.environ.get("FEATURESTREAM_EMR_EXECUTION_ROLE_ARN",
                                                               "arn:aws:iam::123456789012:role/featurestream-job"))
        kwargs.setdefault("config", {})
        kwargs.setdefault("openlineage_inject_parent_job_info", True)
        super().__init__(job_driver=job_driver(job, arguments, files, env), **kwargs)
        self.featurestream_job = job

    def execute(self, context: Any) -> Any:
        try:
            return super().execute(context)
        except AirflowFailException:
            raise
        except Exception as exc:
            self._raise_by_exit_code(exc)
            raise

    def execute_complete(self, context: Any, event: Any = None) -> Any:
        try:
            return super().execute_complete(context, event)
        except AirflowFailException:
            raise
        except Exception as exc:
            # Deferred: this instance was rebuilt from the trigger's event, the run id is in it.
            self.job_id = self.job_id or ((event or {}).get("job_details") or {}).get("job_id")
            self._raise_by_exit_code(exc)
            raise

    def _raise_by_exit_code(self, exc: BaseException) -> None:
        job_run_id = getattr(self, "job_id", None)
        if not job_run_id:
            return
        try:
            run = self.hook.conn.get_job_run(applicationId=self.application_id, jobRunId=job_run_id)["jobRun"]
        except Exception:  # the original failure is the one to report
            return
        details = str(run.get("stateDetails") or "")
        found = _EXIT_CODE.search(details)
        if found:
            what = f"featurestream {self.featurestream_job.command} (EMR Serverless job run {job_run_id})"
            raise_for_exit(int(found.group(1)), what, details)
