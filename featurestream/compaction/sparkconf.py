"""Session settings a run applies around its own Spark actions (the session may be shared)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pyspark.sql import Observation, SparkSession

# Settings of every action of a run:
# - microsecond timestamps in the output (not the legacy INT96) for any reader;
# - a small per-file open cost, so a read task packs hundreds of the tiny source files instead of
#   ~32 (the 4 MB default): a fraction of the tasks and ~20% less CPU for 10,000 files (measured,
#   bench/compaction_bench.py). Parallelism is kept: Spark still splits by bytes per core.
JOB_CONF = {
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.files.openCostInBytes": str(256 * 1024),
}


@contextlib.contextmanager
def scoped_conf(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    """Set session SQL settings for the duration of a block, then restore them."""
    conf = spark.conf
    saved: dict[str, str | None] = {key: conf.get(key, None) for key in settings}
    for key, value in settings.items():
        conf.set(key, value)
    try:
        yield
    finally:
        for key, previous in saved.items():
            if previous is None:
                conf.unset(key)
            else:
                conf.set(key, previous)


def listing_conf(spark: SparkSession, *, remote: bool, paths: int) -> contextlib.AbstractContextManager[None]:
    """How Spark looks up the paths of a read (it does so eagerly, inside `.parquet`).

    By default more than 32 paths start a listing job with one task per path (up to 10,000
    tasks), which costs far more than the read of small files. Local paths are looked up on the
    driver; remote ones with one task per core.
    """
    if remote:
        return scoped_conf(spark, {"spark.sql.sources.parallelPartitionDiscovery.parallelism":
                                   str(max(2, spark.sparkContext.defaultParallelism))})
    return scoped_conf(spark, {"spark.sql.sources.parallelPartitionDiscovery.threshold": str(paths + 1)})


def metrics(observation: Observation) -> dict[str, int]:
    """An observation's values as ints (call only after its action succeeded: `get` blocks)."""
    values: dict[str, Any] = observation.get
    return {k: int(v or 0) for k, v in values.items()}
