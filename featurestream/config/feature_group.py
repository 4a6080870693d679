"""A feature group as the user declares it in `conf/feature_groups/<name>.yaml`.

The file name is the group's name. Everything a streaming job needs to know about one group is
here: the entity key, the event-time field, the source and its schema, the transform steps, the
windows and the features. Cross-field rules (columns exist after the transforms, windows are
multiples of the tile, aggregations fit their column types) are checked here so a bad file fails
before any Spark query starts. SQL expressions are parsed by Spark itself in
`featurestream.engine.transforms.check_with_spark`, also before any query starts.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from featurestream.config.base import Frozen
from featurestream.durations import format_duration, parse_duration_ms

# Spark SQL type names we accept in an inline schema or a cast step.
_SIMPLE_TYPES = {
    "string", "int", "integer", "bigint", "long", "smallint", "tinyint", "double", "float",
    "boolean", "timestamp", "date", "binary",
}
_INTEGRAL = {"int", "integer", "bigint", "long", "smallint", "tinyint"}
_FRACTIONAL = {"double", "float"}
_DECIMAL = re.compile(r"^decimal\(\s*\d+\s*,\s*\d+\s*\)$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# SageMaker: feature group names are 1-64 chars of [a-zA-Z0-9-], starting alphanumeric.
_FG_NAME = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]){0,63}$")
# Avro primitive (or logical) type → Spark type, for schemas given in Avro.
_AVRO_TYPES = {
    "string": "string", "int": "int", "long": "bigint", "float": "float", "double": "double",
    "boolean": "boolean", "bytes": "binary", "enum": "string",
    "timestamp-millis": "timestamp", "timestamp-micros": "timestamp", "date": "date",
}



class DurationMark:
    """Marks a duration field in the model, so generic readers (the definition fingerprint,
    `featurestream.config.fingerprint`) can normalise it whatever field it is."""

    def __repr__(self) -> str:
        return "DURATION"


DURATION = DurationMark()
Duration = Annotated[str, Field(min_length=2), DURATION]

# SageMaker Feature Store quotas: a record (feature names and values) is at most 350 KB and its
# record identifier at most 2 KB (counted here in UTF-8 bytes, as the emulator does).
ONLINE_RECORD_MAX_BYTES = 350 * 1024
RECORD_IDENTIFIER_MAX_BYTES = 2 * 1024
# Room kept in a record for each feature that is not a string (its name and a number).
_FEATURE_OVERHEAD_BYTES = 128


def _check_duration(value: str) -> str:
    parse_duration_ms(value)
    return value


def _check_identifier(value: str) -> str:
    if not IDENTIFIER.match(value):
        raise ValueError(f"{value!r} is not a valid column name (letters, digits, underscore)")
    return value


def _check_type(column: str, type_name: str) -> str:
    normalised = type_name.strip().lower()
    if normalised not in _SIMPLE_TYPES and not _DECIMAL.match(normalised):
        raise ValueError(f"column {column!r}: unknown type {type_name!r}")
    return normalised


def is_numeric(type_name: str) -> bool:
    return type_name in _INTEGRAL or type_name in _FRACTIONAL or bool(_DECIMAL.match(type_name))


def is_integral(type_name: str) -> bool:
    return type_name in _INTEGRAL


class EntitySpec(Frozen):
    key: str
    type: Literal["string", "long", "int"] = "string"

    _key = field_validator("key")(_check_identifier)


class EventTimeSpec(Frozen):
    field: str
    # How the raw value is written: an ISO-8601 string / timestamp column, or epoch numbers.
    format: Literal["timestamp", "epoch_seconds", "epoch_millis"] = "timestamp"
    # Events dated more than this after their source record's timestamp (Kafka's record time,
    # Kinesis' arrival time; the batch's processing time when absent) go to the DLQ: one clock far
    # ahead would drag the watermark along and make every later event late. null: no bound.
    max_future: Duration | None = "1d"

    _field = field_validator("field")(_check_identifier)
    _max_future = field_validator("max_future")(lambda v: v if v is None else _check_duration(v))


def _avro_field_type(name: str, avro_type: Any) -> str:
    """One Avro field type → a Spark type name; nullable unions `["null", T]` become T."""
    if isinstance(avro_type, list):
        others = [t for t in avro_type if t != "null"]
        if len(others) != 1:
            raise ValueError(f"avro field {name!r}: only unions of null and one type are supported")
        return _avro_field_type(name, others[0])
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        if logical in _AVRO_TYPES:
            return _AVRO_TYPES[logical]
        return _avro_field_type(name, avro_type.get("type"))
    if isinstance(avro_type, str) and avro_type in _AVRO_TYPES:
        return _AVRO_TYPES[avro_type]
    raise ValueError(f"avro field {name!r}: unsupported type {avro_type!r}")


def avro_columns(schema: dict[str, Any]) -> dict[str, str]:
    if schema.get("type") != "record" or not isinstance(schema.get("fields"), list):
        raise ValueError("the Avro schema must be a record with fields")
    columns: dict[str, str] = {}
    for entry in schema["fields"]:
        if not isinstance(entry, dict) or "name" not in entry or "type" not in entry:
            raise ValueError("every Avro field needs a name and a type")
        columns[_check_identifier(str(entry["name"]))] = _avro_field_type(str(entry["name"]), entry["type"])
    return columns


def _load_avro_schema(inline: Any, file: str | None) -> dict[str, Any]:
    if (inline is None) == (file is None):
        raise ValueError("an avro source needs exactly one of avro_schema or avro_schema_file")
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise ValueError(f"avro_schema_file {file!r} not found")
        inline = path.read_text(encoding="utf-8")
    if isinstance(inline, str):
        try:
            inline = json.loads(inline)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the Avro schema is not valid JSON: {exc.msg}") from None
    if not isinstance(inline, dict):
        raise ValueError("the Avro schema must be a JSON object")
    return inline


class PayloadSpec(Frozen):
    """How each message's bytes are decoded; shared by every transport (Kafka, Kinesis)."""

    format: Literal["json", "avro"] = "json"
    # Column → Spark type. Given inline for JSON; derived from the Avro schema for Avro.
    schema_: dict[str, str] = Field(alias="schema", min_length=1)
    # Avro: the writer schema inline (mapping or JSON text) or in a file (path from the working dir).
    avro_schema: dict[str, Any] | None = None
    avro_schema_file: str | None = None
    # `confluent`: values start with the 5-byte schema-registry header (magic byte + schema id).
    avro_framing: Literal["plain", "confluent"] = "plain"
    # String column → the most UTF-8 bytes one value may have; a longer value sends its event to
    # the DLQ (`value too large`). Columns not listed get a share of the online record's 350 KB
    # (`FeatureGroupSpec.string_limits`): one oversized value kept by `last` would make every
    # later record of its entity too big for the online store.
    max_string_bytes: dict[str, Annotated[int, Field(ge=1, le=ONLINE_RECORD_MAX_BYTES)]] = {}

    @model_validator(mode="before")
    @classmethod
    def _avro_schema_gives_columns(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("format") != "avro":
            if isinstance(data, dict) and (data.get("avro_schema") is not None
                                           or data.get("avro_schema_file") is not None):
                raise ValueError("avro_schema / avro_schema_file need format: avro")
            return data
        if "schema" in data:
            raise ValueError("an avro source takes its columns from avro_schema, not schema")
        schema = _load_avro_schema(data.get("avro_schema"), data.get("avro_schema_file"))
        return {**data, "avro_schema": schema, "schema": avro_columns(schema)}

    @field_validator("schema_")
    @classmethod
    def _types_known(cls, schema: dict[str, str]) -> dict[str, str]:
        return {_check_identifier(column): _check_type(column, t) for column, t in schema.items()}

    @model_validator(mode="after")
    def _limits_on_string_columns(self) -> PayloadSpec:
        for column in self.max_string_bytes:
            if self.schema_.get(column) != "string":
                raise ValueError(f"max_string_bytes: {column!r} is not a string column of the schema")
        return self

    def ddl(self) -> str:
        """The schema as a Spark DDL string, e.g. `card_id string, amount double`."""
        return ", ".join(f"`{name}` {type_name}" for name, type_name in self.schema_.items())

    def avro_schema_json(self) -> str:
        return json.dumps(self.avro_schema)


class KafkaSourceSpec(PayloadSpec):
    type: Literal["kafka"]
    topic: str = Field(min_length=1)
    starting_offsets: Literal["earliest", "latest"] = "earliest"


class KinesisSourceSpec(PayloadSpec):
    """A Kinesis stream read by our DataSource V2 source (`builtin`) or the AWS Labs connector (`aws`)."""

    type: Literal["kinesis"]
    stream: str = Field(min_length=1, description="stream name or ARN")
    connector: Literal["builtin", "aws"] = "builtin"
    starting_position: Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"] = "TRIM_HORIZON"
    starting_timestamp: datetime | None = None
    max_records_per_shard: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _timestamp_with_at_timestamp(self) -> KinesisSourceSpec:
        if (self.starting_position == "AT_TIMESTAMP") != (self.starting_timestamp is not None):
            raise ValueError("starting_timestamp is required with AT_TIMESTAMP, and only with it")
        return self


SourceSpec = Annotated[KafkaSourceSpec | KinesisSourceSpec, Field(discriminator="type")]


def with_transport(spec: FeatureGroupSpec, transport: Literal["kafka", "kinesis"]) -> FeatureGroupSpec:
    """The same events over another transport: the topic becomes the stream of the same name.

    `--source kinesis` on a group declared on Kafka (and the reverse) uses this, so one feature
    group definition runs from either.
    """
    source = spec.source
    if source.type == transport:
        return spec
    payload = source.model_dump(by_alias=True, exclude_none=True, include=set(PayloadSpec.model_fields))
    if payload.get("format") == "avro":
        payload.pop("schema", None)  # derived again from avro_schema
    name = source.topic if isinstance(source, KafkaSourceSpec) else source.stream
    switched: KafkaSourceSpec | KinesisSourceSpec
    if transport == "kinesis":
        switched = KinesisSourceSpec.model_validate({**payload, "type": "kinesis", "stream": name})
    else:
        switched = KafkaSourceSpec.model_validate({**payload, "type": "kafka", "topic": name})
    return spec.model_copy(update={"source": switched})


# Transform steps: each is a one-key mapping in the YAML list, e.g. `- filter: "amount > 0"`.
class FilterStep(Frozen):
    filter: str = Field(min_length=1)


class CastStep(Frozen):
    cast: dict[str, str] = Field(min_length=1)


class DeriveStep(Frozen):
    derive: dict[str, str] = Field(min_length=1)


class FillNullsStep(Frozen):
    fill_nulls: dict[str, str | int | float | bool] = Field(min_length=1)


class RenameStep(Frozen):
    rename: dict[str, str] = Field(min_length=1)


class DropStep(Frozen):
    drop: list[str] = Field(min_length=1)


class DedupeSpec(Frozen):
    key: str
    within: Duration

    _within = field_validator("within")(_check_duration)

    @property
    def within_ms(self) -> int:
        return parse_duration_ms(self.within)


class DedupeStep(Frozen):
    dedupe: DedupeSpec


_STEP_KINDS = ("filter", "cast", "derive", "fill_nulls", "rename", "drop", "dedupe")


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        kind = next(iter(value))
        return kind if kind in _STEP_KINDS else None
    if isinstance(value, Frozen):
        return next(iter(type(value).model_fields))
    return None


TransformStep = Annotated[
    Annotated[FilterStep, Tag("filter")] | Annotated[CastStep, Tag("cast")]
    | Annotated[DeriveStep, Tag("derive")] | Annotated[FillNullsStep, Tag("fill_nulls")]
    | Annotated[RenameStep, Tag("rename")] | Annotated[DropStep, Tag("drop")]
    | Annotated[DedupeStep, Tag("dedupe")],
    Discriminator(_step_kind, custom_error_type="transform_step",
                  custom_error_message="a step is a mapping with one key: " + ", ".join(_STEP_KINDS)),
]


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
    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    STDDEV_POP = "stddev_pop"
    STDDEV_SAMP = "stddev_samp"
    APPROX_COUNT_DISTINCT = "approx_count_distinct"
    LAST = "last"
    APPROX_PERCENTILE = "approx_percentile"
    TOP_K = "top_k"

    @property
    def needs_column(self) -> bool:
        return self is not Aggregation.COUNT

    @property
    def numeric(self) -> bool:
        """Reads its column as a number (the engine's numeric slots)."""
        return self in (Aggregation.SUM, Aggregation.MEAN, Aggregation.MIN, Aggregation.MAX,
                        Aggregation.STDDEV_POP, Aggregation.STDDEV_SAMP)

    @property
    def needs_number(self) -> bool:
        """Its column must be numeric."""
        return self.numeric or self is Aggregation.APPROX_PERCENTILE


# Sketch parameters (README "Feature semantics" gives their error bounds and state sizes), and which
# aggregation each belongs to.
DEFAULT_EXACT_UP_TO = 256      # approx_count_distinct: exact hashes per tile (8 bytes each) before the HLL
DEFAULT_LG_K = 12              # approx_count_distinct: HLL lg K (2^12 registers, ~2 KB as HLL_4)
DEFAULT_SKETCH_K = 200         # approx_percentile: KLL k
DEFAULT_TOP_K_SKETCH_SIZE = 64  # top_k: frequent-items map size (a power of 2)
# Every sketch: at most this many sketches per window. A window of n tiles keeps its sketches in
# buckets of ceil(n / buckets) tiles (the tiles themselves when n <= buckets), so its state does
# not grow with the number of tiles; the window's oldest edge moves by whole buckets.
DEFAULT_SKETCH_BUCKETS = 24
SKETCHES = frozenset({"approx_count_distinct", "approx_percentile", "top_k"})
_PARAMETERS = {
    "percentiles": Aggregation.APPROX_PERCENTILE, "sketch_k": Aggregation.APPROX_PERCENTILE,
    "exact_up_to": Aggregation.APPROX_COUNT_DISTINCT, "lg_k": Aggregation.APPROX_COUNT_DISTINCT,
    "k": Aggregation.TOP_K, "sketch_size": Aggregation.TOP_K,
}


def percentile_label(q: float) -> str:
    """0.5 → `p50`, 0.95 → `p95`, 0.999 → `p99_9`, 1.0 → `p100`: the percent, `.` spelt `_`."""
    percent = format((Decimal(str(q)) * 100).normalize(), "f")
    return "p" + percent.replace(".", "_")


class FeatureSpec(Frozen):
    name: str
    agg: Aggregation
    column: str | None = None
    # Empty only for `last`: the latest value over the entity's whole retained history.
    windows: list[Duration] = []
    # approx_percentile: the ranks to report, each in [0, 1] (one feature each), and the KLL k.
    percentiles: list[float] | None = None
    sketch_k: int | None = Field(default=None, ge=8, le=65_535)
    # approx_count_distinct: distinct values counted exactly per tile before the HLL sketch, its lg K.
    exact_up_to: int | None = Field(default=None, ge=0, le=1_000_000)
    lg_k: int | None = Field(default=None, ge=4, le=21)
    # top_k: how many of the most frequent values to report, and the frequent-items sketch's size.
    k: int | None = Field(default=None, ge=1, le=100)
    sketch_size: int | None = Field(default=None, ge=8, le=1 << 20)
    # Every sketch: at most this many sketches (buckets) per window (README "State per entity").
    buckets: int | None = Field(default=None, ge=1, le=100_000)

    _name = field_validator("name")(_check_identifier)

    @field_validator("percentiles")
    @classmethod
    def _percentiles(cls, values: list[float] | None) -> list[float] | None:
        if values is None:
            return None
        if not values:
            raise ValueError("list at least one percentile")
        for q in values:
            if not 0.0 <= q <= 1.0:
                raise ValueError(f"{q} is not in [0, 1] (0.95 is the 95th percentile)")
        if len({percentile_label(q) for q in values}) != len(values):
            raise ValueError("the same percentile is listed twice")
        return values

    @field_validator("sketch_size")
    @classmethod
    def _power_of_two(cls, value: int | None) -> int | None:
        if value is not None and value & (value - 1):
            raise ValueError(f"{value} is not a power of 2")
        return value

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
        if not self.windows and self.agg is not Aggregation.LAST:
            raise ValueError(f"agg {self.agg.value!r} needs windows (only last may go without)")
        for parameter, agg in _PARAMETERS.items():
            if getattr(self, parameter) is not None and self.agg is not agg:
                raise ValueError(f"{parameter} belongs to {agg.value}, not to {self.agg.value}")
        if self.buckets is not None and self.agg.value not in SKETCHES:
            raise ValueError(f"buckets belongs to the sketches ({', '.join(sorted(SKETCHES))}), "
                             f"not to {self.agg.value}")
        if self.agg is Aggregation.APPROX_PERCENTILE and self.percentiles is None:
            raise ValueError("approx_percentile needs percentiles, e.g. [0.5, 0.95, 0.99]")
        if self.agg is Aggregation.TOP_K and self.k is None:
            raise ValueError("top_k needs k, how many of the most frequent values to report")
        return self

    @property
    def sketch_parameters(self) -> dict[str, int]:
        """The sketch settings in force (defaults filled in); empty for exact aggregations."""
        if self.agg is Aggregation.APPROX_PERCENTILE:
            return {"k": self.sketch_k or DEFAULT_SKETCH_K}
        if self.agg is Aggregation.APPROX_COUNT_DISTINCT:
            return {"exact_up_to": DEFAULT_EXACT_UP_TO if self.exact_up_to is None else self.exact_up_to,
                    "lg_k": self.lg_k or DEFAULT_LG_K}
        if self.agg is Aggregation.TOP_K:
            return {"sketch_size": self.sketch_size or DEFAULT_TOP_K_SKETCH_SIZE}
        return {}

    def grain(self, window_tiles: int) -> int:
        """Tiles per sketch bucket for a window of `window_tiles` tiles (1 for exact aggregations)."""
        if self.agg.value not in SKETCHES:
            return 1
        return -(-window_tiles // (self.buckets or DEFAULT_SKETCH_BUCKETS))

    def outputs(self) -> list[tuple[str, int, dict[str, Any]]]:
        """(feature name in the store, window in ms, what the column holds) for every output column.

        One per window, named `<name>_<window>`, except: approx_percentile gives one per percentile,
        `<name>_p95_<window>`; top_k gives, per rank r in 1..k, the value `<name>_top<r>_<window>`
        and its share of the window's values `<name>_top<r>_share_<window>`.
        """
        if not self.windows:
            return [(self.name, 0, {})]
        result: list[tuple[str, int, dict[str, Any]]] = []
        for window in self.windows:
            window_ms = parse_duration_ms(window)
            suffix = format_duration(window_ms)
            if self.agg is Aggregation.APPROX_PERCENTILE:
                result += [(f"{self.name}_{percentile_label(q)}_{suffix}", window_ms, {"percentile": q})
                           for q in self.percentiles or ()]
            elif self.agg is Aggregation.TOP_K:
                for rank in range(1, (self.k or 0) + 1):
                    result.append((f"{self.name}_top{rank}_{suffix}", window_ms, {"rank": rank}))
                    result.append((f"{self.name}_top{rank}_share_{suffix}", window_ms, {"rank": rank, "share": True}))
            else:
                result.append((f"{self.name}_{suffix}", window_ms, {}))
        return result

    def output_names(self) -> list[tuple[str, int]]:
        """(feature name in the store, window in ms; 0 = whole history) for every output column."""
        return [(name, window_ms) for name, window_ms, _ in self.outputs()]


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

    @property
    def ttl_ms(self) -> int:
        return 0 if self.ttl is None else parse_duration_ms(self.ttl)


def _columns_after(steps: list[Any], columns: dict[str, str | None], protected: set[str]) -> dict[str, str | None]:
    """Follow the transform steps over the column → type map (None = derived, type known to Spark only)."""
    columns = dict(columns)
    for index, step in enumerate(steps):
        where = f"transforms[{index}]"

        def need(column: str, where: str = where) -> None:
            if column not in columns:
                raise ValueError(f"{where}: column {column!r} does not exist at this step")

        def free(column: str, where: str = where) -> None:
            if column in protected:
                raise ValueError(f"{where}: {column!r} is the entity key or event time and cannot change")

        if isinstance(step, CastStep):
            for column, type_name in step.cast.items():
                need(column)
                free(column)
                try:
                    columns[column] = _check_type(column, type_name)
                except ValueError as exc:
                    raise ValueError(f"{where}: cast {exc}") from None
        elif isinstance(step, DeriveStep):
            for column, expression in step.derive.items():
                _check_identifier(column)
                free(column)
                if not expression.strip():
                    raise ValueError(f"{where}: derive {column!r} has an empty expression")
                columns[column] = None
        elif isinstance(step, FillNullsStep):
            for column in step.fill_nulls:
                need(column)
        elif isinstance(step, RenameStep):
            for old, new in step.rename.items():
                need(old)
                free(old)
                _check_identifier(new)
                if new in columns and new != old:
                    raise ValueError(f"{where}: rename {old!r} → {new!r}: {new!r} already exists")
                columns[new] = columns.pop(old)
        elif isinstance(step, DropStep):
            for column in step.drop:
                need(column)
                free(column)
                del columns[column]
        elif isinstance(step, DedupeStep):
            need(step.dedupe.key)
            if index != len(steps) - 1:
                raise ValueError(f"{where}: dedupe must be the last step (it runs in the engine's state)")
    return columns


class FeatureGroupSpec(Frozen):
    name: str
    description: str = ""
    entity: EntitySpec
    event_time: EventTimeSpec
    source: SourceSpec
    transforms: list[TransformStep] = []
    windows: WindowsSpec = WindowsSpec()
    features: list[FeatureSpec] = Field(min_length=1)
    online_store: OnlineStoreSpec
    # Keep every valid event of the source, before transforms, in the raw event archive (an Iceberg
    # table per source, shared by the groups reading it; the profile's catalog and `archive:`).
    archive: bool = False

    @model_validator(mode="after")
    def _cross_checks(self) -> FeatureGroupSpec:
        schema = self.source.schema_
        if self.entity.key not in schema:
            raise ValueError(f"entity.key {self.entity.key!r} is not a column of source.schema")
        if self.event_time.field not in schema:
            raise ValueError(f"event_time.field {self.event_time.field!r} is not a column of source.schema")
        key_limit = self.source.max_string_bytes.get(self.entity.key)
        if key_limit is not None and key_limit > RECORD_IDENTIFIER_MAX_BYTES:
            raise ValueError(f"source.max_string_bytes.{self.entity.key}: {key_limit} is more than the "
                             f"{RECORD_IDENTIFIER_MAX_BYTES} bytes a record identifier may have")
        columns = _columns_after(list(self.transforms), dict(schema.items()), {self.entity.key, self.event_time.field})
        tile = self.windows.tile_ms
        seen: set[str] = set()
        for index, feature in enumerate(self.features):
            if feature.column is not None:
                if feature.column not in columns:
                    raise ValueError(f"features[{index}].column {feature.column!r} is not a column of source.schema "
                                     "(after the transforms)")
                self._check_column_type(index, feature, columns[feature.column])
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

    @staticmethod
    def _check_column_type(index: int, feature: FeatureSpec, type_name: str | None) -> None:
        where = f"features[{index}].column {feature.column!r}"
        if feature.agg.needs_number and type_name is not None and not is_numeric(type_name):
            raise ValueError(f"{where} is {type_name}, not a number: {feature.agg.value} needs a numeric "
                             "column (add a cast step)")
        if feature.agg is Aggregation.LAST:
            if type_name is None:
                raise ValueError(f"{where} is derived: add a cast step so last has a known type")
            if type_name in ("binary", "date"):
                raise ValueError(f"{where} is {type_name}: last supports strings, numbers, booleans, timestamps")
        if feature.agg is Aggregation.TOP_K and type_name == "binary":
            raise ValueError(f"{where} is binary: top_k reports values as strings")

    def string_limits(self) -> dict[str, int]:
        """Every string column of the source → the most UTF-8 bytes a value may have.

        `source.max_string_bytes` where given; otherwise a share of the online record
        (`_string_share`). The entity key is also held to the record identifier's 2 KB.
        """
        share = self._string_share()
        limits = {}
        for column, type_name in self.source.schema_.items():
            if type_name != "string" or column == self.event_time.field:
                continue  # the event time is parsed into a timestamp
            limit = self.source.max_string_bytes.get(column, share)
            if column == self.entity.key:
                limit = min(limit, RECORD_IDENTIFIER_MAX_BYTES)
            limits[column] = limit
        return limits

    def derived_string_limits(self) -> dict[str, int]:
        """Columns a `derive` or `cast` step makes that a string feature keeps (`last`, top_k
        values) → the most UTF-8 bytes a value may have: the same share as a source column.

        Their values exist only after the transforms, so the parser cannot hold them to a limit;
        `engine.transforms` does (a column that turns out not to be a string is not checked).
        """
        made: set[str] = set()
        for step in self.transforms:
            if isinstance(step, DeriveStep):
                made |= set(step.derive)
            elif isinstance(step, CastStep):
                made |= set(step.cast)
            elif isinstance(step, RenameStep):
                made = {step.rename.get(column, column) for column in made}
            elif isinstance(step, DropStep):
                made -= set(step.drop)
        kept = {feature.column for feature in self.features
                if feature.column in made and feature.agg in (Aggregation.LAST, Aggregation.TOP_K)}
        share = self._string_share()
        return {column: share for column in sorted(c for c in kept if c is not None)}

    def _string_share(self) -> int:
        """A string feature's share of the online record: 350 KB, less the record identifier's
        2 KB and 128 bytes per other feature, split equally among the string features the record
        carries (`last` of a string column and each top_k value, not its share; a column derived
        by transforms, whose type only Spark knows, counts as a string); one share if none."""
        columns = self.columns_after_transforms()
        outputs = [(feature, part) for feature in self.features for _, _, part in feature.outputs()]
        strings = sum(1 for feature, part in outputs
                      if feature.column is not None and columns.get(feature.column, "") in ("string", None)
                      and (feature.agg is Aggregation.LAST
                           or (feature.agg is Aggregation.TOP_K and not part.get("share"))))
        budget = (ONLINE_RECORD_MAX_BYTES - RECORD_IDENTIFIER_MAX_BYTES
                  - _FEATURE_OVERHEAD_BYTES * (len(outputs) - strings + 1))
        return budget // max(1, strings)

    def columns_after_transforms(self) -> dict[str, str | None]:
        return _columns_after(list(self.transforms), dict(self.source.schema_.items()),
                              {self.entity.key, self.event_time.field})

    @property
    def dedupe(self) -> DedupeSpec | None:
        last = self.transforms[-1] if self.transforms else None
        return last.dedupe if isinstance(last, DedupeStep) else None
