"""Spark rows (as Arrow batches) → SageMaker records, already in the request's JSON form.

A record travels through the writer as the JSON text of its FeatureValue list
(`[{"FeatureName":…,"ValueAsString":…},…]`), built column by column from the Arrow batch by
Arrow's string kernels (numbers, booleans and timestamps formatted in C, floats by the built-in
repr; measured with bench/write_cost.py: 27 -> 14 us of CPU per record of 17 values). A
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
import pyarrow.compute as pc

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


# 1000-01-01T00:00:00Z: from there on Arrow's strftime and Python's agree to the character
# (Python leaves years below 1000 unpadded); a batch with an earlier instant takes the Python path.
_ARROW_TIME_FROM_S = -30_610_224_000
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_NO_TEXT = pa.scalar(None, pa.string())


def _texts(column: pa.Array) -> tuple[pa.Array, bool]:
    """A column's values as ValueAsString texts (null = leave the feature out), and whether they
    need JSON escaping. Numbers, booleans and timestamps are formatted by Arrow in C, or by the
    built-in float repr without a Python call per value; other types go through `format_value`."""
    arrow_type = column.type
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return column.cast(pa.string()), True
    if pa.types.is_integer(arrow_type):
        return pc.cast(column, pa.string()), False
    if pa.types.is_floating(arrow_type):
        # Python's shortest repr (Arrow's float text differs: "1" for 1.0, "1e-7"); NaN, ±inf and
        # nulls leave the feature out.
        floats = column.to_numpy(zero_copy_only=False).astype("float64", copy=False).tolist()
        texts = pa.array(list(map(float.__repr__, floats)), pa.string())
        return pc.if_else(pc.is_finite(column), texts, _NO_TEXT), False
    if pa.types.is_boolean(arrow_type):
        return pc.if_else(column, "1", "0"), False
    if pa.types.is_timestamp(arrow_type):
        low = pc.min(column.view(pa.int64())).as_py()
        if low is None or low >= _ARROW_TIME_FROM_S * _PER_SECOND[arrow_type.unit]:
            return _iso_texts(column), False
    return pa.array([format_value(v) for v in column.to_pylist()], pa.string()), True


def _iso_texts(column: pa.Array) -> pa.Array:
    """`format_event_time` in Arrow: UTC, milliseconds floored, a `Z`."""
    utc = column.cast(pa.timestamp(column.type.unit))  # drops the zone, keeps the UTC instant
    millis = pc.floor_temporal(utc, unit="millisecond").cast(pa.timestamp("ms"))
    return pc.binary_join_element_wise(pc.strftime(millis, format="%Y-%m-%dT%H:%M:%S"), "Z", "")


def _fragments(name: str, texts: pa.Array, escape: bool) -> pa.Array:
    """`{"FeatureName":name,"ValueAsString":text}` per value, null where the feature is left out."""
    if escape:
        values = texts.to_pylist()
        quoted = pa.array(list(map(encode_string, values)) if texts.null_count == 0 else
                          [None if t is None else encode_string(t) for t in values], pa.string())
    else:  # digits, signs, '.', 'e', ':', 'T', 'Z': nothing to escape
        quoted = pc.binary_join_element_wise('"', texts, '"', "")
    head = '{"FeatureName":' + encode_string(name) + ',"ValueAsString":'
    return pc.binary_join_element_wise(head, quoted, "}", "")


def records_from_batch(
    batch: pa.RecordBatch, identifier: str, event_time: str, features: Sequence[str]
) -> list[Record]:
    """One Record per row; columns other than the identifier, event time and features are ignored.

    Each record's JSON is assembled by Arrow's string kernels, column by column: no Python call
    per value except to escape string values."""
    names = [identifier, event_time, *features]
    texts = [_texts(batch.column(batch.schema.get_field_index(name))) for name in names]
    fragments = [_fragments(name, column, escape) for name, (column, escape) in zip(names, texts, strict=True)]
    joined = pc.binary_join_element_wise(*fragments, ",", null_handling="skip")
    jsons = pc.binary_join_element_wise("[", joined, "]", "").to_pylist()
    return list(map(Record, texts[0][0].to_pylist(), texts[1][0].to_pylist(), jsons))
