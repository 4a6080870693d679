"""Progress parsing, the metrics a batch produces, freshness against an independent computation,
and the writer's history as Prometheus counters. No Spark needed."""

from __future__ import annotations

import dataclasses
import json
import typing
from datetime import UTC, datetime

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from featurestream.connectors.writer.metrics import BatchMetrics, MetricsHistory
from featurestream.ops.freshness import FreshnessWindow, batch_ages
from featurestream.ops.metrics import JobMetrics, counted
from featurestream.ops.progress import BatchProgress
from tests.ops.samples import at, progress

# The samples' batch starts a minute before now and freshness windows count back from now: every
# test here may see the clock (and the module runs in well under a second).
pytestmark = pytest.mark.clock


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the registry's text output, keyed by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_progress_fields() -> None:
    p = BatchProgress.from_dict(progress(observed={"featurestream_dlq": {"rows": 7}}, dropped=3))
    assert (p.query_id, p.name, p.batch_id, p.input_rows) == (
        "1eadeee5-718a-4161-b038-af907f76618d", "card_activity-features", 3, 500)
    assert p.started == epoch(at(0))
    assert p.finished == epoch(at(4))
    assert p.processed_rows_per_s == 0.0  # Spark's "NaN"
    assert (p.state_rows, p.state_memory_bytes, p.dropped_by_watermark) == (180, 2101440, 3)
    assert p.offsets_behind_latest == 390.0
    assert p.watermark == epoch(at(-300))
    assert p.observed == {"featurestream_dlq": {"rows": 7.0}}
    line = p.log_fields()
    assert line["query_id"] and line["batch_id"] == 3 and line["watermark_lag_s"] == 304.0
    # Where the trigger's time went, in seconds (the sample's trigger took 4 s).
    assert line["phases_s"] == {"addBatch": 3.5, "commitOffsets": 0.1, "getBatch": 0.0, "latestOffset": 0.02,
                                "queryPlanning": 0.08, "walCommit": 0.2}
    assert line["state_commit_s"] == 0.15
    json.dumps(line)


def test_first_batch_has_no_watermark() -> None:
    p = BatchProgress.from_dict(progress(batch_id=0, watermark="1970-01-01T00:00:00.000Z"))
    assert p.watermark is None
    assert "watermark_lag_s" not in p.log_fields()


def test_batch_metrics_exposed() -> None:
    registry = CollectorRegistry()
    metrics = JobMetrics(registry)
    metrics.observe_progress(BatchProgress.from_dict(progress(observed={"featurestream_dlq": {"rows": 7}},
                                                              dropped=3)))
    metrics.observe_progress(BatchProgress.from_dict(progress(batch_id=4, rows=100)))
    metrics.observe_events("late", 2, "card_activity-features")
    values = scrape(registry)
    q = (("query", "card_activity-features"),)
    assert values[("featurestream_input_rows_total", q)] == 600
    assert values[("featurestream_batches_total", q)] == 2
    assert values[("featurestream_last_batch_id", q)] == 4
    assert values[("featurestream_batch_duration_seconds_count", q)] == 2
    assert values[("featurestream_watermark_lag_seconds", q)] == 304.0
    assert values[("featurestream_state_rows", q)] == 180
    assert values[("featurestream_rows_dropped_by_watermark_total", q)] == 3
    assert values[("featurestream_source_offsets_behind_latest", q)] == 390
    outcome = (("outcome", "dlq"), ("query", "card_activity-features"))
    assert values[("featurestream_events_total", outcome)] == 7
    assert values[("featurestream_events_total", (("outcome", "late"), ("query", "card_activity-features")))] == 2
    assert values[("featurestream_freshness_seconds_count", ())] == pytest.approx(600)
    with pytest.raises(ValueError, match="unknown outcome"):
        metrics.observe_events("lost", 1)
    with pytest.raises(ValueError, match="unknown outcome"):
        counted("lost")


def test_freshness_matches_per_event_computation() -> None:
    """A steady stream: 1,000 events over 10 s read in one batch that ends 4 s after the last one.

    The independent computation takes every event's own freshness (batch end - event time).
    """
    rng = np.random.default_rng(5)
    events = np.sort(rng.uniform(0.0, 10.0, 1000)) + epoch(at(-10))
    batch_end = events.max() + 4.0
    truth = batch_end - events
    start = datetime.fromtimestamp(batch_end - 1.0, UTC).isoformat().replace("+00:00", "Z")
    p = BatchProgress.from_dict(progress(
        started=start, duration_ms=1000, rows=len(events),
        event_min=datetime.fromtimestamp(events.min(), UTC).isoformat().replace("+00:00", "Z"),
        event_avg=datetime.fromtimestamp(events.mean(), UTC).isoformat().replace("+00:00", "Z"),
        event_max=datetime.fromtimestamp(events.max(), UTC).isoformat().replace("+00:00", "Z")))
    window = FreshnessWindow(600)
    ages, weight = batch_ages(p)
    window.add(p.finished, ages, weight)
    spread = truth.max() - truth.min()
    for q in (0.5, 0.99):
        assert window.quantile(q, p.finished) == pytest.approx(np.quantile(truth, q), abs=0.03 * spread)
    # The exact bounds: newest and oldest event.
    assert min(ages) == pytest.approx(truth.min(), abs=1e-3)
    assert max(ages) == pytest.approx(truth.max(), abs=1e-3)
    buckets, total = window.histogram()
    assert buckets[-1] == ("+Inf", pytest.approx(1000))
    assert total == pytest.approx(truth.sum(), rel=0.01)
    # Outside the window the quantiles are gone; the histogram keeps counting.
    assert window.quantile(0.5, p.finished + 601) is None


