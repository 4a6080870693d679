"""A feature group as the user declares it in `conf/feature_groups/<name>.yaml`.

The file name is the group's name. Everything a streaming job needs to know about one group is
here: the entity key, the event-time field, the source and its schema, the windows and the
features. Cross-field rules (columns exist in the schema, windows are multiples of the tile)
are checked here so a bad file fails before any Spark query starts.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from featurestream.config.base import Frozen
from featurestream.durations import format_duration, parse_duration_ms

# Spark SQL type names we accept in an inline schema.
_SIMPLE_TYPES = {
    "string", "int", "integer", "bigint", "long", "smallint", "tinyint", "double", "float",
    "boolean", "timestamp", "date", "binary",
}
_DECIMAL = re.compile(r"^decimal\(\s*\d+\s*,\s*\d+\s*\)$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# SageMaker: feature group names are 1-64 chars of [a-zA-Z0-9-], starting alphanumeric.
_FG_NAME = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]){0,63}$")

Duration = Annotated[str, Field(min_length=2)]


def _check_duration(value: str) -> str:
    parse_duration_ms(value)
    return value


def _check_identifier(value: str) -> str:
    if not IDENTIFIER.match(value):
        raise ValueError(f"{value!r} is not a valid column name (letters, digits, underscore)")
    return value


class EntitySpec(Frozen):
    key: str
    type: Literal["string", "long", "int"] = "string"

    _key = field_validator("key")(_check_identifier)


class EventTimeSpec(Frozen):
    field: str
    # How the raw value is written: an ISO-8601 string / timestamp column, or epoch numbers.
    format: Literal["timestamp", "epoch_seconds", "epoch_millis"] = "timestamp"

    _field = field_validator("field")(_check_identifier)


class KafkaSourceSpec(Frozen):
    type: Literal["kafka"]
    topic: str = Field(min_length=1)
    format: Literal["json"] = "json"
    schema_: dict[str, str] = Field(alias="schema", min_length=1)
    starting_offsets: Literal["earliest", "latest"] = "earliest"

    @field_validator("schema_")
    @classmethod
    def _types_known(cls, schema: dict[str, str]) -> dict[str, str]:
        for column, type_name in schema.items():
            _check_identifier(column)
            normalised = type_name.strip().lower()
            if normalised not in _SIMPLE_TYPES and not _DECIMAL.match(normalised):
                raise ValueError(f"column {column!r}: unknown type {type_name!r}")
        return schema

    def ddl(self) -> str:
        """The schema as a Spark DDL string, e.g. `card_id string, amount double`."""
        return ", ".join(f"`{name}` {type_name}" for name, type_name in self.schema_.items())


class WindowsSpec(Frozen):
    tile: Duration = "1m"
    allowed_lateness: Duration = "5m"

    _durations = field_validator("tile", "allowed_lateness")(_check_duration)

    @property
    def tile_ms(self) -> int:
        return parse_duration_ms(self.tile)

    @property
    def allowed_lateness_ms(self) -> int:
        return parse_duration_ms(self.allowed_lateness)


class Aggregation(StrEnum):
    COUNT = "count"
    SUM = "sum"

    @property
    def needs_column(self) -> bool:
        return self is not Aggregation.COUNT


class FeatureSpec(Frozen):
    name: str
    agg: Aggregation
    column: str | None = None
    windows: list[Duration] = Field(min_length=1)

    _name = field_validator("name")(_check_identifier)

    @field_validator("windows")
    @classmethod
    def _windows(cls, windows: list[str]) -> list[str]:
        for window in windows:
            _check_duration(window)
        if len({parse_duration_ms(w) for w in windows}) != len(windows):
            raise ValueError("the same window is listed twice")
        return windows

    @model_validator(mode="after")
    def _column_matches_agg(self) -> FeatureSpec:
        if self.agg.needs_column and not self.column:
            raise ValueError(f"agg {self.agg.value!r} needs a column")
        if not self.agg.needs_column and self.column:
            raise ValueError(f"agg {self.agg.value!r} takes no column")
        return self

    def output_names(self) -> list[tuple[str, int]]:
        """(feature name in the store, window in ms) for every window of this feature."""
        return [
            (f"{self.name}_{format_duration(parse_duration_ms(w))}", parse_duration_ms(w))
            for w in self.windows
        ]


class OnlineStoreSpec(Frozen):
    feature_group_name: str
    ttl: Duration | None = None

    @field_validator("feature_group_name")
    @classmethod
    def _fg_name(cls, value: str) -> str:
        if not _FG_NAME.match(value):
            raise ValueError(f"{value!r} is not a valid SageMaker feature group name ([a-zA-Z0-9-], 1-64)")
        return value

    _ttl = field_validator("ttl")(lambda v: v if v is None else _check_duration(v))


class FeatureGroupSpec(Frozen):
    name: str
    description: str = ""
    entity: EntitySpec
    event_time: EventTimeSpec
    source: KafkaSourceSpec
    windows: WindowsSpec = WindowsSpec()
    features: list[FeatureSpec] = Field(min_length=1)
    online_store: OnlineStoreSpec

    @model_validator(mode="after")
    def _cross_checks(self) -> FeatureGroupSpec:
        schema = self.source.schema_
        if self.entity.key not in schema:
            raise ValueError(f"entity.key {self.entity.key!r} is not a column of source.schema")
        if self.event_time.field not in schema:
            raise ValueError(f"event_time.field {self.event_time.field!r} is not a column of source.schema")
        tile = self.windows.tile_ms
        seen: set[str] = set()
        for index, feature in enumerate(self.features):
            if feature.column is not None and feature.column not in schema:
                raise ValueError(f"features[{index}].column {feature.column!r} is not a column of source.schema")
            for out_name, window_ms in feature.output_names():
                if window_ms % tile:
                    raise ValueError(
                        f"features[{index}].windows: {format_duration(window_ms)} is not a multiple "
                        f"of windows.tile {self.windows.tile}"
                    )
                if out_name in seen or out_name in (self.entity.key, self.event_time.field):
                    raise ValueError(f"features[{index}]: output feature {out_name!r} is defined twice")
                seen.add(out_name)
        return self

    @property
    def longest_window_ms(self) -> int:
        return max(w for f in self.features for _, w in f.output_names())
