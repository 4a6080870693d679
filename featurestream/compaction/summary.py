"""What a run did, as the JSON summary prints it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RunSummary:
    feature_group: str
    source: str
    output: str
    run_id: str
    status: str = "failed"  # compacted | noop | dry-run | failed
    version: int = 0
    table: str | None = None  # catalog.namespace.name
    snapshot_id: int | None = None  # the table's current snapshot after the run
    files_in: int = 0
    bytes_in: int = 0
    rows_in: int = 0
    existing_files_read: int = 0
    existing_rows_read: int = 0
    files_out: int = 0
    bytes_out: int = 0
    rows_out: int = 0
    duplicates_removed: int = 0
    superseded_removed: int = 0
    deleted_rows_removed: int = 0
    tombstones_kept: int = 0
    partitions_rewritten: int = 0
    partitions: list[str] = field(default_factory=list)
    snapshot_rows: int | None = None
    snapshot_files: int = 0
    snapshots_expired: int = 0
    garbage_files_deleted: int = 0  # orphan data files of dead runs + side files no snapshot names
    lock_taken_over_from: str | None = None
    seconds: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 3)
        return out
