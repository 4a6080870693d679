"""The job's Prometheus metrics: one registry, fed by the query listener, the online-store writer's
per-batch history and small calls other modules make.

Other modules report through three calls and one transform:
- `observe_events(outcome, n, query)`: events that took a side road (`dlq`, `late`, `filtered`,
  `deduplicated`), e.g. `observe_events("late", n, query)` where late events are split off;
- `observe_freshness(ages_s)`: exact freshness samples, when a writer knows each record's event
  time (the listener estimates it per batch otherwise, see `freshness`);
- `counted(outcome)`: `df.transform(counted("dlq"))` makes Spark count the rows in the same pass
  (`Dataset.observe`); the listener adds them to `featurestream_events_total{outcome="dlq"}`.
The writer's counters need no call: `featurestream.connectors.writer.metrics.history` is read at each scrape, and
so are the engine's running totals (per group, `SourceQuery.metrics`) once `watch_engine` is given them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from featurestream.ops.freshness import FreshnessWindow, batch_ages
from featurestream.ops.progress import BatchProgress

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

OBSERVATION_PREFIX = "featurestream_"
OUTCOMES = ("dlq", "late", "filtered", "deduplicated")
QUANTILES = (0.5, 0.99)
_BATCH_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


class WriterCollector(Collector):
    """The online-store writer's per-feature-group totals and last batch, read at scrape time."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        groups = self._snapshot()
        names = {
            "records_in": ("featurestream_write_records_in", "Rows handed to the online-store writer"),
            "calls": ("featurestream_write_calls", "PutRecord/BatchWriteRecord call attempts"),
            "retries": ("featurestream_write_retries", "Calls retried (throttles, 5xx, timeouts)"),
            "throttles": ("featurestream_write_throttles", "Calls answered with a throttling error"),
            "batches": ("featurestream_write_batches", "Micro-batches written"),
        }
        for key, (name, doc) in names.items():
            family = CounterMetricFamily(name, doc, labels=["feature_group"])
            for group, data in groups.items():
                family.add_metric([group], float(data["totals"].get(key, 0) or 0))
            yield family
        records = CounterMetricFamily("featurestream_write_records", "Records by outcome: written online or DLQ",
                                      labels=["feature_group", "outcome"])
        latency = GaugeMetricFamily("featurestream_write_latency_seconds",
                                    "Call latency quantiles of the last written micro-batch",
                                    labels=["feature_group", "quantile"])
        seconds = GaugeMetricFamily("featurestream_write_batch_seconds", "Duration of the last micro-batch's write",
                                    labels=["feature_group"])
        for group, data in groups.items():
            totals, last = data["totals"], data.get("last") or {}
            records.add_metric([group, "written"], float(totals.get("records_written", 0) or 0))
            records.add_metric([group, "dlq"], float(totals.get("dlq", 0) or 0))
            for q, key in ((0.5, "latency_ms_p50"), (0.99, "latency_ms_p99")):
                if last.get(key) is not None:
                    latency.add_metric([group, str(q)], float(last[key]) / 1000.0)
            if last.get("seconds") is not None:
                seconds.add_metric([group], float(last["seconds"]))
        yield records
        yield latency
        yield seconds


class FreshnessCollector(Collector):
    """Freshness as a histogram of events and as quantiles over the recent window."""

    def __init__(self, window: FreshnessWindow) -> None:
        self._window = window

    def collect(self) -> Iterator[Metric]:
        buckets, total = self._window.histogram()
        histogram = HistogramMetricFamily("featurestream_freshness_seconds",
                                          "Event time to visible in the online store, per event")
        histogram.add_metric([], buckets=buckets, sum_value=total)
        yield histogram
        quantiles = GaugeMetricFamily("featurestream_freshness_quantile_seconds",
                                      "Freshness quantiles over the events of the recent window",
                                      labels=["quantile"])
        now = time.time()
        for q in QUANTILES:
            value = self._window.quantile(q, now)
            if value is not None:
                quantiles.add_metric([str(q)], value)
        yield quantiles


# Engine totals (attribute of the engine's metrics object) → (metric, outcome label or None).
_ENGINE_FIELDS = {
    "late_events": ("featurestream_events", "late"),
    "duplicates": ("featurestream_events", "deduplicated"),
    "dlq": ("featurestream_events", "dlq"),
    "aggregated": ("featurestream_aggregated_events", None),
    "records": ("featurestream_records_emitted", None),
    "decay_records": ("featurestream_decay_records_emitted", None),
}


