"""Deleting what no committed state needs: crashed runs' files and expired superseded files.

Runs only under the feature group's lock. A file under the managed folders is kept when the
committed manifest references it, or when a recent commit retired it less than `grace_s` ago
(a reader may still be reading the previous version). Everything else there is garbage: files
of a run that died before its commit (never referenced, so no reader can be using them), Spark's
`_temporary` leftovers, markers.
"""

from __future__ import annotations

import logging
import os

from featurestream.compaction.manifest import Manifest
from featurestream.compaction.storage import StateStore
from featurestream.connectors.offline_store import StoreUri

log = logging.getLogger(__name__)

MANAGED_PREFIXES = ("data", "latest", "_compaction/tombstones", "_compaction/ledger")


def live_paths(manifest: Manifest | None, now: float, grace_s: float) -> set[str]:
    if manifest is None:
        return set()
    keep = manifest.referenced()
    keep.update(r.path for r in manifest.retired if now - r.retired_at < grace_s)
    return keep


def collect_garbage(store: StateStore, root: StoreUri, manifest: Manifest | None, now: float, grace_s: float) -> int:
    """Delete unreferenced files under the managed folders; returns how many."""
    keep = live_paths(manifest, now, grace_s)
    doomed: list[StoreUri] = []
    for prefix in MANAGED_PREFIXES:
        for stored in store.list(root.join(prefix)):
            relative = stored.uri.relative_to(root)
            if relative not in keep and _checksum_target(relative) not in keep:
                doomed.append(stored.uri)
    deleted = store.delete_many(doomed) if doomed else 0
    if not root.is_s3:
        for prefix in MANAGED_PREFIXES:
            _prune_empty_dirs(root.join(prefix).path)
    if deleted:
        log.info("garbage collection under %s: %d files deleted", root, deleted)
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
