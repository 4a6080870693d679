"""A plain-Python computation of the online records, for `make demo` to check itself against.

It follows the definition in featurestream.engine.aggregation without Spark, for a stream with no late
events: stream time S = the newest event time of the stream; per entity, T = the newest event
time, or the latest decay boundary (tile + window) <= S of its tiles when later; a feature over W
covers the tiles floor(T / tile) - W / tile + 1 ... floor(T / tile).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class ExpectedRecord:
    entity: str
    as_of: datetime
    count: int
    total: float


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def expected_records(events: Iterable[dict[str, object]], key: str, time_field: str, value_field: str,
                     tile_ms: int, window_ms: int, all_windows_ms: Sequence[int] = ()) -> dict[str, ExpectedRecord]:
    """`all_windows_ms`: every window of the group (each moves T by decay); defaults to `window_ms`."""
    by_entity: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for event in events:
        moment = _parse(str(event[time_field]))
        amount = event[value_field]
        if not isinstance(amount, int | float):
            raise TypeError(f"{value_field} must be a number, got {amount!r}")
        by_entity[str(event[key])].append((round(moment.timestamp() * 1000), float(amount)))
    if not by_entity:
        return {}
    stream_time = max(ms for points in by_entity.values() for ms, _ in points)
    windows = list(all_windows_ms) or [window_ms]
    result: dict[str, ExpectedRecord] = {}
    for entity, points in by_entity.items():
        boundaries = [(ms // tile_ms + w // tile_ms) * tile_ms for ms, _ in points for w in windows]
        as_of = max([max(ms for ms, _ in points), *[b for b in boundaries if b <= stream_time]])
        current = as_of // tile_ms
        first = current - window_ms // tile_ms + 1
        inside = [value for ms, value in points if first <= ms // tile_ms <= current]
        result[entity] = ExpectedRecord(entity, datetime.fromtimestamp(as_of / 1000, tz=UTC), len(inside), sum(inside))
    return result