class EventsCollector(Collector):
    """Event outcomes from three places: Spark observations, direct calls, the engine's totals."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], float] = {}
        self._engines: dict[str, Any] = {}
        self._lock = threading.Lock()

    def add(self, query: str, outcome: str, count: float) -> None:
        with self._lock:
            self._counts[(query, outcome)] = self._counts.get((query, outcome), 0.0) + count

    def watch(self, query: str, engine: Any) -> None:
        with self._lock:
            self._engines[query] = engine

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            counts, engines = dict(self._counts), dict(self._engines)
        families = {
            "featurestream_events": CounterMetricFamily(
                "featurestream_events", "Events that did not become features, by outcome (dlq, late, filtered, "
                "deduplicated)", labels=["query", "outcome"]),
            "featurestream_aggregated_events": CounterMetricFamily(
                "featurestream_aggregated_events", "Events the engine aggregated", labels=["query"]),
            "featurestream_records_emitted": CounterMetricFamily(
                "featurestream_records_emitted", "Online records the engine emitted", labels=["query"]),
            "featurestream_decay_records_emitted": CounterMetricFamily(
                "featurestream_decay_records_emitted", "Records emitted because tiles left a window",
                labels=["query"]),
        }
        for query, engine in engines.items():
            for attribute, (name, outcome) in _ENGINE_FIELDS.items():
                value = getattr(engine, attribute, None)
                if isinstance(value, int | float):
                    if outcome is None:
                        families[name].add_metric([query], float(value))
                    else:
                        counts[(query, outcome)] = counts.get((query, outcome), 0.0) + float(value)
        for (query, outcome), value in sorted(counts.items()):
            families["featurestream_events"].add_metric([query, outcome], value)
        yield from families.values()


class JobMetrics:
    """Every metric of one job process, registered in `registry`."""

    def __init__(self, registry: CollectorRegistry, freshness_window_s: float = 600.0,
                 writer_snapshot: Callable[[], dict[str, Any]] | None = None) -> None:
        self.registry = registry
        q = ["query"]
        self.input_rows = Counter("featurestream_input_rows", "Rows read from the source", q, registry=registry)
        self.batches = Counter("featurestream_batches", "Micro-batches completed", q, registry=registry)
        self.batch_duration = Histogram("featurestream_batch_duration_seconds", "Micro-batch duration (trigger "
                                        "execution)", q, buckets=_BATCH_BUCKETS, registry=registry)
        self.input_rate = Gauge("featurestream_input_rows_per_second", "Input rate of the last batch", q,
                                registry=registry)
        self.processing_rate = Gauge("featurestream_processed_rows_per_second", "Processing rate of the last batch",
                                     q, registry=registry)
        self.last_batch = Gauge("featurestream_last_batch_id", "Id of the last completed batch", q, registry=registry)
        self.last_progress = Gauge("featurestream_last_progress_timestamp_seconds",
                                   "When the last batch completed (epoch s); alert when it stops moving",
                                   q, registry=registry)
        self.watermark_lag = Gauge("featurestream_watermark_lag_seconds",
                                   "Batch end minus the event-time watermark", q, registry=registry)
        self.newest_event_age = Gauge("featurestream_newest_event_age_seconds",
                                      "Batch end minus the newest event time read", q, registry=registry)
        self.state_rows = Gauge("featurestream_state_rows", "Rows in the state store", q, registry=registry)
        self.state_memory = Gauge("featurestream_state_memory_bytes", "State store memory", q, registry=registry)
        self.dropped = Counter("featurestream_rows_dropped_by_watermark",
                               "Rows a stateful operator dropped as later than the watermark (after partial "
                               "aggregation: a lower bound of late events)", q, registry=registry)
        self.lost = Counter("featurestream_events_lost", "Kafka records deleted before the job read them, "
                            "skipped because kafka.fail_on_data_loss is false", q, registry=registry)
        self.offsets_behind = Gauge("featurestream_source_offsets_behind_latest",
                                    "Largest Kafka partition lag after the batch (offsets)", q, registry=registry)
        self.events = EventsCollector()
        registry.register(self.events)
        self.lineage_errors = Counter("featurestream_lineage_errors", "OpenLineage events that could not be sent",
                                      registry=registry)
        self.restarts = Counter("featurestream_query_restarts", "Restarts of the queries after a failure "
                                "(profile: recovery)", registry=registry)
        self.shutdown_seconds = Gauge("featurestream_shutdown_seconds",
                                      "Time from the stop request to the queries' end", registry=registry)
        self.freshness = FreshnessWindow(freshness_window_s)
        self._exact_freshness = False
        registry.register(FreshnessCollector(self.freshness))
        if writer_snapshot is not None:
            registry.register(WriterCollector(writer_snapshot))

    def observe_progress(self, progress: BatchProgress) -> None:
        label = progress.label
        self.input_rows.labels(label).inc(progress.input_rows)
        self.batches.labels(label).inc()
        self.batch_duration.labels(label).observe(progress.duration_s)
        self.input_rate.labels(label).set(progress.input_rows_per_s)
        self.processing_rate.labels(label).set(progress.processed_rows_per_s)
        self.last_batch.labels(label).set(progress.batch_id)
        self.last_progress.labels(label).set(progress.finished)
        if progress.watermark is not None:
            self.watermark_lag.labels(label).set(progress.finished - progress.watermark)
        if progress.event_time_max is not None:
            self.newest_event_age.labels(label).set(progress.finished - progress.event_time_max)
        self.state_rows.labels(label).set(progress.state_rows)
        self.state_memory.labels(label).set(progress.state_memory_bytes)
        self.dropped.labels(label).inc(progress.dropped_by_watermark)
        if progress.offsets_behind_latest is not None:
            self.offsets_behind.labels(label).set(progress.offsets_behind_latest)
        if progress.lost_records:
            self.lost.labels(label).inc(progress.lost_records)
        for name, values in progress.observed.items():
            # `featurestream_<outcome>`, or `featurestream_<outcome>:<group>` in a query of several groups.
            outcome, _, group = name.removeprefix(OBSERVATION_PREFIX).partition(":")
            if name.startswith(OBSERVATION_PREFIX) and outcome in OUTCOMES:
                self.events.add(f"{group}-features" if group else label, outcome, values.get("rows", 0.0))
        if not self._exact_freshness:
            ages, weight = batch_ages(progress)
            if ages:
                self.freshness.add(progress.finished, ages, weight)

    def observe_events(self, outcome: str, count: float, query: str = "") -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; one of {', '.join(OUTCOMES)}")
        if count:
            self.events.add(query, outcome, count)

    def watch_engine(self, query: str, engine: Any) -> None:
        """Expose an engine's running totals (late_events, duplicates, aggregated, ...) at each scrape."""
        self.events.watch(query, engine)

    def observe_freshness(self, ages_s: Iterable[float], at: float | None = None, weight: float = 1.0) -> None:
        """Samples from the writer (`weight` events each); from the first call on, the listener's
        per-batch estimate stops."""
        self._exact_freshness = True
        self.freshness.add(time.time() if at is None else at, list(ages_s), weight)


