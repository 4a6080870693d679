"""Independent computation of the online records, in DuckDB, from the generated events.

The definition (see featurestream/aggregation.py): for each entity, T = its newest event time;
`end` = the end of the epoch-aligned tile holding T; a feature over W aggregates the events with
event time in [end - W, end). Written in SQL on purpose: it shares no code with the Spark job.
"""

from __future__ import annotations

import duckdb
import pandas as pd


def expected_records(events: list[dict[str, object]], tile_s: int, window_s: int) -> pd.DataFrame:
    frame = pd.DataFrame(events)
    frame["ts"] = pd.to_datetime(frame["event_time"], utc=True)
    con = duckdb.connect()
    con.register("events", frame)
    return con.execute(
        f"""
        WITH latest AS (
            SELECT card_id, max(ts) AS t,
                   to_timestamp((floor(epoch_ms(max(ts)) / 1000 / {tile_s}) + 1) * {tile_s}) AS window_end
            FROM events GROUP BY card_id
        )
        SELECT l.card_id, l.t AS as_of,
               count(*) AS txn_count,
               sum(e.amount) AS amount_sum
        FROM latest l JOIN events e
          ON e.card_id = l.card_id
         AND e.ts >= l.window_end - INTERVAL {window_s} SECOND
         AND e.ts < l.window_end
        GROUP BY l.card_id, l.t
        ORDER BY l.card_id
        """
    ).df()
