"""The offline rows' partition folders are the EventTime's UTC year, month, day and hour.

`offline_rows` cuts them out of the EventTime text (one date_format a record instead of five); an
independent computation (Python's own UTC calendar) says what each must be.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from featurestream.backfill.offline import offline_rows
from featurestream.config import load_feature_group

GROUP = """
entity: {key: card_id, type: string}
event_time: {field: event_time}
source: {type: kafka, topic: rows, format: json, schema: {card_id: string, amount: double, event_time: timestamp}}
windows: {tile: 1m, allowed_lateness: 2m}
features:
  - {name: total, agg: sum, column: amount, windows: [5m]}
online_store: {feature_group_name: rows, ttl: 7d}
"""

TIMES = [
    datetime(2026, 3, 1, tzinfo=UTC),
    datetime(2024, 2, 29, 23, 59, 59, 999_000, tzinfo=UTC),
    datetime(1999, 12, 31, 9, 0, 0, 1_000, tzinfo=UTC),
    datetime(2030, 7, 4, 13, 30, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC),
    datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
    *[datetime(2026, 12, 6, tzinfo=UTC) + timedelta(minutes=37 * i, milliseconds=7 * i) for i in range(80)],
]


def test_partitions_are_the_event_times_utc_hour(spark: Any, tmp_path: Path) -> None:
    group = tmp_path / "rows.yaml"
    group.write_text(GROUP)
    spec = load_feature_group(group)
    records = spark.createDataFrame(
        [(f"c{i}", t, float(i)) for i, t in enumerate(TIMES)], "card_id string, event_time timestamp, total_5m double"
    )
    rows = offline_rows(records, spec, datetime.now(UTC)).collect()
    assert len(rows) == len(TIMES)
    for row in rows:
        want = TIMES[int(row["card_id"][1:])]
        assert row["event_time"] == (
            f"{want.year:04d}-{want.month:02d}-{want.day:02d}T{want.hour:02d}:"
            f"{want.minute:02d}:{want.second:02d}.{want.microsecond // 1000:03d}Z"
        )
        assert (row["year"], row["month"], row["day"], row["hour"]) == (
            f"{want.year:04d}",
            f"{want.month:02d}",
            f"{want.day:02d}",
            f"{want.hour:02d}",
        )
