"""Independent computation of the online records, in DuckDB, from the generated events.

The definition (README "Feature semantics"), for in-order streams with no late events:
- stream time S at the end = the newest event time of the whole stream;
- per entity, T = max(newest event time, latest decay boundary (k + n)·tile ≤ S over the
  entity's tiles k and every window n of the group);
- a feature over n tiles aggregates the events in tiles floor(T/tile) - n + 1 … floor(T/tile).
Written in SQL on purpose: it shares no code with the Spark job.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import pandas as pd

from featurestream.config import load_feature_group

ROOT = Path(__file__).resolve().parents[2]


def group_windows_s(path: Path = ROOT / "conf/feature_groups/card_activity.yaml") -> list[int]:
    """Every window of the example group, in seconds (they all move T through decay)."""
    spec = load_feature_group(path)
    return sorted({w // 1000 for f in spec.features for _, w in f.output_names() if w})


def expected_records(events: list[dict[str, object]], tile_s: int, window_s: int,
                     all_windows_s: Sequence[int] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame(events)
    frame["ts"] = pd.to_datetime(frame["event_time"], utc=True)
    windows = pd.DataFrame({"n": [w // tile_s for w in (all_windows_s or group_windows_s())]})
    con = duckdb.connect()
    con.register("events", frame)
    con.register("windows", windows)
    tile_ms = tile_s * 1000
    return con.execute(
        f"""
        WITH ev AS (
            SELECT card_id, amount, epoch_ms(ts) AS ms, floor(epoch_ms(ts) / {tile_ms})::BIGINT AS k FROM events
        ),
        clock AS (SELECT max(ms) AS s FROM ev),
        bounds AS (
            SELECT DISTINCT ev.card_id, (ev.k + w.n) * {tile_ms} AS b FROM ev CROSS JOIN windows w
        ),
        record_time AS (
            SELECT e.card_id,
                   greatest(max(e.ms), coalesce((SELECT max(b.b) FROM bounds b, clock c
                                                 WHERE b.card_id = e.card_id AND b.b <= c.s), 0)) AS t
            FROM ev e GROUP BY e.card_id
        )
        SELECT a.card_id, to_timestamp(a.t / 1000.0) AS as_of,
               count(e.ms) AS txn_count,
               coalesce(sum(e.amount), 0) AS amount_sum
        FROM record_time a LEFT JOIN ev e
          ON e.card_id = a.card_id
         AND e.k BETWEEN floor(a.t / {tile_ms})::BIGINT - {window_s // tile_s} + 1 AND floor(a.t / {tile_ms})::BIGINT
        GROUP BY a.card_id, a.t
        ORDER BY a.card_id
        """
    ).df()
