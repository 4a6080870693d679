"""`--export-history`: copy an RDS table to Parquet incrementally by its updated-at column.

Each run reads the rows with watermark < updated_at <= upper, where upper is the newest
updated_at found now (minus `safety_lag`, so rows of transactions still in flight with an older
updated_at are not skipped), writes them to `<path>/run=<id>/`, then moves the watermark to
upper. The state file is written *before* the data with the run's window marked pending: a run
that dies after writing re-runs the same window into the same folder (overwrite), so a crash
never duplicates or loses rows. A row updated again later appears again in a later run: the
export is a change history; readers keep the newest version per key.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pyspark.sql import SparkSession

from featurestream.config.training_set import ExportHistorySpec, LabelsSpec
from featurestream.connectors.rds import JdbcReader, JdbcRelation, TimePredicate
from featurestream.errors import FeatureStreamError
from featurestream.io import hadoop_fs, paths
from featurestream.training import storage

log = logging.getLogger(__name__)


class ExportStateError(FeatureStreamError):
    """The export state file exists but cannot be understood."""


@dataclass
class ExportResult:
    run_id: str | None
    lower: datetime | None
    upper: datetime | None
    rows: int
    path: str | None


def _parse(text: str | None, path: str) -> dict[str, Any]:
    if text is None:
        return {"watermark": None, "pending": None, "runs": []}
    try:
        state = json.loads(text)
    except ValueError as exc:
        raise ExportStateError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(state, dict) or "watermark" not in state:
        raise ExportStateError(f"{path}: not an export state file")
    state.setdefault("runs", [])
    state.setdefault("pending", None)
    return state


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


def export_history(spark: SparkSession, labels: LabelsSpec, spec: ExportHistorySpec, *, source: str,
                   now: datetime | None = None) -> ExportResult:
    assert labels.jdbc is not None and labels.table is not None
    root = paths.join(storage.normalise(spec.path))
    state_path = storage.normalise(spec.resolved_state_path())
    state = _parse(storage.read_text(spark, state_path), state_path)
    reader = JdbcReader(spark, labels.jdbc, source=source)
    column = spec.updated_at_column
    columns = tuple(labels.columns) if labels.columns else None
    lower = _time(state["watermark"])
    base = JdbcRelation(table=labels.table, columns=columns)
    after = (TimePredicate(column, ">", lower),) if lower else ()

    pending = state.get("pending")
    if pending:
        run_id, upper = str(pending["run_id"]), _time(pending["upper"])
        log.info("export-history: resuming pending run %s", run_id)
    else:
        _, newest, _ = reader.bounds(base.with_predicates(*after), column)
        if newest is None:
            return ExportResult(None, lower, lower, 0, None)
        if not isinstance(newest, datetime):
            raise ExportStateError(f"export_history.updated_at_column {column!r} is not a timestamp column")
        upper = min(newest, (now or datetime.now(UTC)) - timedelta(milliseconds=spec.safety_lag_ms))
        if lower is not None and upper <= lower:
            return ExportResult(None, lower, lower, 0, None)
        run_id = upper.strftime("%Y%m%dT%H%M%S%fZ")
        state["pending"] = {"run_id": run_id, "lower": state["watermark"], "upper": upper.isoformat()}
        hadoop_fs.write_text(spark, state_path, json.dumps(state, indent=2))
    assert upper is not None
    relation = base.with_predicates(*after, TimePredicate(column, "<=", upper))
    read = reader.read(relation, labels.partitioning, time_column=column)
    target = paths.join(root, f"run={run_id}")
    read.frame.write.mode("overwrite").parquet(target)
    rows = spark.read.parquet(target).count()
    state["runs"].append({
        "run_id": run_id, "lower": state["watermark"], "upper": upper.isoformat(), "rows": rows,
        "path": target, "read_at": read.lineage["read_at"], "source": read.lineage["url"],
        "table": labels.table, "partitioning": read.lineage.get("partitioning"),
    })
    state.update(watermark=upper.isoformat(), pending=None, updated_at_column=column)
    hadoop_fs.write_text(spark, state_path, json.dumps(state, indent=2))
    return ExportResult(run_id, lower, upper, rows, target)
