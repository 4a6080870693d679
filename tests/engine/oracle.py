"""An independent, plain-Python computation of what the engine must produce, from the same events.

It replays the documented definition (README "Feature semantics") micro-batch by micro-batch:
the watermark, late events, dedupe, then per entity the record time T and every feature over the
tiles of its window as of T. It shares no code with the engine (pandas and the standard library).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

NUMERIC = ("sum", "mean", "min", "max", "stddev_pop", "stddev_samp")


@dataclass(frozen=True)
class Feature:
    name: str
    agg: str
    column: str | None
    window_s: int  # 0 = whole history (last only)


@dataclass(frozen=True)
class Group:
    tile_s: int
    lateness_s: int
    dedupe_key: str | None
    dedupe_within_s: int
    features: tuple[Feature, ...]
    keep: Any  # event -> bool, the group's filter step
    # Sketch windows kept in buckets: (bucket length in seconds, window length in buckets).
    bucketed: tuple[tuple[int, int], ...] = ()

    @property
    def windows_s(self) -> list[int]:
        return sorted({f.window_s for f in self.features if f.window_s})


@dataclass
class Outcome:
    accepted: list[dict[str, Any]] = field(default_factory=list)
    late: list[tuple[dict[str, Any], int]] = field(default_factory=list)  # (event, late_by_ms)
    duplicates: int = 0
    filtered: int = 0
    stream_time_ms: int = 0


def ms(event: dict[str, Any]) -> int:
    return int(event["ts_ms"])


def replay(batches: Sequence[Sequence[dict[str, Any]]], group: Group) -> Outcome:
    """Each batch is one micro-batch; Spark's watermark moves between batches."""
    out = Outcome()
    watermark = 0
    newest: int | None = None
    seen: dict[tuple[str, Any], int] = {}
    lateness = group.lateness_s * 1000
    for batch in batches:
        batch_max: int | None = None
        for event in batch:
            if not group.keep(event):
                out.filtered += 1
                continue
            t = ms(event)
            batch_max = t if batch_max is None else max(batch_max, t)
            if t < watermark:
                out.late.append((event, watermark - t))
                continue
            if group.dedupe_key is not None and event.get(group.dedupe_key) is not None:
                slot = (event["card_id"], event[group.dedupe_key])
                before = seen.get(slot)
                if before is not None and abs(before - t) <= group.dedupe_within_s * 1000:
                    out.duplicates += 1
                    continue
                if before is None or t > before:
                    seen[slot] = t
            out.accepted.append(event)
        if batch_max is not None:
            newest = batch_max if newest is None else max(newest, batch_max)
            watermark = max(watermark, newest - lateness)
    out.stream_time_ms = watermark + lateness
    return out


def record_time(events: list[dict[str, Any]], group: Group, stream_time_ms: int) -> tuple[int, int | None]:
    """(T, next boundary after T): T = max(newest event, latest decay boundary <= stream time)."""
    tile = group.tile_s * 1000
    bounds = {(ms(e) // tile + w // group.tile_s) * tile for e in events for w in group.windows_s}
    # A sketch bucket leaving its window is a decay boundary too.
    bounds |= {(ms(e) // (grain * 1000) + n) * grain * 1000 for e in events for grain, n in group.bucketed}
    passed = [b for b in bounds if b <= stream_time_ms]
    t = max([max(ms(e) for e in events), *passed])
    later = [b for b in bounds if b > t]
    return t, min(later) if later else None


def _latest(values: list[tuple[int, Any]]) -> Any:
    values = [(t, v) for t, v in values if v is not None]
    if not values:
        return None
    top = max(t for t, _ in values)
    return max(v for t, v in values if t == top)


def feature_value(feature: Feature, events: list[dict[str, Any]], as_of_ms: int, tile_s: int) -> Any:
    if feature.window_s:
        tile = tile_s * 1000
        current = as_of_ms // tile
        first = current - feature.window_s // tile_s + 1
        events = [e for e in events if first <= ms(e) // tile <= current]
    if feature.agg == "count":
        return len(events)
    values = [e.get(feature.column or "") for e in events]
    present = [v for v in values if v is not None]
    if feature.agg == "last":
        return _latest([(ms(e), e.get(feature.column or "")) for e in events])
    if feature.agg == "approx_count_distinct":
        return len(set(present))
    if feature.agg == "sum":
        return float(sum(present))
    if not present:
        return None
    series = pd.Series(present, dtype="float64")
    if feature.agg == "mean":
        return float(series.mean())
    if feature.agg == "min":
        return float(series.min())
    if feature.agg == "max":
        return float(series.max())
    if feature.agg == "stddev_pop":
        return float(series.std(ddof=0))
    if feature.agg == "stddev_samp":
        return None if len(present) < 2 else float(series.std(ddof=1))
    raise ValueError(feature.agg)


@dataclass(frozen=True)
class Expected:
    as_of_ms: int
    next_boundary_ms: int | None
    values: dict[str, Any]


def expected_records(outcome: Outcome, group: Group) -> dict[str, Expected]:
    by_entity: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in outcome.accepted:
        by_entity[str(event["card_id"])].append(event)
    result = {}
    for entity, events in by_entity.items():
        t, upcoming = record_time(events, group, outcome.stream_time_ms)
        values = {f.name: feature_value(f, events, t, group.tile_s) for f in group.features}
        result[entity] = Expected(t, upcoming, values)
    return result


def same_value(got: str | None, want: Any) -> bool:
    """GetRecord gives strings; a feature that is None must be absent."""
    if want is None:
        return got is None
    if got is None:
        return False
    if isinstance(want, bool):
        return got in ("1", "true", "True") if want else got in ("0", "false", "False")
    if isinstance(want, int) and not isinstance(want, bool):
        return int(got) == want
    if isinstance(want, float):
        return math.isclose(float(got), want, rel_tol=1e-9, abs_tol=1e-9)
    return got == str(want)
