"""How many files each output partition gets, and how rows reach exactly one file each.

Sizing: a partition's expected compressed bytes (what it holds now plus the new source bytes
times the learned output/source ratio) divided by the target size, rounded up, so files stay
at or under the target. Rows of a partition are spread over its files by a hash of the record
identifier, so all versions of a row meet in one file (and one task).

One Spark task per output file, without a second shuffle: every file gets an integer key whose
Spark hash partition is exactly that file's task (found by computing Spark's Murmur3 hash of
0, 1, 2, ... until every task has a key). Repartitioning by that key puts each file's rows alone in one task; the
dedup window then sorts by (partition, key, record identifier, event time), which is also the
order the partitioned writer needs, so each task writes one sorted file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DateType, IntegerType

from featurestream.compaction.errors import CompactionError
from featurestream.compaction.rules import DATE, HOUR

FILE_KEY = "_fs_file_key"
_FILE_KEYS = "_fs_file_keys"


def partition_key_of_hour(hour: datetime, partition_by: str) -> str:
    """The output partition (relative folder) holding a source hour partition."""
    key = f"{DATE}={hour:%Y-%m-%d}"
    return f"{key}/{HOUR}={hour.hour}" if partition_by == "hour" else key


def parse_partition_key(key: str) -> tuple[datetime, int | None]:
    parts = dict(part.split("=", 1) for part in key.split("/"))
    try:
        day = datetime.strptime(parts[DATE], "%Y-%m-%d")
        hour = int(parts[HOUR]) if HOUR in parts else None
    except (KeyError, ValueError) as exc:
        raise CompactionError(f"{key!r} is not an output partition") from exc
    return day, hour


def files_for(estimated_bytes: float, target_bytes: int) -> int:
    return max(1, math.ceil(estimated_bytes / target_bytes))


_C1, _C2, _MASK = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
SPARK_HASH_SEED = 42


def _rotl(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (32 - bits))) & _MASK


def spark_hash_int(value: int, seed: int = SPARK_HASH_SEED) -> int:
    """Spark's `hash()` of an int column (Murmur3 x86_32, seed 42), as a signed 32-bit int.

    The same function places rows in `repartition(n, col)`: partition = pmod(hash, n).
    """
    k1 = (value & _MASK) * _C1 & _MASK
    k1 = _rotl(k1, 15) * _C2 & _MASK
    h1 = _rotl(seed & _MASK ^ k1, 13)
    h1 = (h1 * 5 + 0xE6546B64) & _MASK
    h1 ^= 4
    h1 ^= h1 >> 16
    h1 = h1 * 0x85EBCA6B & _MASK
    h1 ^= h1 >> 13
    h1 = h1 * 0xC2B2AE35 & _MASK
    h1 ^= h1 >> 16
    return h1 - (1 << 32) if h1 & 0x80000000 else h1


def hash_partition_keys(count: int) -> list[int]:
    """Integers v_0..v_{count-1} that `repartition(count, v)` sends to partitions 0..count-1."""
    found: dict[int, int] = {}
    value = 0
    while len(found) < count:
        found.setdefault(spark_hash_int(value) % count, value)
        value += 1
    return [found[k] for k in range(count)]


def assign_file_keys(files_per_partition: Mapping[str, int]) -> dict[str, list[int]]:
    """Each partition's list of file keys (disjoint; their union is one hash key per task)."""
    total = sum(files_per_partition.values())
    keys = hash_partition_keys(total)
    out: dict[str, list[int]] = {}
    start = 0
    for partition in sorted(files_per_partition):
        n = files_per_partition[partition]
        out[partition] = keys[start:start + n]
        start += n
    return out


def plan_frame(spark: SparkSession, keys: Mapping[str, list[int]], partition_by: str) -> DataFrame:
    """A small table: partition columns → the partition's file keys (broadcast-joined).

    Built from literals, so it is a local relation: no Python worker, no job to broadcast it.
    """
    rows = []
    for partition, file_keys in sorted(keys.items()):
        day, hour = parse_partition_key(partition)
        values = [F.lit(day.date()).cast(DateType()).alias(DATE)]
        if partition_by == "hour":
            values.append(F.lit(hour).cast(IntegerType()).alias(HOUR))
        values.append(F.array(*[F.lit(k) for k in file_keys]).cast(ArrayType(IntegerType())).alias(_FILE_KEYS))
        rows.append(F.struct(*values))
    return spark.range(1).select(F.inline(F.array(*rows)))


def with_file_key(df: DataFrame, plan: DataFrame, partition_cols: list[str], record_identifier: str) -> DataFrame:
    """Add FILE_KEY: null for rows of a partition that is not in the plan."""
    joined = df.join(F.broadcast(plan), on=partition_cols, how="left")
    index = F.pmod(F.xxhash64(F.col(f"`{record_identifier}`")), F.size(_FILE_KEYS)) + 1
    key = F.when(F.col(_FILE_KEYS).isNotNull(), F.element_at(F.col(_FILE_KEYS), index.cast("int")))
    return joined.withColumn(FILE_KEY, key).drop(_FILE_KEYS)


def with_bucket_key(df: DataFrame, keys: list[int], record_identifier: str) -> DataFrame:
    """FILE_KEY for an unpartitioned output (the snapshot): one of `keys` by record hash."""
    array = F.array(*[F.lit(k) for k in keys])
    index = F.pmod(F.xxhash64(F.col(f"`{record_identifier}`")), F.lit(len(keys))) + 1
    return df.withColumn(FILE_KEY, F.element_at(array, index.cast("int")))
