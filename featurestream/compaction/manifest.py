"""The manifest: the one object that says what the compacted output of a feature group is.

`<output>/<group>/_compaction/manifest.json` lists, per partition, the Parquet files that hold it,
the snapshot files, the ledger segments (which source files are already in), the schema and the
files retired by recent runs. A run writes all its files first, under new names nobody
references, and then replaces the manifest with one compare-and-swap: that replacement is the
atomic switch of every partition the run rewrote. A reader that resolves files through the
manifest never sees a half-written partition; a run killed before the switch leaves only
unreferenced files, which the next run deletes.

Paths in the manifest are relative to the group's output folder, so the output can be moved.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from featurestream.compaction.storage import StateStore
from featurestream.connectors.offline_store import StoreUri

MANIFEST_PATH = "_compaction/manifest.json"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FileEntry(_Model):
    path: str  # relative to the group's output folder
    bytes: int


class PartitionEntry(_Model):
    files: list[FileEntry]
    version: int  # the manifest version that last rewrote this partition

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)


class RetiredFile(_Model):
    path: str
    retired_at: float  # Unix seconds of the commit that stopped referencing it


class Stats(_Model):
    """Running figures used to size the next run's files."""

    source_rows_per_byte: float | None = None
    output_bytes_per_row: float | None = None


class Manifest(_Model):
    format: Literal[1] = 1
    feature_group: str
    version: int = 0
    run_id: str | None = None
    committed_at: float | None = None
    source: str
    record_identifier: str
    event_time: str
    partition_by: Literal["day", "hour"]
    deletes: Literal["keep", "apply"]
    spark_schema: str | None = None  # Spark StructType JSON of the data columns
    partitions: dict[str, PartitionEntry] = Field(default_factory=dict)
    snapshot: list[FileEntry] | None = None
    tombstones: list[FileEntry] | None = None  # deletes=apply: newest delete time per record
    ledger: list[str] = Field(default_factory=list)
    retired: list[RetiredFile] = Field(default_factory=list)
    stats: Stats = Stats()

    def referenced(self) -> set[str]:
        """Every path this version needs (data, snapshot, tombstone log, ledger)."""
        paths = {f.path for p in self.partitions.values() for f in p.files}
        paths.update(f.path for f in self.snapshot or [])
        paths.update(f.path for f in self.tombstones or [])
        paths.update(self.ledger)
        paths.add(MANIFEST_PATH)
        return paths

    def data_files(self, partitions: list[str] | None = None) -> list[FileEntry]:
        keys = sorted(self.partitions) if partitions is None else [k for k in partitions if k in self.partitions]
        return [f for k in keys for f in self.partitions[k].files]

    def to_bytes(self) -> bytes:
        return json.dumps(self.model_dump(mode="json"), indent=1, sort_keys=True).encode()


def manifest_uri(root: StoreUri) -> StoreUri:
    return root.join(MANIFEST_PATH)


def read_manifest(store: StateStore, root: StoreUri) -> tuple[Manifest | None, str | None]:
    """The committed manifest and its version token; (None, None) before the first commit."""
    current = store.read(manifest_uri(root))
    if current is None:
        return None, None
    return Manifest.model_validate_json(current.data), current.token


def commit_manifest(store: StateStore, root: StoreUri, manifest: Manifest, expected: str | None) -> str:
    """The switch. Raises ConcurrentCommitError when another commit got in first."""
    from featurestream.compaction.errors import ConcurrentCommitError, PreconditionFailed

    uri = manifest_uri(root)
    data = manifest.to_bytes()
    if expected is None:
        token = store.create(uri, data)
        if token is None:
            raise ConcurrentCommitError(f"{uri} appeared while this run was writing")
        return token
    try:
        return store.replace(uri, data, expected)
    except PreconditionFailed as exc:
        raise ConcurrentCommitError(f"{uri} changed while this run was writing") from exc
