"""A plain-Python computation of the online records, for `make demo` to check itself against.

It follows the definition in featurestream.aggregation without Spark: per entity, T = newest event
time, end = end of T's tile, features over the events in [end - W, end).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
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
                     tile_ms: int, window_ms: int) -> dict[str, ExpectedRecord]:
    by_entity: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for event in events:
        moment = _parse(str(event[time_field]))
        amount = event[value_field]
        assert isinstance(amount, int | float)
        by_entity[str(event[key])].append((round(moment.timestamp() * 1000), float(amount)))
    result: dict[str, ExpectedRecord] = {}
    for entity, points in by_entity.items():
        newest = max(ms for ms, _ in points)
        end = (newest // tile_ms + 1) * tile_ms
        inside = [value for ms, value in points if end - window_ms <= ms < end]
        result[entity] = ExpectedRecord(entity, datetime.fromtimestamp(newest / 1000, tz=UTC), len(inside), sum(inside))
    return result
