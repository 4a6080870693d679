"""The backfill's offline records against the engine tests' independent oracle (tests/engine/oracle.py).

Doubles compare to 1e-9 relative: the stream adds a tile's values in arrival order, the backfill
in event-time order.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from tests.engine.oracle import Group, feature_value, replay


def same(got: Any, want: Any) -> bool:
    if want is None or got is None:
        return got is None and want is None
    if isinstance(want, float) or isinstance(got, float):
        return math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-9)
    return bool(got == want)


def differing(got: dict[str, Any], want: dict[str, Any], names: list[str]) -> list[tuple[str, Any, Any]]:
    return [(n, got.get(n), want.get(n)) for n in names if not same(got.get(n), want.get(n))]


def check_oracle(offline: dict[tuple[str, int], dict[str, Any]], events: list[dict[str, Any]], group: Group) -> None:
    """Every backfill record against the oracle as of its time; a record at every accepted event time."""
    accepted = replay([sorted(events, key=lambda e: e["ts_ms"])], group).accepted
    per_entity: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in accepted:
        per_entity[e["card_id"]].append(e)
    names = [f.name for f in group.features]
    problems = []
    for (entity, t), row in offline.items():
        seen = [e for e in per_entity[entity] if e["ts_ms"] <= t]
        want = {f.name: feature_value(f, seen, t, group.tile_s) for f in group.features}
        problems += [(entity, t, *d) for d in differing(row, want, names)]
    assert not problems, problems[:5]
    missing = {(e["card_id"], e["ts_ms"]) for e in accepted} - set(offline)
    assert not missing, sorted(missing)[:5]
