"""The Spark schema of a feature group's offline rows, and how schemas of different ages merge.

SageMaker only ever adds features to a group (UpdateFeatureGroup FeatureAdditions), so newer
files carry a superset of the older files' columns. Reading every file with the merged schema
gives older rows nulls in the added columns.
"""

from __future__ import annotations

import json
from typing import Any

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from featurestream.compaction.errors import CompactionError

WRITE_TIME = "write_time"
API_INVOCATION_TIME = "api_invocation_time"
IS_DELETED = "is_deleted"
SYSTEM_COLUMNS = (WRITE_TIME, API_INVOCATION_TIME, IS_DELETED)

_SCALARS: dict[str, DataType] = {"Integral": LongType(), "Fractional": DoubleType(), "String": StringType()}


def offline_schema(feature_definitions: list[dict[str, Any]]) -> StructType:
    """The columns the offline store writes for these definitions, in its order."""
    fields: list[StructField] = []
    for definition in feature_definitions:
        scalar = _SCALARS.get(str(definition.get("FeatureType")))
        if scalar is None:
            raise CompactionError(f"feature {definition.get('FeatureName')!r}: unknown type "
                                  f"{definition.get('FeatureType')!r}")
        data_type: DataType = ArrayType(scalar) if definition.get("CollectionType") else scalar
        fields.append(StructField(str(definition["FeatureName"]), data_type, True))
    fields += [
        StructField(WRITE_TIME, TimestampType(), True),
        StructField(API_INVOCATION_TIME, TimestampType(), True),
        StructField(IS_DELETED, BooleanType(), True),
    ]
    return StructType(fields)


def merge_schemas(older: StructType | None, newer: StructType) -> StructType:
    """`older`'s columns in their order, then the columns only `newer` has.

    A column whose type changed is an error: SageMaker cannot change a feature's type, so the
    input is not one feature group's offline store.
    """
    if older is None:
        return newer
    known = {f.name.lower(): f for f in older.fields}
    fields = list(older.fields)
    for field in newer.fields:
        previous = known.get(field.name.lower())
        if previous is None:
            fields.append(StructField(field.name, field.dataType, True))
        elif previous.dataType != field.dataType:
            raise CompactionError(
                f"column {field.name!r} is {previous.dataType.simpleString()} in the compacted output but "
                f"{field.dataType.simpleString()} in newer files"
            )
    return StructType(fields)


def check_columns(schema: StructType, record_identifier: str, event_time: str, reserved: list[str]) -> None:
    names = {f.name for f in schema.fields}
    for column in (record_identifier, event_time, *SYSTEM_COLUMNS):
        if column not in names:
            raise CompactionError(f"the offline rows have no column {column!r} (columns: {sorted(names)})")
    clash = sorted(names.intersection(reserved))
    if clash:
        raise CompactionError(f"feature name(s) {clash} clash with the compacted output's partition columns")
    event_type = schema[event_time].dataType
    if not isinstance(event_type, StringType | DoubleType | LongType | TimestampType):
        raise CompactionError(f"event time {event_time!r} has type {event_type.simpleString()}; "
                              "expected String (ISO-8601) or Fractional (Unix seconds)")


def schema_from_json(text: str | None) -> StructType | None:
    return StructType.fromJson(json.loads(text)) if text else None
