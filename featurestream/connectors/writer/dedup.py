"""Latest record per entity within a micro-batch, by EventTime, on the executors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

# How many input rows each entity's record stands for (summed into the `records_in` metric).
RECORDS_IN = "__fs_records_in"
_LATEST = "__fs_latest"


def latest_per_entity(records: DataFrame, identifier: str, event_time: str, features: Sequence[str]) -> DataFrame:
    """One row per identifier: the one with the greatest event time.

    `max(struct(event_time, features...))` orders by event time first; equal event times fall
    back to the feature values, so the pick is deterministic and a replayed batch sends exactly
    the same record. It is a hash aggregate with map-side partial aggregation, and reuses the
    input's partitioning when it is already by the identifier (no second shuffle).
    """
    from pyspark.sql import functions as F

    fields = [event_time, *features]
    quoted = ", ".join(_quote(name) for name in fields)
    # SQL text rather than Column objects: a few py4j calls instead of several per feature.
    return (
        records.groupBy(_quote(identifier))
        .agg(F.expr(f"max(struct({quoted})) AS {_LATEST}"), F.expr(f"count(1) AS {RECORDS_IN}"))
        .selectExpr(_quote(identifier), *[f"{_LATEST}.{_quote(n)} AS {_quote(n)}" for n in fields], RECORDS_IN)
    )


def one_per_entity(records: DataFrame, identifier: str, event_time: str, features: Sequence[str]) -> DataFrame:
    """Rows the caller promises are one per identifier, in the columns of `latest_per_entity`."""
    names = [identifier, event_time, *features]
    return records.selectExpr(*[_quote(n) for n in names], f"1L AS {RECORDS_IN}")


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
