"""The manifest written beside a training set: enough to rebuild the same set and to trace it.

It records the inputs (JDBC source, its SQL predicates, partitioning and the time it was read; the
feature groups with the partitions and files used), the config and its hash, the code version,
the join options and what the skew remedy did, and per split the row count, the null rate of
every feature and the label distribution. It never holds a secret: the config may carry none
(refused at load), and every string of the recorded config goes through
`featurestream.config.credentials.redact` all the same.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import UTC, datetime
from functools import lru_cache
from importlib import metadata
from typing import Any

from featurestream.config.credentials import redact
from featurestream.config.training_set import TrainingSetSpec
from featurestream.io.jars import project_root

MANIFEST_VERSION = 1
MANIFEST_FILE = "manifest.json"


def config_hash(spec: TrainingSetSpec) -> str:
    """sha256 of the config as validated (defaults filled in, env references expanded), canonical JSON."""
    canonical = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """The package version and, in a git checkout, the commit and whether the tree had changes."""
    try:
        version = metadata.version("featurestream")
    except metadata.PackageNotFoundError:
        version = "unknown"
    found: dict[str, Any] = {"featurestream": version, "git_commit": None, "git_dirty": None}
    root = project_root()
    if (root / ".git").exists():
        try:
            commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                    text=True, timeout=10, check=True).stdout.strip()
            status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10, check=True).stdout
            found.update(git_commit=commit, git_dirty=bool(status.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    return found


def build_manifest(*, spec: TrainingSetSpec, source: str, started: datetime, finished: datetime,
                   spark_info: dict[str, Any], labels: dict[str, Any], feature_groups: list[dict[str, Any]],
                   join: dict[str, Any], output: dict[str, Any],
                   lineage: dict[str, Any] | None = None, scheduler: dict[str, str] | None = None) -> dict[str, Any]:
    """`lineage`: where the run's OpenLineage events are (namespace, job, run id, transport, location, and
    the parent run a scheduler gave); `scheduler`: the scheduler's run that started the build (Airflow:
    dag_id, task_id, run_id, try_number, logical_date), None when it was started by hand."""
    return {
        "manifest_version": MANIFEST_VERSION,
        "training_set": spec.name,
        "description": spec.description,
        "created_at": finished.astimezone(UTC).isoformat(),
        "started_at": started.astimezone(UTC).isoformat(),
        "duration_s": round((finished - started).total_seconds(), 3),
        "config_file": source,
        "config_hash": config_hash(spec),
        "config": _redacted(spec.model_dump(mode="json")),
        "code_version": code_version(),
        "spark": spark_info,
        "inputs": {"labels": labels, "feature_groups": feature_groups},
        "join": join,
        "output": output,
        "lineage": lineage,
        "scheduler": scheduler,
    }


def _redacted(value: Any) -> Any:
    """Every string of a JSON-like value masked (featurestream.config.credentials.redact)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


def to_json(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n"
