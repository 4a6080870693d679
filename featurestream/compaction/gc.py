"""Deleting side files no snapshot of the table names any more.

The table's own files are Iceberg's: snapshot expiry deletes the data and metadata files only
expired snapshots used, and orphan-file removal the files of runs that died before their commit
(table.py). What remains are the files a run writes beside the table and names in its snapshot's
summary (ledger segments, the delete log, `latest/`): kept while a snapshot the table still has
names them, deleted once none does and they are older than the grace period (a run that is
writing them has not committed yet). Runs only under the feature group's lock.
"""

from __future__ import annotations

import logging
import os

from featurestream.compaction.storage import StateStore
from featurestream.connectors.offline_store import StoreUri

log = logging.getLogger(__name__)

SIDE_PREFIXES = ("latest", "_compaction/tombstones", "_compaction/ledger")


def sweep_side_files(store: StateStore, root: StoreUri, keep: set[str], now: float, grace_s: float) -> int:
    """Delete unnamed side files (and Hadoop's checksum files beside them); returns how many."""
    doomed: list[StoreUri] = []
    for prefix in SIDE_PREFIXES:
        for stored in store.list(root.join(prefix)):
            relative = stored.uri.relative_to(root)
            if relative in keep or _checksum_target(relative) in keep:
                continue
            if now - stored.modified < grace_s:
                continue
            doomed.append(stored.uri)
    deleted = store.delete_many(doomed) if doomed else 0
    if not root.is_s3:
        for prefix in SIDE_PREFIXES:
            _prune_empty_dirs(root.join(prefix).path)
    if deleted:
        log.info("side files under %s: %d deleted", root, deleted)
    return deleted


def _checksum_target(relative: str) -> str | None:
    """`dir/.name.crc` (Hadoop's local checksum file) → `dir/name`: it lives as long as its file."""
    directory, _, name = relative.rpartition("/")
    if name.startswith(".") and name.endswith(".crc"):
        return f"{directory}/{name[1:-4]}" if directory else name[1:-4]
    return None


def _prune_empty_dirs(top: os.PathLike[str]) -> None:
    if not os.path.isdir(top):
        return
    for directory, subdirs, files in os.walk(top, topdown=False):
        if directory != os.fspath(top) and not subdirs and not files:
            try:
                os.rmdir(directory)
            except OSError:
                pass  # not empty after all (written concurrently): leave it
