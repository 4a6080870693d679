"""Equality rules per feature type, and the per-feature tally of one comparison.

Values are compared in the types of the group's FeatureDefinitions (the online store returns text):
- Integral: equal as integers;
- Fractional: equal when |a - b| ≤ tolerance · max(1, |b|) (b the recomputed value; default 1e-9:
  the stream adds a tile's values in arrival order, the recompute in event-time order, so the
  last bits of a sum may differ); NaN never reaches a record (the writer leaves it out);
- String: equal as text;
- absent on both sides (an empty window's mean, min, ...) is equal; absent on one side is a difference.

A difference is *explained* (counted apart, never as equal) when a documented cause accounts for
it (see `explain` in job.py): `late` (the entity has events in the late sink at or before the
record's EventTime: the stream dropped them, the recompute used them) or `in_flight` (the source
holds events of the entity newer than the record: the stream has not consumed them yet, so events
at or before the record's time that travel with them are not in it either).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

EXAMPLES_KEPT = 5
LATE, IN_FLIGHT = "late", "in_flight"


def parse(value: Any, kind: str) -> Any:
    """An online (text) or recomputed value in the feature's type; None when absent."""
    if value is None or value == "":
        return None
    if kind == "Integral":
        return int(float(value)) if isinstance(value, str) and not value.lstrip("-").isdigit() else int(value)
    if kind == "Fractional":
        return float(value)
    return str(value)


def equal(got: Any, want: Any, kind: str, tolerance: float) -> bool:
    if got is None or want is None:
        return got is None and want is None
    if kind == "Fractional":
        a, b = float(got), float(want)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= tolerance * max(1.0, abs(b))
    return bool(got == want)


def differences(got: Any, want: Any, kind: str) -> tuple[float | None, float | None]:
    """(absolute, relative) difference of two numbers; None when not both numeric."""
    if kind not in ("Integral", "Fractional") or got is None or want is None:
        return None, None
    absolute = abs(float(got) - float(want))
    if float(want) == 0.0:
        return absolute, 0.0 if absolute == 0.0 else math.inf
    return absolute, absolute / abs(float(want))


@dataclass
class FeatureTally:
    """One feature over the sample: equal, unexplained and explained differences, their sizes."""

    name: str
    kind: str
    compared: int = 0
    equal: int = 0
    different: int = 0
    explained: dict[str, int] = field(default_factory=lambda: {LATE: 0, IN_FLIGHT: 0})
    max_abs_diff: float = 0.0
    max_rel_diff: float = 0.0
    abs_diffs: list[float] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)

    def add(self, entity: str, event_time: str, got: Any, want: Any, tolerance: float, cause: str | None) -> None:
        self.compared += 1
        if equal(got, want, self.kind, tolerance):
            self.equal += 1
            return
        absolute, relative = differences(got, want, self.kind)
        if cause is not None:
            self.explained[cause] += 1
        else:
            self.different += 1
            self.entities.append(entity)
            if absolute is not None:
                self.max_abs_diff = max(self.max_abs_diff, absolute)
                self.abs_diffs.append(absolute)
            if relative is not None:
                self.max_rel_diff = max(self.max_rel_diff, relative)
        if len(self.examples) < EXAMPLES_KEPT:
            self.examples.append({"entity": entity, "event_time": event_time, "online": got, "definition": want,
                                  "abs_diff": absolute, "rel_diff": relative, "cause": cause})

    @property
    def match_rate(self) -> float:
        """Equal values among those compared and not explained by a documented cause (1.0 if none)."""
        judged = self.compared - sum(self.explained.values())
        return 1.0 if judged <= 0 else self.equal / judged

    def summary(self) -> dict[str, Any]:
        return {"type": self.kind, "compared": self.compared, "equal": self.equal, "different": self.different,
                "explained": dict(self.explained), "match_rate": self.match_rate,
                "max_abs_diff": self.max_abs_diff, "max_rel_diff": _finite(self.max_rel_diff),
                "different_entities": sorted(self.entities), "examples": self.examples}


def _finite(value: float) -> float | str:
    return value if math.isfinite(value) else "inf"
