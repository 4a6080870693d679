"""Training sets written as CSV (issue 19, finding 9): what was read is what is written.

Spark's CSV defaults cut timestamps to milliseconds and strip a value's leading and trailing
spaces, so `card-00006 ` became another key. The file is read back with Python's csv module (not
Spark) and compared with the rows that went in; a column CSV cannot hold is refused up front.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from featurestream.config.training_set import OutputSpec
from featurestream.errors import ConfigError
from featurestream.training import output

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SCHEMA = T.StructType([
    T.StructField("card_id", T.StringType()),
    T.StructField("label_time", T.TimestampType()),
    T.StructField("local_time", T.TimestampNTZType()),
    T.StructField("amount", T.DoubleType()),
    T.StructField("limit", T.DecimalType(12, 4)),
])
ROWS = [
    ("card-00006 ", datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC), datetime(2026, 3, 1, 13, 0, 0, 654321),
     0.1 + 0.2, Decimal("1234.5678")),
    ("  card-00007", datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), datetime(2026, 3, 1, 0, 0, 0, 1),
     -1e-300, Decimal("0.0001")),
    ('quote"d, with comma', datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC), None, None, None),
    ("line\nbreak\t", datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC), datetime(2026, 3, 1, 0, 0, 0), 5.0, None),
]


def _read_with_python_csv(folder: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for part in sorted(Path(folder).glob("part-*.csv")):
        with part.open(newline="", encoding="utf-8") as handle:
            rows.extend(csv.DictReader(handle))
    return rows


def test_csv_keeps_microseconds_and_white_space(spark: Any, tmp_path: Path) -> None:
    frame = spark.createDataFrame(ROWS, SCHEMA)
    spec = OutputSpec(path=str(tmp_path / "set"), format="csv")
    written = output.write(spark, frame, "label_time", spec, None, ["amount"])

    found = sorted(_read_with_python_csv(written.splits[0].path), key=lambda r: r["card_id"])
    expected = sorted(ROWS, key=lambda r: r[0])
    assert [r["card_id"] for r in found] == [r[0] for r in expected]
    assert [datetime.fromisoformat(r["label_time"]) for r in found] == [r[1] for r in expected]
    assert [datetime.fromisoformat(r["local_time"]) if r["local_time"] else None for r in found] == [
        r[2] for r in expected]
    assert [float(r["amount"]) if r["amount"] else None for r in found] == [r[3] for r in expected]
    assert [Decimal(r["limit"]) if r["limit"] else None for r in found] == [r[4] for r in expected]
    # Spark reads back the same rows (the label statistics of the manifest come from this).
    # (Instants as epoch microseconds: PySpark turns a timestamp into the Python process's local time.)
    back = output.read_back(spark, written, written.splits[0], SCHEMA)
    back = back.withColumn("label_time", F.unix_micros("label_time"))
    assert sorted(tuple(row) for row in back.collect()) == sorted(
        (r[0], (r[1] - EPOCH) // timedelta(microseconds=1), *r[2:]) for r in ROWS)


def test_columns_csv_cannot_hold_are_refused_before_writing(spark: Any, tmp_path: Path) -> None:
    frame = spark.createDataFrame([("c1", datetime(2026, 3, 1, tzinfo=UTC), ["a"], {"k": 1})],
                                  "card_id string, label_time timestamp, tags array<string>, counts map<string,int>")
    spec = OutputSpec(path=str(tmp_path / "set"), format="csv")
    with pytest.raises(ConfigError) as caught:
        output.write(spark, frame, "label_time", spec, None, [], source="fraud.yaml")
    assert str(caught.value) == ("fraud.yaml: output.format: csv cannot hold column 'tags' (array<string>), "
                                 "'counts' (map<string,int>): write parquet, or leave the column out")
    assert not (tmp_path / "set").exists()
