"""A backfill's range cut into chunks of event time, and what is done of it (the progress file).

The range id names a backfill: the feature group (its online name, i.e. the version) and the
range. Its work folder `<checkpoint_root>/<group>/backfill/<range id>/` holds the engine state after
each chunk (`state/chunk=N/`) and `progress.json`, which says per chunk `done` (its records are in
the offline store and its state written), with the newest event time so far (the stream time the
next chunk starts from) and the state folder the next chunk reads. The file is rewritten whole
after a chunk, and that write is the chunk's commit: a kill -9 before it leaves the chunk not done.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pyspark.sql import SparkSession

from featurestream.errors import ConfigError
from featurestream.io import hadoop_fs, paths

DONE = "done"
# Progress files of the streaming-query backfill (before the batch pass) have no format.
FORMAT = 2


@dataclass(frozen=True)
class Chunk:
    index: int
    start: datetime
    end: datetime


def plan_chunks(start: datetime, end: datetime, chunk_ms: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    step = timedelta(milliseconds=chunk_ms)
    lower = start
    while lower < end:
        upper = min(lower + step, end)
        chunks.append(Chunk(len(chunks), lower, upper))
        lower = upper
    return chunks


def range_id(feature_group_name: str, start: datetime, end: datetime) -> str:
    text = f"{feature_group_name}|{start.isoformat()}|{end.isoformat()}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class Progress:
    path: str
    range_id: str
    feature_group: str
    start: str
    end: str
    chunk_ms: int
    chunks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def state(self, chunk: Chunk) -> str | None:
        entry = self.chunks.get(str(chunk.index))
        return None if entry is None else str(entry.get("state"))

    def mark(self, spark: SparkSession, chunk: Chunk, state: str, **figures: Any) -> None:
        entry = self.chunks.setdefault(str(chunk.index), {})
        entry.update(state=state, start=chunk.start.isoformat(), end=chunk.end.isoformat(), **figures)
        self.save(spark)

    def save(self, spark: SparkSession) -> None:
        body = {"format": FORMAT, "range_id": self.range_id, "feature_group": self.feature_group, "start": self.start,
                "end": self.end, "chunk_ms": self.chunk_ms, "chunks": self.chunks}
        hadoop_fs.write_text(spark, self.path, json.dumps(body, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load_or_new(cls, spark: SparkSession, work: str, rid: str, feature_group: str, start: datetime,
                    end: datetime, chunk_ms: int) -> Progress:
        path = paths.join(work, "progress.json")
        fresh = cls(path, rid, feature_group, start.isoformat(), end.isoformat(), chunk_ms)
        if not hadoop_fs.exists(spark, path):
            return fresh
        try:
            data = json.loads(hadoop_fs.read_text(spark, path))
            if data.get("format") != FORMAT:
                raise ConfigError(path, "", "this backfill was started by an earlier version of featurestream "
                                  "(a streaming query per chunk); run it again with --restart")
            found = cls(path, str(data["range_id"]), str(data["feature_group"]), str(data["start"]),
                        str(data["end"]), int(data["chunk_ms"]), dict(data["chunks"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(path, "", f"not a backfill progress file ({exc}); run with --restart") from None
        if found.chunk_ms != chunk_ms:
            raise ConfigError("command line", "--chunk",
                              f"this range was started with chunks of {found.chunk_ms} ms ({path}); "
                              "use the same --chunk to resume, or --restart to recompute the range")
        return found