_lock = threading.Lock()
_default: JobMetrics | None = None


def _writer_snapshot() -> dict[str, Any]:
    from featurestream.connectors.writer.metrics import history

    return history.snapshot()


def job_metrics() -> JobMetrics:
    """The process's metrics, on prometheus_client's default registry (with process_* metrics)."""
    global _default
    with _lock:
        if _default is None:
            # `_created` series double the output and no dashboard of ours uses them.
            disable_created_metrics()
            _default = JobMetrics(REGISTRY, writer_snapshot=_writer_snapshot)
        return _default


def observe_events(outcome: str, count: float, query: str = "") -> None:
    job_metrics().observe_events(outcome, count, query)


def observe_freshness(ages_s: Iterable[float], at: float | None = None, weight: float = 1.0) -> None:
    job_metrics().observe_freshness(ages_s, at, weight)


def counted(outcome: str) -> Callable[[DataFrame], DataFrame]:
    """`df.transform(counted("dlq"))`: Spark counts the rows as it streams them, at no extra pass."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; one of {', '.join(OUTCOMES)}")

    def observe(frame: DataFrame) -> DataFrame:
        from pyspark.sql import functions as F

        return frame.observe(OBSERVATION_PREFIX + outcome, F.count(F.lit(1)).alias("rows"))

    return observe
