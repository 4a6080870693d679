"""A JVM class by its full name, for calls from Python through py4j.

`spark.sparkContext._jvm.org.apache.hadoop.fs.Path` resolves the name one segment at a time, and
py4j tries each of `org`, `org.apache`, ... as a class first: every failed lookup scans every jar
on the driver's classpath. A backfill makes hundreds of such calls per chunk (moving each output
file), which showed as a quarter of the JVM's CPU in a profile. Naming the class whole skips the
segment lookups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def java_class(spark: SparkSession, name: str) -> Any:
    """The class `name` (e.g. `org.apache.hadoop.fs.Path`): call it to construct, or get its statics."""
    from py4j.java_gateway import JavaClass

    gateway: Any = spark.sparkContext._gateway
    return JavaClass(name, gateway._gateway_client)
