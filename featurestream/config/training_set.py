"""A training set as the user declares it in `conf/training_sets/<name>.yaml`.

The file name is the training set's name. It says where the labelled history comes from (an RDS
table or query over JDBC, or Parquet such as a history export), which compacted feature groups to
join and how (keys, TTL, prefix/rename), the point-in-time rules, and where the result goes.

Secrets never live here: the JDBC password comes from an environment variable or a secret file
whose *name* the file may give; a key, or a URL in any form that carries a password
(featurestream.config.credentials), is refused. Every S3 URI is checked (featurestream.config.locations).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from featurestream.config.base import Frozen
from featurestream.config.credentials import env_var_name, refuse_credentials
from featurestream.config.locations import Location
from featurestream.durations import parse_duration_ms
from featurestream.errors import ConfigError
from featurestream.io import paths

# Column and table-part names we accept (validated again, and quoted, before any SQL is built).
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
_COLUMN_NAME = re.compile(r'^[^\x00-\x1f\x7f"`\\]{1,63}\Z')
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_identifier(value: str) -> str:
    if not _IDENT.match(value):
        raise ValueError(f"{value!r} is not a valid column name (letters, digits, underscore; 1-63)")
    return value


def check_column_name(value: str) -> str:
    """A name a table, a query or a Parquet file may give a label column (`amount.usd`, `merchant
    name`): up to 63 characters, no quotes, backslashes or control characters (what could end a
    quoted name). It is quoted wherever it is used: backticks in Spark, the dialect's quotes in SQL."""
    if not _COLUMN_NAME.match(value):
        raise ValueError(f"{value!r} is not a valid column name (1-63 characters; no quotes, backslashes "
                         "or control characters)")
    return value


def _check_table(value: str) -> str:
    parts = value.split(".")
    if len(parts) > 2 or not all(_IDENT.match(p) for p in parts):
        raise ValueError(f"{value!r} is not a valid table name: `table` or `schema.table`, letters, digits, underscore")
    return value


def _check_duration(value: str | None) -> str | None:
    if value is not None:
        parse_duration_ms(value)
    return value


