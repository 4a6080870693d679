"""The expected training set, computed in DuckDB with `ASOF JOIN`; no code shared with the engine.

- versions of one (key, EventTime) are reduced first: delete marker first, then the latest
  write_time, then the latest api_invocation_time (DuckDB's ASOF picks one row per match, so it
  needs a unique row per EventTime);
- `strictly_before` is `>` in the ASOF condition instead of `>=`;
- availability mode (the first write of the newest EventTime among API calls up to the label's
  time) is not an ASOF on EventTime, so it is written as an inequality join ordered per label,
  which is fine at test sizes;
- TTL and deletes are applied afterwards: a delete or an expired value gives nulls, and so does
  a label row without a timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pandas as pd


@dataclass(frozen=True)
class GroupQuery:
    table: str
    keys: dict[str, str]  # label column -> group column
    features: dict[str, str]  # group column -> output column
    event_time_output: str
    ttl_seconds: int | None = None
    event_time_is_string: bool = False


@dataclass
class Oracle:
    labels: pd.DataFrame
    groups: dict[str, pd.DataFrame]
    con: duckdb.DuckDBPyConnection = field(default_factory=duckdb.connect)

    def __post_init__(self) -> None:
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.register("labels_raw", self.labels)
        self.con.execute("CREATE TABLE labels AS SELECT * FROM labels_raw")
        for name, frame in self.groups.items():
            self.con.register(f"{name}_raw", frame)

    def _features(self, group: GroupQuery) -> str:
        event_time = ("CAST(event_time AS TIMESTAMPTZ)" if group.event_time_is_string else "event_time")
        return f"SELECT * REPLACE ({event_time} AS event_time) FROM {group.table}_raw"

    def expected(self, groups: list[GroupQuery], *, strictly_before: bool = False,
                 availability: bool = False) -> pd.DataFrame:
        selects = ["l.*"]
        joins = []
        for i, group in enumerate(groups):
            alias = f"g{i}"
            on = " AND ".join(f"l.{lk} = {alias}.{gk}" for lk, gk in group.keys.items())
            op = ">" if strictly_before else ">="
            if availability:
                source = self._available(group, alias, strictly_before)
                joins.append(f"LEFT JOIN ({source}) {alias} ON {alias}.label_id = l.label_id")
            else:
                dedup = (f"SELECT * FROM ({self._features(group)}) QUALIFY row_number() OVER ("
                         f"PARTITION BY {', '.join(group.keys.values())}, event_time "
                         f"ORDER BY is_deleted DESC, write_time DESC, api_invocation_time DESC) = 1")
                joins.append(f"ASOF LEFT JOIN ({dedup}) {alias} ON {on} AND l.label_time {op} {alias}.event_time")
            # DuckDB's ASOF matches a NULL probe time to the newest row; our rule gives it nothing.
            valid = f"(l.label_time IS NOT NULL AND {alias}.event_time IS NOT NULL AND NOT {alias}.is_deleted"
            if group.ttl_seconds is not None:
                valid += f" AND l.label_time - {alias}.event_time <= INTERVAL {group.ttl_seconds} SECOND"
            valid += ")"
            selects.append(f"CASE WHEN {valid} THEN {alias}.event_time END AS {group.event_time_output}")
            for column, output in group.features.items():
                selects.append(f'CASE WHEN {valid} THEN {alias}."{column}" END AS "{output}"')
        sql = f"SELECT {', '.join(selects)} FROM labels l {' '.join(joins)} ORDER BY l.label_id"
        return self.con.execute(sql).df()

    def _available(self, group: GroupQuery, alias: str, strictly_before: bool) -> str:
        """Per label, what the online store held: among rows whose API call was <= (<) its time,
        the newest EventTime, and of those the first written (a later equal EventTime is refused)."""
        op = "<" if strictly_before else "<="
        on = " AND ".join(f"l2.{lk} = f.{gk}" for lk, gk in group.keys.items())
        return (
            f"SELECT l2.label_id, f.* FROM labels l2 JOIN ({self._features(group)}) f ON {on} "
            f"AND f.api_invocation_time {op} l2.label_time "
            f"QUALIFY row_number() OVER (PARTITION BY l2.label_id ORDER BY f.event_time DESC, "
            f"f.api_invocation_time ASC, f.is_deleted DESC, f.write_time DESC) = 1"
        )
