"""The ledger: which source files are already compacted (the "manifest of processed files").

Each committing run writes one gzip'd JSON-lines segment naming the source files it consumed;
the summary of the Iceberg snapshot that committed the rows lists the segments of the state
(state.py), so a segment written by a run that died before its commit is ignored (and later
deleted), and a commit cannot have happened without its segment being named. Segments are folded into one
when there are many, to keep the number of reads per run small.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable

from featurestream.compaction.errors import CompactionError
from featurestream.compaction.storage import StateStore
from featurestream.connectors.offline_store import SourceFile, StoreUri

LEDGER_DIR = "_compaction/ledger"
MAX_SEGMENTS = 32


def read_ledger(store: StateStore, root: StoreUri, segments: Iterable[str]) -> set[str]:
    """The source file URIs recorded in the given segments."""
    seen: set[str] = set()
    for segment in segments:
        current = store.read(root.join(segment))
        if current is None:
            raise CompactionError(f"ledger segment {segment} named by the table's snapshot is missing under {root}")
        for line in gzip.decompress(current.data).splitlines():
            if line.strip():
                seen.add(str(json.loads(line)["uri"]))
    return seen


def _encode(entries: Iterable[tuple[str, int]]) -> bytes:
    lines = (json.dumps({"uri": uri, "bytes": size}, separators=(",", ":")) for uri, size in entries)
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


def write_segment(
    store: StateStore,
    root: StoreUri,
    *,
    version: int,
    run_id: str,
    new_files: list[SourceFile],
    previous_segments: list[str],
) -> list[str]:
    """Write this run's segment; returns the segments of the new state.

    Past MAX_SEGMENTS the new segment holds every recorded file and replaces all older ones
    (they stay while an unexpired snapshot names them).
    """
    entries: list[tuple[str, int]] = [(str(f.uri), f.size) for f in new_files]
    if len(previous_segments) + 1 > MAX_SEGMENTS:
        older = read_ledger(store, root, previous_segments)
        entries = [(uri, -1) for uri in sorted(older)] + entries
        previous_segments = []
    name = f"{LEDGER_DIR}/v{version:08d}-{run_id}.jsonl.gz"
    store.put(root.join(name), _encode(entries))
    return [*previous_segments, name]
