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


def manifest(output: Path) -> dict[str, Any]:
    return dict(json.loads((output / "_compaction" / "manifest.json").read_text()))


def compacted(output: Path, columns: list[str]) -> list[tuple[Any, ...]]:
    """The committed rows (through the manifest's file list), each ending with its partition key."""
    rows = []
    for key, entry in manifest(output)["partitions"].items():
        for file in entry["files"]:
            table = pq.read_table(output / file["path"])
            data = table.to_pydict()
            for i in range(table.num_rows):
                rows.append((*[normalise(data[c][i]) if c in data else None for c in columns], key))
    return sorted(rows, key=repr)


def snapshot(output: Path, columns: list[str]) -> list[tuple[Any, ...]]:
    rows = []
    for file in manifest(output)["snapshot"] or []:
        data = pq.read_table(output / file["path"]).to_pylist()
        rows.extend(tuple(normalise(r.get(c)) for c in columns) for r in data)
    return sorted(rows, key=repr)
