"""SageMaker's Glue-format offline store: where its files live and what their paths mean.

AWS (and the emulator) write every feature group's offline rows to

    <S3Uri>/<account>/sagemaker/<region>/offline-store/<name>-<epoch>/data/
        year=YYYY/month=MM/day=DD/hour=HH/<latest event time>_<random>.parquet

partitioned by the event time of the rows (UTC); the `.../data` prefix is DescribeFeatureGroup's
ResolvedOutputS3Uri. Files are immutable once written. This module builds and parses those paths
and lists files on the local file system (the emulator's `--offline-local-dir`) or on S3.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from featurestream.io import paths
from featurestream.io.s3_uri import S3UriError, parse_s3_uri, scheme_of

_HOUR_DIR = re.compile(r"year=(\d{4})/month=(\d{2})/day=(\d{2})/hour=(\d{2})$")


class OfflineStoreError(ValueError):
    """A path or URI does not have the shape the offline store uses."""


@dataclass(frozen=True, order=True)
class StoreUri:
    """A location on S3 (`s3://bucket/key`) or on the local file system (an absolute path).

    `s3a://` is accepted as input and normalised to `s3://`; Spark gets `s3a://` back from
    `spark_path` because Hadoop's S3A connector is what reads it outside EMR. An S3 URI must
    pass featurestream.io.s3_uri (S3's bucket rules, no empty, `.` or `..` key segment), so a
    location never leads out of its bucket, nor out of the folder that mirrors it.
    """

    scheme: str  # "s3" or "file"
    bucket: str  # "" for local paths
    key: str  # S3 key without leading/trailing "/", or an absolute local path

    @classmethod
    def parse(cls, text: str | os.PathLike[str]) -> StoreUri:
        raw = os.fspath(text).strip()
        if scheme_of(raw) in ("s3", "s3a"):
            try:
                location = parse_s3_uri(raw, schemes=("s3", "s3a"))
            except S3UriError as exc:
                raise OfflineStoreError(f"not a valid S3 URI: {exc}") from None
            return cls("s3", location.bucket, location.key)
        if raw.startswith("file:"):
            raw = re.sub(r"^file:(//)?", "", raw)
        if not raw or "://" in raw:
            raise OfflineStoreError(f"{raw!r}: expected s3://bucket/prefix or a local path")
        return cls("file", "", str(Path(raw).expanduser().resolve()))

    @property
    def is_s3(self) -> bool:
        return self.scheme == "s3"

    @property
    def path(self) -> Path:
        if self.is_s3:
            raise OfflineStoreError(f"{self} is not a local path")
        return Path(self.key)

    def join(self, *parts: str) -> StoreUri:
        """This location with `parts` below it (`featurestream.io.paths.join`: no `..` escapes)."""
        if not self.is_s3:
            return StoreUri("file", "", paths.join(self.key, *parts))
        bucket = f"s3://{self.bucket}"
        return StoreUri("s3", self.bucket, paths.join(f"{bucket}/{self.key}", *parts)[len(bucket):].strip("/"))

    def relative_to(self, root: StoreUri) -> str:
        """The part of this location under `root`, with `/` separators."""
        if (self.scheme, self.bucket) != (root.scheme, root.bucket):
            raise OfflineStoreError(f"{self} is not under {root}")
        prefix = root.key.rstrip("/")
        if self.key == prefix:
            return ""
        if prefix and not self.key.startswith(prefix + "/"):
            raise OfflineStoreError(f"{self} is not under {root}")
        return self.key[len(prefix) + 1:] if prefix else self.key.lstrip("/")

    def spark_path(self, s3_scheme: str = "s3a") -> str:
        if self.is_s3:
            return f"{s3_scheme}://{self.bucket}/{self.key}"
        return f"file://{self.key}"

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.is_s3 else self.key


@dataclass(frozen=True)
class StoredFile:
    uri: StoreUri
    size: int
    modified: float  # Unix seconds


@dataclass(frozen=True)
class SourceFile:
    """One offline-store Parquet file and the event-time hour its partition stands for."""

    uri: StoreUri
    size: int
    hour: datetime  # UTC, on the hour


def parse_hour_partition(relative_dir: str) -> datetime:
    match = _HOUR_DIR.search(relative_dir.strip("/"))
    if match is None:
        raise OfflineStoreError(f"{relative_dir!r} is not a year=/month=/day=/hour= partition")
    year, month, day, hour = (int(g) for g in match.groups())
    try:
        return datetime(year, month, day, hour, tzinfo=UTC)
    except ValueError as exc:
        raise OfflineStoreError(f"{relative_dir!r}: {exc}") from exc


def _hidden(relative: str) -> bool:
    # Spark, Hive and Athena skip names starting with `_` or `.` (temporary and marker files).
    return any(part.startswith(("_", ".")) for part in relative.split("/"))


def list_files(root: StoreUri, *, client: Any = None, prefixes: Iterable[str] = ("",)) -> Iterator[StoredFile]:
    """Every file under `root` (recursively), optionally only under the given sub-prefixes."""
    for prefix in prefixes:
        start = root.join(prefix) if prefix else root
        if start.is_s3:
            yield from _list_s3(start, client or s3_client())
        else:
            yield from _list_local(start.path)


def _list_local(start: Path) -> Iterator[StoredFile]:
    if start.is_file():
        stat = start.stat()
        yield StoredFile(StoreUri("file", "", str(start)), stat.st_size, stat.st_mtime)
        return
    for directory, _, names in os.walk(start):
        for name in names:
            full = os.path.join(directory, name)
            try:
                stat = os.stat(full)
            except FileNotFoundError:
                continue  # removed while we listed (a temporary file)
            yield StoredFile(StoreUri("file", "", full), stat.st_size, stat.st_mtime)


def _list_s3(start: StoreUri, client: Any) -> Iterator[StoredFile]:
    prefix = f"{start.key}/" if start.key else ""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=start.bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith("/"):
                continue  # "directory" marker objects
            yield StoredFile(StoreUri("s3", start.bucket, key), int(item["Size"]), item["LastModified"].timestamp())


def _day_prefixes(since: datetime, until: datetime) -> list[str]:
    day = since.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    out: list[str] = []
    while day < until:
        out.append(day.strftime("year=%Y/month=%m/day=%d"))
        day += timedelta(days=1)
    return out


def list_source_files(
    root: StoreUri,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    client: Any = None,
) -> list[SourceFile]:
    """The visible Parquet files of one offline store, with hours in [since, until) when given.

    With both bounds and at most ~3 months between them only the matching day prefixes are
    listed, which keeps incremental runs over a large store cheap on S3.
    """
    prefixes: Iterable[str] = ("",)
    if since is not None and until is not None and until - since <= timedelta(days=93):
        prefixes = _day_prefixes(since, until)
    found: list[SourceFile] = []
    for stored in list_files(root, client=client, prefixes=prefixes):
        relative = stored.uri.relative_to(root)
        if not relative.endswith(".parquet") or _hidden(relative):
            continue
        directory = relative.rsplit("/", 1)[0] if "/" in relative else ""
        try:
            hour = parse_hour_partition(directory)
        except OfflineStoreError:
            continue  # not part of the Glue layout (e.g. a stray file at the root)
        if (since is not None and hour < since) or (until is not None and hour >= until):
            continue
        found.append(SourceFile(stored.uri, stored.size, hour))
    found.sort(key=lambda f: (f.hour, f.uri.key))
    return found


def s3_client(region: str | None = None) -> Any:
    """A boto3 S3 client; AWS_ENDPOINT_URL_S3 (moto locally) is honoured by boto3 itself."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        region_name=region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        config=Config(retries={"mode": "standard", "max_attempts": 8}, max_pool_connections=32),
    )