def _utc(value: datetime | None) -> datetime | None:
    """Naive times in the file mean UTC (the whole project runs in UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class JdbcSpec(Frozen):
    """Where the RDS database is. The password is never here: see `password_env` / `password_file`."""

    url: str = Field(min_length=6)
    user: str | None = None
    # The *name* of an environment variable holding the password (read at run time).
    password_env: str = "FEATURESTREAM_JDBC_PASSWORD"  # noqa: S105 - a variable name, not a secret
    # A file holding the password (e.g. a mounted secret); default: env FEATURESTREAM_JDBC_PASSWORD_FILE.
    password_file: str | None = None
    driver: str | None = None
    fetch_size: int = Field(default=10_000, ge=1, le=1_000_000)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        if not url.startswith("jdbc:"):
            raise ValueError("must start with jdbc: (e.g. jdbc:postgresql://host:5432/db)")
        return refuse_credentials(url, "(use password_env or password_file)")

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        return env_var_name(value)


class PartitioningSpec(Frozen):
    """Parallel JDBC reads. Anything left out is discovered (primary key or time column, MIN/MAX)."""

    column: str | None = None
    num_partitions: int | None = Field(default=None, ge=1, le=10_000)
    # Used to pick num_partitions from the row count when it is not given.
    rows_per_partition: int = Field(default=250_000, ge=1)
    max_partitions: int = Field(default=16, ge=1, le=10_000)
    lower_bound: str | None = None
    upper_bound: str | None = None

    _column = field_validator("column")(lambda v: v if v is None else check_identifier(v))

    @model_validator(mode="after")
    def _bounds_together(self) -> PartitioningSpec:
        if (self.lower_bound is None) != (self.upper_bound is None):
            raise ValueError("lower_bound and upper_bound go together")
        if self.lower_bound is not None and self.column is None:
            raise ValueError("bounds need a column")
        return self


class LabelsSpec(Frozen):
    """The labelled rows: entity key(s), a timestamp, the label(s) and other columns."""

    jdbc: JdbcSpec | None = None
    table: str | None = None
    query: str | None = None
    # Parquet (local or s3a://) instead of JDBC, e.g. the output of --export-history.
    path: Location | None = None
    timestamp_column: str
    label_columns: list[str] = []
    # Only these columns (default: all of the table or query).
    columns: list[str] | None = None
    # Rows with start <= timestamp < end; pushed down to the database.
    start: datetime | None = None
    end: datetime | None = None
    partitioning: PartitioningSpec = PartitioningSpec()

    _table = field_validator("table")(lambda v: v if v is None else _check_table(v))
    _ts = field_validator("timestamp_column")(check_identifier)
    _times = field_validator("start", "end")(_utc)

    @field_validator("label_columns", "columns")
    @classmethod
    def _names(cls, values: list[str] | None) -> list[str] | None:
        for value in values or []:
            check_column_name(value)
        return values

    @model_validator(mode="after")
    def _one_source(self) -> LabelsSpec:
        if self.path is not None:
            if self.jdbc is not None or self.table is not None or self.query is not None:
                raise ValueError("give either path (Parquet) or jdbc with table/query, not both")
        else:
            if self.jdbc is None:
                raise ValueError("give jdbc (with table or query) or path")
            if (self.table is None) == (self.query is None):
                raise ValueError("give exactly one of table and query")
        if self.start and self.end and self.start >= self.end:
            raise ValueError("start must be before end")
        if self.columns is not None:
            missing = [c for c in [self.timestamp_column, *self.label_columns] if c not in self.columns]
            if missing:
                raise ValueError(f"columns must include {missing}")
        return self


DEFAULT_DATE_PARTITION = "event_date"


class FeatureGroupInput(Frozen):
    """One feature group to join: rows with the record identifier, EventTime, features, write_time,
    api_invocation_time and is_deleted. Read from Parquet by `path` (a Glue-format offline store
    or any Parquet folder), or from an Apache Iceberg table: by `table` (`namespace.table` in the
    profile's catalog; a compacted table, or an Iceberg-format offline store) or by `path` to the
    table's folder or metadata file. `snapshot_id` pins an Iceberg table to one snapshot (the
    manifest records the one each build read)."""

    name: str
    path: Location | None = Field(default=None, min_length=1)
    table: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")
    snapshot_id: int | None = None
    # The SageMaker feature group (name or ARN) these rows come from: SageMaker lineage then links
    # the training set to the group's artifact (ARN and definition fingerprint), not only to `path`.
    feature_group: str | None = Field(default=None, min_length=1, max_length=256)
    # label column -> feature-group column (the record identifier, or several columns).
    keys: dict[str, str] = Field(min_length=1)
    event_time_column: str = "event_time"
    features: list[str] | None = None
    prefix: str = ""
    rename: dict[str, str] = {}
    ttl: str | None = None
    # The date partition column of the compacted layout, used to prune partitions; ignored when the
    # data has no such column and the default is kept; null: none.
    date_partition_column: str | None = DEFAULT_DATE_PARTITION
    # Add `<prefix>event_time` (the EventTime of the joined values) to the output.
    include_event_time: bool = True

    _ttl = field_validator("ttl")(_check_duration)
    _cols = field_validator("event_time_column")(check_identifier)
    _part = field_validator("date_partition_column")(lambda v: v if v is None else check_identifier(v))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} is not a valid name (letters, digits, . _ -)")
        return value

    @field_validator("keys", "rename")
    @classmethod
    def _ident_map(cls, mapping: dict[str, str]) -> dict[str, str]:
        for left, right in mapping.items():
            check_identifier(left)
            check_identifier(right)
        return mapping

    @field_validator("features")
    @classmethod
    def _features(cls, values: list[str] | None) -> list[str] | None:
        for value in values or []:
            check_identifier(value)
        if values is not None and len(set(values)) != len(values):
            raise ValueError("a feature is listed twice")
        return values

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$", value):
            raise ValueError(f"{value!r} is not a valid column prefix")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> FeatureGroupInput:
        if (self.path is None) == (self.table is None):
            raise ValueError("give exactly one of path (Parquet, or an Iceberg table's location) and table "
                             "(namespace.table in the profile's catalog)")
        return self

    @property
    def source(self) -> str:
        """What the group is read from, for messages and lineage: the path or `table:<name>`."""
        return self.path if self.path is not None else f"table:{self.table}"

    @property
    def ttl_ms(self) -> int | None:
        return None if self.ttl is None else parse_duration_ms(self.ttl)

    def output_name(self, feature: str) -> str:
        return self.prefix + self.rename.get(feature, feature)


class SkewSpec(Frozen):
    """Hot keys are split into time buckets, each seeded with the state before it (see training/skew)."""

    mode: Literal["auto", "off"] = "auto"
    # A key holding at least this share of a join's rows is hot.
    hot_key_share: float = Field(default=0.01, gt=0, lt=1)
    # ~1% finds a 1%-share key with a few hundred sampled rows, which is plenty.
    sample_fraction: float = Field(default=0.01, gt=0, le=1)
    max_buckets: int = Field(default=32, ge=2, le=1024)


class JoinSpec(Frozen):
    # Feature values strictly before the row's timestamp (default: at or before).
    strictly_before: bool = False
    # Only values already written (write_time <= row time): what the online store could have served.
    availability: bool = False
    skew: SkewSpec = SkewSpec()
    # Sort partitions of the join (default: spark.sql.shuffle.partitions); ~1M rows each sorts fastest.
    partitions: int | None = Field(default=None, ge=1, le=100_000)
    # Feature rows are first reduced where they are read, to one per key and interval between two
    # label times (see training/pit.py). The labels' keys and times are broadcast for that and each
    # task thread holds ~24 bytes per label row plus a 64 MB arena, so only up to this many label
    # rows. 0 turns the reduction off.
    reduce_max_labels: int = Field(default=4_000_000, ge=0)


class SplitSpec(Frozen):
    """Time-based split: rows at or after the cut go to validation."""

    validation_start: datetime | None = None
    validation_fraction: float | None = Field(default=None, gt=0, lt=1)

    _start = field_validator("validation_start")(_utc)

    @model_validator(mode="after")
    def _exactly_one(self) -> SplitSpec:
        if (self.validation_start is None) == (self.validation_fraction is None):
            raise ValueError("give exactly one of validation_start and validation_fraction")
        return self


class OutputSpec(Frozen):
    path: Location = Field(min_length=1)
    format: Literal["parquet", "csv"] = "parquet"
    mode: Literal["overwrite", "error"] = "overwrite"
    split: SplitSpec | None = None
    # Number of output files per split (default: whatever the join produced).
    files: int | None = Field(default=None, ge=1, le=100_000)


class ExportHistorySpec(Frozen):
    """`--export-history`: copy the RDS rows changed since the last run to Parquet."""

    path: Location = Field(min_length=1)
    updated_at_column: str
    # Where the watermark is remembered (default: <path>/_export_state.json).
    state_path: Location | None = None
    # Leave the newest rows for the next run, so transactions still in flight are not skipped.
    safety_lag: str | None = None

    _col = field_validator("updated_at_column")(check_identifier)
    _lag = field_validator("safety_lag")(_check_duration)

    @property
    def safety_lag_ms(self) -> int:
        return 0 if self.safety_lag is None else parse_duration_ms(self.safety_lag)

    def resolved_state_path(self) -> str:
        return self.state_path or paths.join(self.path, "_export_state.json")


class TrainingSetSpec(Frozen):
    name: str
    description: str = ""
    labels: LabelsSpec
    feature_groups: list[FeatureGroupInput] = []
    join: JoinSpec = JoinSpec()
    output: OutputSpec | None = None
    export_history: ExportHistorySpec | None = None

    @model_validator(mode="after")
    def _cross_checks(self) -> TrainingSetSpec:
        names = [g.name for g in self.feature_groups]
        if len(set(names)) != len(names):
            raise ValueError("feature_groups: a name is used twice")
        for index, group in enumerate(self.feature_groups):
            if self.labels.timestamp_column in group.keys:
                raise ValueError(f"feature_groups[{index}].keys: the timestamp column cannot be a key")
            if self.labels.columns is not None:
                missing = [k for k in group.keys if k not in self.labels.columns]
                if missing:
                    raise ValueError(f"feature_groups[{index}].keys: {missing} not in labels.columns")
        return self

    def require_output(self, source: str) -> OutputSpec:
        if self.output is None:
            raise ConfigError(source, "output", "missing (needed to build a training set)")
        if not self.feature_groups:
            raise ConfigError(source, "feature_groups", "empty (needed to build a training set)")
        return self.output

    def require_export(self, source: str) -> ExportHistorySpec:
        if self.export_history is None:
            raise ConfigError(source, "export_history", "missing (needed by --export-history)")
        if self.labels.jdbc is None or self.labels.table is None:
            raise ConfigError(source, "labels.table", "--export-history reads a JDBC table")
        return self.export_history


def load_training_set(path: str | Path) -> TrainingSetSpec:
    """Load `conf/training_sets/<name>.yaml`; the file name is the training set's name."""
    from featurestream.config.loader import read_yaml, to_model

    file = Path(path)
    data = read_yaml(file)
    problems: list[ConfigError] = []
    if "name" in data:
        problems.append(ConfigError(file, "name", "unknown key (the file name is the training set's name)"))
    _refuse_inline_secrets(data, file, "", problems)
    data["name"] = file.stem
    return to_model(TrainingSetSpec, data, file, problems, hidden=("name",))


_SECRET_KEY = re.compile(r"(?i)^(password|passwd|pwd|secret|token)$")


def _refuse_inline_secrets(value: object, file: Path, field: str, problems: list[ConfigError]) -> None:
    """A secret-looking key anywhere in the file is refused with a pointer to the right place."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{field}.{key}" if field else str(key)
            if isinstance(key, str) and _SECRET_KEY.match(key):
                problems.append(ConfigError(file, where,
                                            "secrets never go in the config: use password_env or password_file"))
                continue
            _refuse_inline_secrets(item, file, where, problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_inline_secrets(item, file, f"{field}[{index}]", problems)
