"""The run's bookkeeping, committed inside the Iceberg snapshot that wrote its rows.

The summary property `featurestream.state` of each snapshot a compaction commits holds: which
ledger segments list the source files already compacted, the delete log (deletes=apply), the
`latest/` snapshot files and the sizing figures. These files are written under `_compaction/`
before the commit and named only by it: a run that dies before committing leaves them
unreferenced (swept later, gc.py), and one that committed cannot have recorded its rows without
its ledger, nor the other way round. Paths are relative to the group's output folder.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FileEntry(_Model):
    path: str  # relative to the group's output folder (or an absolute URI for table data files)
    bytes: int


class CommittedState(_Model):
    format: int = 2
    version: int = 0  # how many compaction commits the table has had
    run_id: str | None = None
    committed_at: float | None = None
    source: str = ""
    ledger: list[str] = Field(default_factory=list)
    snapshot: list[FileEntry] | None = None  # `latest/` files
    tombstones: list[FileEntry] | None = None  # deletes=apply: newest delete time per record
    # Source bytes compacted so far: with the table's total file size (Iceberg's snapshot summary)
    # it gives the output/source ratio that sizes the next run's files.
    source_bytes: int = 0

    def referenced(self) -> set[str]:
        """Every side file (not table data) this state needs."""
        paths = set(self.ledger)
        paths.update(f.path for f in self.snapshot or [])
        paths.update(f.path for f in self.tombstones or [])
        return paths

    def encode(self) -> str:
        return self.model_dump_json()

    @classmethod
    def decode(cls, text: str | None) -> CommittedState | None:
        return cls.model_validate_json(text) if text else None
