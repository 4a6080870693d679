"""The run's JSON summary (stdout) and its Prometheus gauges (`featurestream_consistency_*`)."""

from __future__ import annotations

from collections import Counter
from statistics import median
from typing import Any

from featurestream.consistency.compare import IN_FLIGHT, LATE
from featurestream.consistency.job import BEHIND, OUTCOMES, ConsistencyResult
from featurestream.ops.batch_metrics import JobGauge

PREFIX = "featurestream_consistency_"


def offline_lags(result: ConsistencyResult) -> tuple[list[float], list[float]]:
    """(event-time lags in s, wall-time lags in s) of the entities whose offline row is behind."""
    behind = [o for o in result.offline if o.outcome == BEHIND and o.offline_ms is not None]
    return ([(o.online_ms - o.offline_ms) / 1000 for o in behind if o.offline_ms is not None],
            [o.wall_lag_s for o in behind if o.wall_lag_s is not None])


def _spread(values: list[float]) -> dict[str, float | None]:
    return {"max": max(values) if values else None, "median": median(values) if values else None}


def summary(result: ConsistencyResult) -> dict[str, Any]:
    request = result.request
    spec = request.spec
    outcomes = Counter(o.outcome for o in result.offline)
    event_lags, wall_lags = offline_lags(result)
    return {
        "feature_group": spec.name,
        "online_feature_group": spec.online_store.feature_group_name,
        "source": request.source.describe(),
        "range": {"start": result.start.isoformat(), "end": result.end.isoformat()},
        "sample": {"requested": request.sample_size, "drawn": len(result.sample),
                   "hot": sum(s.hot for s in result.sample), "cold": sum(not s.hot for s in result.sample),
                   "seed": request.seed, "online_records": len(result.sample) - len(result.online_missing),
                   "online_missing": result.online_missing},
        "definition": {
            "tolerance": request.tolerance,
            "features": {name: t.summary() for name, t in sorted(result.tallies.items())},
            "min_match_rate": min((t.match_rate for t in result.tallies.values()), default=1.0),
            "different": sum(t.different for t in result.tallies.values()),
            "explained": {cause: sum(t.explained[cause] for t in result.tallies.values())
                          for cause in (LATE, IN_FLIGHT)},
            "different_entities": sorted({e for t in result.tallies.values() for e in t.entities}),
        },
        "offline": None if request.offline_data_root is None else {
            "checked": len(result.offline),
            **{outcome: outcomes.get(outcome, 0) for outcome in OUTCOMES},
            "entities": {outcome: sorted(o.entity for o in result.offline if o.outcome == outcome)
                         for outcome in OUTCOMES if outcome != "equal"},
            "different_features": {o.entity: o.features for o in result.offline if o.features},
            "event_lag_s": _spread(event_lags), "wall_lag_s": _spread(wall_lags),
            **result.offline_figures,
        },
        "exceeded": result.exceeded,
        "exit_code": result.exit_code,
        "seconds": round(result.seconds, 3),
    }


def gauges(result: ConsistencyResult) -> list[JobGauge]:
    """Per group (the run's `target` label) and feature; pushed with the batch run's own gauges."""
    out: list[JobGauge] = []
    for name, t in sorted(result.tallies.items()):
        labels = {"feature": name}
        out += [JobGauge(PREFIX + "match_rate", "Share of equal values among those not explained", labels,
                         t.match_rate),
                JobGauge(PREFIX + "compared", "Values compared", labels, t.compared),
                JobGauge(PREFIX + "different", "Values differing with no documented cause", labels, t.different),
                JobGauge(PREFIX + "max_abs_diff", "Largest absolute difference", labels, t.max_abs_diff),
                JobGauge(PREFIX + "max_rel_diff", "Largest relative difference", labels,
                         t.max_rel_diff if t.max_rel_diff != float("inf") else 1e308)]
        out += [JobGauge(PREFIX + "explained", "Differences with a documented cause", {**labels, "cause": cause}, n)
                for cause, n in sorted(t.explained.items())]
    out.append(JobGauge(PREFIX + "sampled_entities", "Entities in the sample", {}, len(result.sample)))
    out.append(JobGauge(PREFIX + "online_missing", "Sampled entities without an online record", {},
                        len(result.online_missing)))
    if result.request.offline_data_root is not None:
        counts = Counter(o.outcome for o in result.offline)
        out += [JobGauge(PREFIX + "offline_entities", "Entities by offline outcome", {"outcome": outcome},
                         counts.get(outcome, 0)) for outcome in OUTCOMES]
        event_lags, _ = offline_lags(result)
        out.append(JobGauge(PREFIX + "offline_event_lag_seconds_max", "Largest event-time lag of the offline store",
                            {}, max(event_lags, default=0.0)))
    out.append(JobGauge(PREFIX + "thresholds_exceeded", "Thresholds the run exceeded", {}, len(result.exceeded)))
    return out
