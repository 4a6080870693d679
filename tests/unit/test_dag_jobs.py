"""The DAGs' batch jobs ask a cluster for the same Maven coordinates the package ships in packages.txt.

dags/ is imported by Airflow without featurestream installed, so it spells its coordinates
itself; this holds them to `featurestream.io.jars.CLUSTER_PACKAGES` (no drift in a version) and
checks that every job can open an Iceberg table (each reads or writes one).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from featurestream.io.jars import CLUSTER_PACKAGES

JOBS_FILE = Path(__file__).resolve().parents[2] / "dags" / "featurestream_batch" / "jobs.py"


def _jobs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dag_jobs_under_test", JOBS_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_dag_job_package_is_one_the_release_ships() -> None:
    jobs = _jobs()
    for job in jobs.JOBS:
        assert set(job.packages) <= set(CLUSTER_PACKAGES), (job.command, set(job.packages) - set(CLUSTER_PACKAGES))


def test_every_dag_job_gets_the_iceberg_runtime_and_aws_bundle() -> None:
    jobs = _jobs()
    iceberg = {c for c in CLUSTER_PACKAGES if c.startswith("org.apache.iceberg:")}
    assert len(iceberg) == 2
    assert {job.command for job in jobs.JOBS} == {"compact", "training-set", "backfill", "consistency"}
    for job in jobs.JOBS:
        assert iceberg <= set(job.packages), job.command
