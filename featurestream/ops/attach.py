"""Metrics for code that starts queries itself (the demo, notebooks): one call, one close.

    ops = attach(spark, profile)        # serves /metrics, listens to every query of `spark`
    print(f"metrics: {ops.url}")
    queries = start_stream(spark, spec, profile)
    ops.watch(queries)                  # the engine's running totals too
    ...
    ops.close()

The streaming command does the same and more (lineage, graceful stop); see commands/stream.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from featurestream.config.profile import EnvironmentProfile
from featurestream.durations import parse_duration_ms
from featurestream.ops.listener import OpsListener, drain
from featurestream.ops.metrics import JobMetrics, job_metrics
from featurestream.ops.server import MetricsServer, start_metrics_server, write_textfile

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass
class OpsHandle:
    spark: SparkSession
    profile: EnvironmentProfile
    metrics: JobMetrics
    listener: OpsListener
    server: MetricsServer | None

    @property
    def url(self) -> str | None:
        return self.server.url if self.server is not None else None

    def watch(self, queries: Any) -> None:
        """Expose the engine totals of `start_stream`'s result (if the engine keeps them)."""
        engine = getattr(queries, "metrics", None)
        if engine is not None:
            self.metrics.watch_engine(str(queries.features.name), engine)

    def close(self) -> None:
        drain(self.spark)
        self.spark.streams.removeListener(self.listener)
        if self.profile.metrics.textfile:
            write_textfile(self.metrics.registry, self.profile.metrics.textfile)
        if self.server is not None:
            self.server.stop()


def attach(spark: SparkSession, profile: EnvironmentProfile) -> OpsHandle:
    metrics = job_metrics()
    metrics.freshness.window_s = parse_duration_ms(profile.metrics.freshness_window) / 1000.0
    server = (start_metrics_server(metrics.registry, profile.metrics.host, profile.metrics.port)
              if profile.metrics.enabled else None)
    listener = OpsListener(metrics)
    spark.streams.addListener(listener)
    return OpsHandle(spark, profile, metrics, listener, server)
