"""What one run works with: the target, the settings, the session, the output store, the summary."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import DateType, IntegerType, StructField, StructType

from featurestream.compaction.progress import Progress
from featurestream.compaction.rules import DATE, HOUR, partition_columns
from featurestream.compaction.sparkconf import listing_conf
from featurestream.compaction.storage import StateStore
from featurestream.compaction.summary import RunSummary
from featurestream.compaction.table import TableRef
from featurestream.connectors.offline_store import StoreUri

log = logging.getLogger(__name__)

SNAPSHOT_DIR = "latest"
TOMBSTONE_DIR = "_compaction/tombstones"


@dataclass(frozen=True)
class FeatureGroupTarget:
    """A feature group's offline store and where its compacted output goes."""

    name: str
    source: StoreUri  # the offline store's `.../data` prefix
    output: StoreUri  # this group's output folder: the table's location and the run's side files
    record_identifier: str
    event_time: str
    # From DescribeFeatureGroup's FeatureDefinitions; None: merged from the files' footers.
    schema: StructType | None = None
    # The Iceberg table the compacted rows go to (its location is `output`).
    table: TableRef | None = None
    # An Iceberg-format offline store: its own table, rewritten in place (maintenance.py).
    source_table: TableRef | None = None

    @property
    def table_ref(self) -> TableRef:
        if self.table is None:
            raise ValueError(f"feature group {self.name}: no Iceberg table configured")
        return self.table


@dataclass(frozen=True)
class CompactionSettings:
    compression: str = "zstd"
    target_file_bytes: int = 128 * 1024 * 1024
    partition_by: str = "day"
    deletes: str = "keep"
    snapshot: bool = False
    stale_after_s: float = 1800.0
    heartbeat_s: float = 30.0
    gc_grace_s: float = 3600.0
    since: datetime | None = None
    until: datetime | None = None
    dry_run: bool = False
    s3_scheme: str = "s3a"
    region: str = "us-east-1"


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


@dataclass
class RunContext:
    spark: SparkSession
    target: FeatureGroupTarget
    settings: CompactionSettings
    store: StateStore
    progress: Progress
    run_id: str = field(default_factory=new_run_id)
    summary: RunSummary = field(init=False)

    def __post_init__(self) -> None:
        self.summary = RunSummary(self.target.name, str(self.target.source), str(self.target.output), self.run_id)

    @property
    def pcols(self) -> list[str]:
        return partition_columns(self.settings.partition_by)

    def phase(self, name: str, detail: str = "") -> None:
        log.info('{"event": "compaction_phase", "feature_group": "%s", "phase": "%s", "detail": "%s"}',
                 self.target.name, name, detail.replace('"', "'"))
        self.progress.phase(self.target.name, name, detail)

    def spark_path(self, uri: StoreUri) -> str:
        return uri.spark_path(self.settings.s3_scheme)

    def out(self, relative: str) -> StoreUri:
        return self.target.output.join(relative)

    def list_relative(self, prefix: str) -> dict[str, int]:
        """Visible Parquet files under an output folder: path relative to the output → bytes."""
        files: dict[str, int] = {}
        for stored in self.store.list(self.out(prefix)):
            relative = stored.uri.relative_to(self.target.output)
            if any(part.startswith((".", "_")) for part in relative[len(prefix) + 1:].split("/")):
                continue  # Spark's _temporary, _SUCCESS, hidden temporary files
            if relative.endswith(".parquet"):
                files[relative] = stored.size
        return files

    def read_parquet(self, uris: list[StoreUri], schema: StructType, base: StoreUri | None = None) -> DataFrame:
        reader = self.spark.read.schema(schema)
        if base is not None:
            reader = reader.option("basePath", self.spark_path(base))
        paths = [self.spark_path(u) for u in uris]
        with listing_conf(self.spark, remote=any(u.is_s3 for u in uris), paths=len(paths)):
            return reader.parquet(*paths)

    def partition_schema(self) -> StructType:
        fields = [StructField(DATE, DateType(), True)]
        if self.settings.partition_by == "hour":
            fields.append(StructField(HOUR, IntegerType(), True))
        return StructType(fields)
