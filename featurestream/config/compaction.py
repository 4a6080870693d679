"""The offline-store compaction job's configuration (`conf/compaction/<name>.yaml`).

Which feature groups to compact, where their offline store is (DescribeFeatureGroup's
ResolvedOutputS3Uri, or a path), where the compacted output goes, and how it is laid out. Loaded
with the same rules as the other configs: unknown keys refused, `${VAR:-default}` expanded, every
error one `ConfigError(file, field, reason)` line before Spark starts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from featurestream.config.base import Frozen

# The loader's helpers are shared on purpose: one error format for every config file.
from featurestream.config.loader import read_yaml, to_model
from featurestream.config.locations import Location
from featurestream.config.profile import BatchMetricsSpec, LineageSpec, SparkSpec
from featurestream.durations import parse_duration_ms

# SageMaker feature group names: 1-64 alphanumerics, `-` and `_` only between them.
_FG_NAME = re.compile(r"^[a-zA-Z0-9]([_-]*[a-zA-Z0-9]){0,63}$")
_COLUMN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
MIN_TARGET_FILE_BYTES = 1024


def parse_size(text: str | int) -> int:
    """`128MB` → bytes (binary units: 1 MB = 1024² bytes, as Spark and Parquet count them)."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"bad size {text!r}: expected a number and a unit, e.g. 128MB, 512KB, 1GB")
    return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])


def parse_grace_ms(text: str) -> int:
    """Like a duration, but `0s` is allowed (delete superseded files at once)."""
    if re.fullmatch(r"\s*0+\s*(ms|s|m|h|d)?\s*", text):
        return 0
    return parse_duration_ms(text)


class FeatureGroupInput(Frozen):
    """One feature group: by name (DescribeFeatureGroup says the rest) or by path."""

    name: str
    # The group's offline `.../data` prefix, local or s3://; when absent, DescribeFeatureGroup's
    # ResolvedOutputS3Uri is used.
    path: Location | None = None
    record_identifier: str | None = None
    event_time: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _FG_NAME.match(value):
            raise ValueError(f"{value!r} is not a valid feature group name (letters, digits, - and _, 1-64)")
        return value

    @field_validator("record_identifier", "event_time")
    @classmethod
    def _column(cls, value: str | None) -> str | None:
        if value is not None and not _COLUMN.match(value):
            raise ValueError(f"{value!r} is not a valid feature name")
        return value

    @model_validator(mode="after")
    def _path_needs_columns(self) -> FeatureGroupInput:
        if self.path is not None and (self.record_identifier is None or self.event_time is None):
            raise ValueError("a feature group given by path needs record_identifier and event_time")
        if self.path is None and (self.record_identifier is not None or self.event_time is not None):
            raise ValueError("record_identifier and event_time come from DescribeFeatureGroup unless path is given")
        return self


class LockSpec(Frozen):
    # A run whose heartbeat is older than this is considered dead and its lock is taken over.
    stale_after: str = "30m"
    heartbeat: str = "30s"

    _durations = field_validator("stale_after", "heartbeat")(lambda v: (parse_duration_ms(v), v)[1])

    @model_validator(mode="after")
    def _heartbeat_shorter(self) -> LockSpec:
        if parse_duration_ms(self.heartbeat) * 2 > parse_duration_ms(self.stale_after):
            raise ValueError("heartbeat must be at most half of stale_after")
        return self

    @property
    def stale_after_s(self) -> float:
        return parse_duration_ms(self.stale_after) / 1000

    @property
    def heartbeat_s(self) -> float:
        return parse_duration_ms(self.heartbeat) / 1000


class CompactionConfig(Frozen):
    region: str = "us-east-1"
    # Root of the compacted output: one folder per feature group (local path or s3://), each the
    # location of the group's Iceberg table.
    output: Location = Field(min_length=1)
    # The catalog namespace (Glue database) of the compacted tables; a table is named after its
    # feature group, lower case, `-` as `_`.
    namespace: str = Field(default="featurestream_compacted", pattern=r"^[a-z0-9_]{1,255}$")
    # Where an emulator without S3 writes `s3://bucket/key` (its --offline-local-dir): such URIs
    # are read from <offline_local_root>/bucket/key instead.
    offline_local_root: str | None = None
    feature_groups: list[FeatureGroupInput] = Field(min_length=1)
    compression: Literal["zstd", "snappy"] = "zstd"
    target_file_size: str = "128MB"
    partition_by: Literal["day", "hour"] = "day"
    # keep: delete markers stay as rows (is_deleted = true); apply: a marker at T removes the
    # record's rows with event time <= T, the marker included.
    deletes: Literal["keep", "apply"] = "keep"
    # Also write `latest/`: one row per record identifier, its newest row as of the run.
    snapshot: bool = False
    lock: LockSpec = LockSpec()
    # A snapshot superseded longer ago than this is expired (with the files only it used): readers
    # and training sets pinned to it work this long. Also the age an orphan file must reach.
    gc_grace: str = "1h"
    # URI scheme Spark reads S3 with: s3a (Hadoop S3A, anywhere) or s3 (EMRFS on EMR).
    s3_scheme: Literal["s3a", "s3"] = "s3a"
    spark: SparkSpec = SparkSpec()
    # Run metrics for Prometheus (Pushgateway or textfile) and OpenLineage run events, as in a profile.
    metrics: BatchMetricsSpec = Field(default_factory=BatchMetricsSpec)
    lineage: LineageSpec = Field(default_factory=LineageSpec)

    @field_validator("target_file_size")
    @classmethod
    def _size(cls, value: str) -> str:
        if parse_size(value) < MIN_TARGET_FILE_BYTES:
            raise ValueError(f"{value!r} is below the minimum of 1KB")
        return value

    @field_validator("offline_local_root")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        # `${VAR:-}` expands to "" when the variable is unset: no local mirror then.
        return value or None

    @field_validator("gc_grace")
    @classmethod
    def _grace(cls, value: str) -> str:
        parse_grace_ms(value)
        return value

    @field_validator("feature_groups")
    @classmethod
    def _unique(cls, groups: list[FeatureGroupInput]) -> list[FeatureGroupInput]:
        names = [g.name for g in groups]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"feature group {name!r} is listed twice")
        return groups

    @property
    def target_file_bytes(self) -> int:
        return parse_size(self.target_file_size)

    @property
    def gc_grace_s(self) -> float:
        return parse_grace_ms(self.gc_grace) / 1000

    def feature_group(self, name: str) -> FeatureGroupInput | None:
        return next((g for g in self.feature_groups if g.name == name), None)


def load_compaction_config(path: str | Path) -> CompactionConfig:
    file = Path(path)
    return to_model(CompactionConfig, read_yaml(file), file)
