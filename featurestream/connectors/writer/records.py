"""Spark rows (as Arrow batches) → SageMaker records, already in the request's JSON form.

A record travels through the writer as the JSON text of its FeatureValue list
(`[{"FeatureName":…,"ValueAsString":…},…]`), built column by column from the Arrow batch. A
BatchWriteRecord body is then a string join of those texts (`partition_writer`), so the hot path
makes no per-value Python dicts and botocore does not walk 125 values per call to serialise them.
The list form (`Record.values`) is parsed back only where it is needed: PutRecord, DLQ entries.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

FeatureValues = list[dict[str, str]]

# JSON string literal of a str (C-accelerated); non-ASCII stays as is, the body is sent as UTF-8.
encode_string: Callable[[str], str] = json.encoder.encode_basestring


class Record:
    """One record to write: its identifier and event time (for DLQ entries and matching echoed
    entries) and `record_json`, the JSON text of its FeatureValue list."""

    __slots__ = ("event_time", "identifier", "record_json")

    def __init__(self, identifier: str | None, event_time: str | None, record_json: str) -> None:
        self.identifier = identifier
        self.event_time = event_time
        self.record_json = record_json

    @classmethod
    def from_values(cls, identifier: str | None, event_time: str | None, values: FeatureValues) -> Record:
        return cls(identifier, event_time, json.dumps(values, separators=(",", ":"), ensure_ascii=False))

    @property
    def values(self) -> FeatureValues:
        """The record as boto3 takes it (`Record=` of PutRecord)."""
        values: FeatureValues = json.loads(self.record_json)
        return values

    def as_dict(self) -> dict[str, str]:
        return {v["FeatureName"]: v["ValueAsString"] for v in self.values}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and (self.identifier, self.event_time, self.record_json) == (
            other.identifier, other.event_time, other.record_json)

    def __hash__(self) -> int:
        return hash((self.identifier, self.event_time, self.record_json))

    def __repr__(self) -> str:
        return f"Record(identifier={self.identifier!r}, event_time={self.event_time!r})"


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


def _texts(column: pa.Array) -> list[str | None]:
    """A column's values as ValueAsString texts (None = leave the feature out)."""
    arrow_type = column.type
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        texts: list[str | None] = column.to_pylist()
        return texts
    if pa.types.is_integer(arrow_type):
        return [None if v is None else str(v) for v in column.to_pylist()]
    return [format_value(v) for v in column.to_pylist()]


def _fragments(name: str, texts: list[str | None]) -> list[str | None]:
    """`{"FeatureName":name,"ValueAsString":text}` per value, None where the feature is left out."""
    head = '{"FeatureName":' + encode_string(name) + ',"ValueAsString":'
    return [None if t is None else head + encode_string(t) + "}" for t in texts]


def records_from_batch(
    batch: pa.RecordBatch, identifier: str, event_time: str, features: Sequence[str]
) -> list[Record]:
    """One Record per row; columns other than the identifier, event time and features are ignored."""
    names = [identifier, event_time, *features]
    texts = [_texts(batch.column(batch.schema.get_field_index(name))) for name in names]
    fragments = [_fragments(name, column) for name, column in zip(names, texts, strict=True)]
    rows = zip(*fragments, strict=True)
    return [
        Record(ident, when, "[" + ",".join([f for f in row if f is not None]) + "]")
        for ident, when, row in zip(texts[0], texts[1], rows, strict=True)
    ]
