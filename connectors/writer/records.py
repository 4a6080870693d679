"""Spark rows (as Arrow batches) → SageMaker records: lists of {FeatureName, ValueAsString}."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

FeatureValues = list[dict[str, str]]


@dataclass(frozen=True)
class Record:
    """One record to write, with what a DLQ entry needs to name it."""

    identifier: str | None
    event_time: str | None
    values: FeatureValues

    def as_dict(self) -> dict[str, str]:
        return {v["FeatureName"]: v["ValueAsString"] for v in self.values}


def format_event_time(value: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a `Z`, a form SageMaker accepts for String EventTime."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def format_value(value: Any) -> str | None:
    """A feature value as SageMaker's ValueAsString; None (and NaN, ±inf) leave the feature out."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else repr(value)
    if isinstance(value, datetime):
        return format_event_time(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _formatter(arrow_type: pa.DataType) -> Callable[[Any], str | None]:
    """A per-column formatter chosen once per batch instead of per value."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return lambda v: v
    if pa.types.is_integer(arrow_type):
        return lambda v: None if v is None else str(v)
    return format_value


def records_from_batch(
    batch: pa.RecordBatch, identifier: str, event_time: str, features: Sequence[str]
) -> Iterator[Record]:
    """One Record per row; columns other than the identifier, event time and features are ignored."""
    names = [identifier, event_time, *features]
    columns: list[list[str | None]] = []
    for name in names:
        column = batch.column(batch.schema.get_field_index(name))
        fmt = _formatter(column.type)
        columns.append([fmt(v) for v in column.to_pylist()])
    for row in zip(*columns, strict=True):
        values = [{"FeatureName": n, "ValueAsString": v} for n, v in zip(names, row, strict=True) if v is not None]
        yield Record(identifier=row[0], event_time=row[1], values=values)
