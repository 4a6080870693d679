"""Independent computation of the compacted output, in DuckDB, straight from the raw offline files.

The documented rules (docs/compaction.md), written as SQL on purpose: nothing is shared with the
Spark job. Rows with the same (record identifier, event-time instant) are versions of one row;
the kept one is the first by is_deleted DESC, write_time DESC, api_invocation_time DESC, then
the other columns ascending (nulls first). deletes=apply removes the rows of a record with event
time <= its latest delete marker. The snapshot is each record's kept row with the latest event
time. Partitions are UTC dates (and hours) of the event time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _connect(files: list[Path], event_time: str, numeric_time: bool) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    listing = ", ".join(f"'{f}'" for f in files)
    parse = f"to_timestamp({_quote(event_time)})" if numeric_time else f"CAST({_quote(event_time)} AS TIMESTAMPTZ)"
    read = f"read_parquet([{listing}], union_by_name = true, hive_partitioning = false)"
    con.execute(f"CREATE TABLE raw AS SELECT *, {parse} AS __t FROM {read}")
    return con


def _columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("SELECT column_name FROM (DESCRIBE raw)").fetchall() if r[0] != "__t"]


def _order(columns: list[str], record_id: str) -> str:
    content = [c for c in columns if c not in (record_id, "write_time", "api_invocation_time", "is_deleted")]
    parts = ["is_deleted DESC", "write_time DESC NULLS LAST", "api_invocation_time DESC NULLS LAST"]
    return ", ".join(parts + [f"{_quote(c)} ASC NULLS FIRST" for c in content])


def _kept_sql(columns: list[str], record_id: str, deletes: str) -> str:
    rid = _quote(record_id)
    sql = f"""
        SELECT * EXCLUDE (__rn) FROM (
            SELECT *, row_number() OVER (PARTITION BY {rid}, __t ORDER BY {_order(columns, record_id)}) AS __rn
            FROM raw) WHERE __rn = 1"""
    if deletes == "apply":
        sql = f"""
            SELECT k.* FROM ({sql}) k
            WHERE NOT EXISTS (SELECT 1 FROM raw d WHERE d.is_deleted AND d.{rid} = k.{rid} AND k.__t <= d.__t)"""
    return sql


def expected(
    files: list[Path], *, record_id: str = "id", event_time: str = "ts", deletes: str = "keep",
    partition_by: str = "day", numeric_time: bool = False,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(columns, rows) of the compacted output; each row ends with its partition key string."""
    con = _connect(files, event_time, numeric_time)
    columns = _columns(con)
    part = "'event_date=' || strftime(__t, '%Y-%m-%d')"
    if partition_by == "hour":
        part += " || '/event_hour=' || CAST(hour(__t) AS VARCHAR)"
    select = ", ".join(_quote(c) for c in columns)
    rows = con.execute(f"SELECT {select}, {part} FROM ({_kept_sql(columns, record_id, deletes)})").fetchall()
    return columns, sorted((normalise_row(r) for r in rows), key=repr)


def expected_snapshot(
    files: list[Path], *, record_id: str = "id", event_time: str = "ts", deletes: str = "keep",
    numeric_time: bool = False,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    con = _connect(files, event_time, numeric_time)
    columns = _columns(con)
    select = ", ".join(_quote(c) for c in columns)
    sql = f"""
        SELECT {select} FROM (
            SELECT *, row_number() OVER (PARTITION BY {_quote(record_id)}
                                         ORDER BY __t DESC, {_order(columns, record_id)}) AS __rn2
            FROM ({_kept_sql(columns, record_id, deletes)})) WHERE __rn2 = 1"""
    return columns, sorted((normalise_row(r) for r in con.execute(sql).fetchall()), key=repr)


def normalise(value: Any) -> Any:
    """Timestamps → epoch milliseconds (Spark writes microseconds, the emulator milliseconds)."""
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
        return round(stamp.timestamp() * 1000)
    if isinstance(value, list):
        return tuple(normalise(v) for v in value)
    return value


def normalise_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(normalise(v) for v in row)


def _partition_key(row: dict[str, Any]) -> str:
    key = f"event_date={row['event_date']:%Y-%m-%d}"
    return f"{key}/event_hour={row['event_hour']}" if "event_hour" in row else key


def table_at(location: Path) -> Any:
    """The Iceberg table whose location is `location`, as pyiceberg reads it from the newest
    metadata file there (no catalog, no featurestream code)."""
    from pyiceberg.table import StaticTable

    files = sorted(location.glob("metadata/*.metadata.json"), key=lambda p: int(p.name.split("-")[0].lstrip("v")))
    return StaticTable.from_metadata(str(files[-1]))


def table_folders(root: Path) -> list[Path]:
    """The Iceberg table locations under `root` (compacted output: one per feature group)."""
    return sorted({p.parent.parent for p in root.rglob("metadata/*.metadata.json")})


def compacted(table: Any, columns: list[str], snapshot_id: int | None = None) -> list[tuple[Any, ...]]:
    """The committed rows of a pyiceberg table (its current snapshot, or `snapshot_id`), each
    ending with its partition key: read by pyiceberg alone, no featurestream code."""
    data = table.scan(snapshot_id=snapshot_id).to_arrow().to_pylist()
    rows = [(*[normalise(r.get(c)) for c in columns], _partition_key(r)) for r in data]
    return sorted(rows, key=repr)


def compacted_rows(table: Any, columns: list[str]) -> list[tuple[Any, ...]]:
    """The current rows of a table without our partition columns (an Iceberg offline store)."""
    data = table.scan().to_arrow().to_pylist()
    return sorted((tuple(normalise(r.get(c)) for c in columns) for r in data), key=repr)


def state(table: Any, snapshot_id: int | None = None) -> dict[str, Any]:
    """The compaction state the snapshot's summary carries (`featurestream.state`)."""
    snapshot = table.current_snapshot() if snapshot_id is None else table.snapshot_by_id(snapshot_id)
    return dict(json.loads(snapshot.summary["featurestream.state"]))


def snapshot(table: Any, output: Path, columns: list[str]) -> list[tuple[Any, ...]]:
    rows = []
    for file in state(table)["snapshot"] or []:
        data = pq.read_table(output / file["path"]).to_pylist()
        rows.extend(tuple(normalise(r.get(c)) for c in columns) for r in data)
    return sorted(rows, key=repr)
