"""Apache Airflow from the venv `make airflow-venv` builds, driven through its CLI as an operator
would, with a private AIRFLOW_HOME under build/ and a SQLite metadata database.

`airflow db migrate` runs once per lock file: the migrated database is kept beside the venv
(~/.cache/featurestream/airflow-<lock digest>/template-<lock hash>/) and copied for each session, so
a warm run, even from a fresh clone, skips it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "airflow.lock"
# `make airflow-venv` builds it in the user's cache, keyed by the lock's digest, and passes its path.
VENV = Path(os.environ.get("FEATURESTREAM_AIRFLOW_VENV", ROOT / "build" / "airflow-venv"))
# The migrated metadata database is cached beside it (same key): `airflow db migrate` runs once.
HOMES = VENV.parent if "FEATURESTREAM_AIRFLOW_VENV" in os.environ else ROOT / "build" / "airflow-home"
DAGS = ROOT / "dags"


def installed() -> bool:
    return (VENV / ".stamp").is_file() and (VENV / "bin" / "airflow").is_file()


def base_env(home: Path) -> dict[str, str]:
    """The settings of a standalone Airflow in `home`: SQLite, our DAGs, no examples."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        env.pop(name, None)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "PATH": f"{VENV / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
    })
    return env


def migrated_template() -> Path:
    """A home whose database `airflow db migrate` created, once per lock file."""
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:12]
    template = HOMES / f"template-{digest}"
    if (template / "airflow.db").is_file():
        return template
    staging = HOMES / f"template-{digest}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    done = subprocess.run([str(VENV / "bin" / "airflow"), "db", "migrate"], env=base_env(staging),
                          capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    shutil.rmtree(template, ignore_errors=True)
    staging.rename(template)
    return template


class Airflow:
    """One private Airflow home for a test session."""

    def __init__(self, home: Path, extra_env: dict[str, str]) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy2(migrated_template() / "airflow.db", home / "airflow.db")
        self.env = {**base_env(home), **extra_env}

    def run(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(VENV / "bin" / "airflow"), *args], env=self.env, cwd=self.home,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def python(self, script: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(VENV / "bin" / "python"), "-c", script, *args], env=self.env, cwd=self.home,
                              capture_output=True, text=True, timeout=300, check=False)

    def dags_test(self, dag_id: str, logical_date: str, conf: dict[str, Any] | None = None
                  ) -> subprocess.CompletedProcess[str]:
        args = ["dags", "test", dag_id, logical_date]
        if conf is not None:
            args[2:2] = ["-c", json.dumps(conf)]
        return self.run(*args)

    def task_instances(self, dag_id: str) -> list[dict[str, Any]]:
        """Every try of the DAG's tasks, from the metadata database."""
        with sqlite3.connect(self.home / "airflow.db") as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT task_id, run_id, state, try_number, max_tries FROM task_instance "
                              "WHERE dag_id = ? ORDER BY run_id, task_id", (dag_id,)).fetchall()
        return [dict(r) for r in rows]

    def task_log(self, dag_id: str, task_id: str) -> str:
        """Every log file of the task, concatenated (Airflow 3 writes one per try)."""
        files = sorted((self.home / "logs").glob(f"dag_id={dag_id}/**/task_id={task_id}/**/*.log"))
        return "\n".join(f.read_text(errors="replace") for f in files)

    def openlineage_events(self) -> list[dict[str, Any]]:
        """What Airflow's OpenLineage provider emitted (the file transport the session configured)."""
        path = self.home / "openlineage.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
