"""Small reads through the JVM's Hadoop FileSystem: one code path for local, s3a:// and hdfs://.

Used for the few files the driver looks at itself (checkpoint metadata, a stop marker, the
training-set manifest), with the session's Hadoop configuration, so S3A endpoints and credentials
are the ones Spark uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def filesystem(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    """The Hadoop FileSystem serving `uri` and its Path."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def exists(spark: SparkSession, uri: str) -> bool:
    fs, path = filesystem(spark, uri)
    return bool(fs.exists(path))


def glob(spark: SparkSession, pattern: str) -> list[str]:
    """Paths matching a Hadoop glob (`*`, `{a,b}`), as strings; [] when nothing matches."""
    fs, path = filesystem(spark, pattern)
    statuses = fs.globStatus(path)
    return [] if statuses is None else sorted(str(status.getPath().toString()) for status in statuses)


def list_names(spark: SparkSession, uri: str) -> list[str]:
    fs, path = filesystem(spark, uri)
    if not fs.exists(path):
        return []
    return sorted(str(status.getPath().getName()) for status in fs.listStatus(path))


def read_text(spark: SparkSession, uri: str) -> str:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    fs, path = filesystem(spark, uri)
    stream = fs.open(path)
    try:
        return str(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
    finally:
        stream.close()
