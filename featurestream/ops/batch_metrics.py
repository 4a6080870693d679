"""Run metrics of the batch jobs (compact, training-set; backfill and consistency reuse it), for Prometheus.

A batch run ends before anything could scrape it, so its metrics are published once, at its end:
pushed to a Pushgateway (`pushadd`, HTTP POST, so a failed run replaces its own numbers but leaves
the last *successful* run's `featurestream_batch_last_success_timestamp_seconds` in place) and/or
written for node_exporter's textfile collector (atomically; a failed run carries the previous
success time over from the file it replaces). Every series carries `batch_job` (compact,
training_set, ...) and `target` (which config or set), so one alert rule covers every job whether
it was pushed or collected from a file:

    featurestream_batch_duration_seconds            wall time of the last run
    featurestream_batch_input_rows / _output_rows   rows read / written by the last run
    featurestream_batch_input_files / _output_files files read / written by the last run
    featurestream_batch_groups{outcome}             units done / failed in the last run
    featurestream_batch_last_run_timestamp_seconds  when the last run ended (any outcome)
    featurestream_batch_last_run_success            1 when the last run succeeded, else 0
    featurestream_batch_last_success_timestamp_seconds  when a run last succeeded

A job may add gauges of its own (`BatchRun.gauges`, e.g. `featurestream_consistency_*`); they are
published with the run's, under the same grouping key.

Publishing never fails a job: an unreachable gateway or an unwritable folder is one warning line.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway, write_to_textfile
from prometheus_client.parser import text_string_to_metric_families

from featurestream.config.profile import BatchMetricsSpec

log = logging.getLogger(__name__)

PREFIX = "featurestream_batch_"
LAST_SUCCESS = PREFIX + "last_success_timestamp_seconds"
# The Pushgateway's `job` label (part of the grouping key with batch_job and target).
GATEWAY_JOB = "featurestream"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class JobGauge:
    """One sample of a job's own gauge: full metric name, help, its labels beside batch_job/target."""

    name: str
    doc: str
    labels: dict[str, str]
    value: float


@dataclass
class BatchRun:
    """What one run did; the command fills it in, `published_run` publishes it when the run ends."""

    batch_job: str
    target: str
    started: float = field(default_factory=time.time)
    input_rows: int | None = None
    output_rows: int | None = None
    input_files: int | None = None
    output_files: int | None = None
    groups_done: int = 0
    groups_failed: int = 0
    # None until the command says; a run that raises is a failure, one that ends quietly a success.
    succeeded: bool | None = None
    ended: float | None = None
    gauges: list[JobGauge] = field(default_factory=list)

    @property
    def labels(self) -> dict[str, str]:
        return {"batch_job": self.batch_job, "target": self.target}


def registry_of(run: BatchRun, last_success: float | None) -> CollectorRegistry:
    """The run's gauges in a registry of their own (never the process's default one)."""
    registry = CollectorRegistry(auto_describe=True)
    names = ["batch_job", "target"]
    values = run.labels

    def gauge(name: str, doc: str, value: float | None, extra: dict[str, str] | None = None) -> None:
        if value is None:
            return
        labels = [*names, *(extra or {})]
        metric = Gauge(PREFIX + name, doc, labels, registry=registry)
        metric.labels(**values, **(extra or {})).set(value)

    ended = run.ended if run.ended is not None else time.time()
    # A failed run reports what it finished and 0 for what it never counted: with the gateway's
    # POST a missing series would otherwise keep an older run's number.
    unknown = None if run.succeeded else 0
    gauge("duration_seconds", "Wall time of the last run", ended - run.started)
    gauge("input_rows", "Rows the last run read", _or(run.input_rows, unknown))
    gauge("output_rows", "Rows the last run wrote", _or(run.output_rows, unknown))
    gauge("input_files", "Files the last run read", _or(run.input_files, unknown))
    gauge("output_files", "Files the last run wrote", _or(run.output_files, unknown))
    groups = Gauge(PREFIX + "groups", "Units of work of the last run (feature groups, sets) by outcome",
                   [*names, "outcome"], registry=registry)
    groups.labels(**values, outcome="done").set(run.groups_done)
    groups.labels(**values, outcome="failed").set(run.groups_failed)
    gauge("last_run_timestamp_seconds", "When the last run ended (Unix time), whatever its outcome", ended)
    gauge("last_run_success", "1 if the last run succeeded, else 0", 1.0 if run.succeeded else 0.0)
    gauge("last_success_timestamp_seconds", "When a run last succeeded (Unix time)", last_success)
    _add_job_gauges(registry, run)
    return registry


def _add_job_gauges(registry: CollectorRegistry, run: BatchRun) -> None:
    """The job's own gauges, one metric per name (its samples' label names must agree)."""
    metrics: dict[str, Gauge] = {}
    for sample in run.gauges:
        metric = metrics.get(sample.name)
        if metric is None:
            metric = Gauge(sample.name, sample.doc, ["batch_job", "target", *sample.labels], registry=registry)
            metrics[sample.name] = metric
        metric.labels(**run.labels, **sample.labels).set(sample.value)


def _or(value: int | None, fallback: int | None) -> int | None:
    return fallback if value is None else value


def textfile_path(directory: str, run: BatchRun) -> Path:
    """One file per job and target: runs of other jobs never overwrite each other's."""
    name = _UNSAFE.sub("_", f"featurestream_{run.batch_job}_{run.target}").strip("_")
    return Path(directory) / f"{name}.prom"


def previous_success(path: Path) -> float | None:
    """The last success time recorded in an earlier file, to carry it over a failed run."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS:
                    return float(sample.value)
    except ValueError:  # a file someone else garbled: start afresh
        return None
    return None


def _warn(what: str, exc: BaseException, run: BatchRun) -> None:
    log.warning(json.dumps({"event": what, "batch_job": run.batch_job, "target": run.target,
                            "error": str(exc)[:300]}))


def publish(run: BatchRun, spec: BatchMetricsSpec) -> None:
    """Push and/or write the run's metrics, as configured; never raises."""
    if run.ended is None:
        run.ended = time.time()
    success_time = run.ended if run.succeeded else None
    if spec.pushgateway:
        try:
            # POST: only the metric names pushed now are replaced, so a failure keeps the gateway's
            # last success time (a PUT would drop it).
            pushadd_to_gateway(spec.pushgateway, job=GATEWAY_JOB, registry=registry_of(run, success_time),
                               grouping_key=run.labels, timeout=spec.timeout_s)
        except Exception as exc:
            _warn("batch_metrics_push_failed", exc, run)
    if spec.textfile_dir:
        path = textfile_path(spec.textfile_dir, run)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            kept = success_time if success_time is not None else previous_success(path)
            # prometheus_client writes a temporary file and renames it: the collector never sees half a file.
            write_to_textfile(str(path), registry_of(run, kept))
        except Exception as exc:
            _warn("batch_metrics_textfile_failed", exc, run)


@contextmanager
def published_run(spec: BatchMetricsSpec, batch_job: str, target: str) -> Iterator[BatchRun]:
    """Time the block and publish its metrics at the end, also when it raises (then as a failure)."""
    run = BatchRun(batch_job, target)
    try:
        yield run
    except BaseException:
        run.succeeded = False
        if not run.groups_failed and not run.groups_done:
            run.groups_failed = 1
        publish(run, spec)
        raise
    if run.succeeded is None:
        run.succeeded = True
    publish(run, spec)
