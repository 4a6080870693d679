"""What the driver reads from Spark to size the per-worker rate budget."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_LOCAL = re.compile(r"local(?:-cluster)?\[(\d+|\*)")


def num_partitions(frame: DataFrame) -> int:
    """Partitions of `frame` as it will run, from the JVM plan (`.rdd` would add a Python pass)."""
    return int(frame._jdf.queryExecution().toRdd().getNumPartitions())


def task_slots(spark: SparkSession, executors: int | None) -> tuple[int, int]:
    """(executors, task slots per executor): one Python worker writes per busy slot."""
    sc = spark.sparkContext
    master = sc.master or ""
    if _LOCAL.match(master) or master == "local":
        return 1, max(1, sc.defaultParallelism)
    conf = sc.getConf()
    cores = int(conf.get("spark.executor.cores", "1") or 1)
    if executors is None:
        configured = int(conf.get("spark.executor.instances", "0") or 0)
        # Registered executors (the driver's block manager counts as one).
        registered = sc._jsc.sc().getExecutorMemoryStatus().size() - 1
        executors = configured or max(1, registered)
    return executors, max(1, cores)