def test_exact_freshness_replaces_the_estimate() -> None:
    metrics = JobMetrics(CollectorRegistry(), freshness_window_s=60)
    metrics.observe_freshness([1.0, 2.0, 3.0, 4.0], at=1000.0)
    metrics.observe_progress(BatchProgress.from_dict(progress()))
    assert metrics.freshness.quantile(0.5, 1000.0) == 2.0
    assert metrics.freshness.quantile(0.99, 1000.0) == 4.0


def _zero(type_hint: object) -> object:
    text = str(type_hint)
    if "str" in text:
        return ""
    if "float" in text:
        return 0.0
    return 0


def batch(**values: object) -> BatchMetrics:
    """A BatchMetrics whatever fields the writer has added: zeros, then the given values."""
    hints = typing.get_type_hints(BatchMetrics)
    base = {f.name: _zero(hints[f.name]) for f in dataclasses.fields(BatchMetrics)}
    return BatchMetrics(**{**base, **values})  # type: ignore[arg-type]


def test_writer_history_as_counters() -> None:
    history = MetricsHistory()
    history.record(batch(feature_group="fg-a", batch_id=0, records_in=50, entities=40, records_written=39, dlq=1,
                         calls=2, retries=1, throttles=1, latency_ms_p50=12.0, latency_ms_p99=80.0, seconds=0.5))
    history.record(batch(feature_group="fg-a", batch_id=1, records_in=10, entities=10, records_written=10, dlq=0,
                         calls=1, retries=0, throttles=0, latency_ms_p50=10.0, latency_ms_p99=20.0, seconds=0.2))
    registry = CollectorRegistry()
    JobMetrics(registry, writer_snapshot=history.snapshot)
    values = scrape(registry)
    fg = (("feature_group", "fg-a"),)
    assert values[("featurestream_write_records_in_total", fg)] == 60
    assert values[("featurestream_write_calls_total", fg)] == 3
    assert values[("featurestream_write_retries_total", fg)] == 1
    assert values[("featurestream_write_throttles_total", fg)] == 1
    assert values[("featurestream_write_batches_total", fg)] == 2
    assert values[("featurestream_write_records_total", (("feature_group", "fg-a"), ("outcome", "written")))] == 49
    assert values[("featurestream_write_records_total", (("feature_group", "fg-a"), ("outcome", "dlq")))] == 1
    assert values[("featurestream_write_latency_seconds", (("feature_group", "fg-a"), ("quantile", "0.99")))] == 0.02
    assert values[("featurestream_write_batch_seconds", fg)] == 0.2


@dataclasses.dataclass
class EngineTotals:
    """The attributes the feature engine keeps per query (pipeline.EngineMetrics)."""

    aggregated: int = 0
    duplicates: int = 0
    late_events: int = 0
    records: int = 0
    decay_records: int = 0


def test_engine_totals_read_at_scrape_time() -> None:
    registry = CollectorRegistry()
    metrics = JobMetrics(registry)
    engine = EngineTotals()
    metrics.watch_engine("fg-features", engine)
    metrics.observe_events("late", 1, "fg-features")
    engine.aggregated, engine.late_events, engine.duplicates, engine.records = 90, 4, 3, 20
    values = scrape(registry)
    q = (("query", "fg-features"),)
    assert values[("featurestream_events_total", (("outcome", "late"), ("query", "fg-features")))] == 5
    assert values[("featurestream_events_total", (("outcome", "deduplicated"), ("query", "fg-features")))] == 3
    assert values[("featurestream_aggregated_events_total", q)] == 90
    assert values[("featurestream_records_emitted_total", q)] == 20
    engine.late_events = 6
    assert scrape(registry)[("featurestream_events_total", (("outcome", "late"), ("query", "fg-features")))] == 7


def test_kafka_records_skipped_by_a_batch_are_counted_as_lost() -> None:
    """Offsets [10, 510) planned, 350 read: 150 were deleted before the job got to them."""
    registry = CollectorRegistry()
    metrics = JobMetrics(registry)
    short = BatchProgress.from_dict(progress(rows=350))
    assert (short.lost_records, short.lost_ranges) == (150, {"payments": {"0": [10, 510]}})
    assert short.log_fields()["lost_records"] == 150
    metrics.observe_progress(short)
    metrics.observe_progress(BatchProgress.from_dict(progress(batch_id=4)))  # all 500 read
    first = progress(batch_id=0, rows=20)
    first["sources"][0]["startOffset"] = None  # a query's first batch starts where the topic starts
    assert BatchProgress.from_dict(first).lost_records == 0
    assert scrape(registry)[("featurestream_events_lost_total", (("query", "card_activity-features"),))] == 150
