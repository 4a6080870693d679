"""SparkSession set-up. Library code adjusts a Builder; nobody builds a session at import time."""

from __future__ import annotations

import os

from pyspark.sql import SparkSession

from featurestream.config.profile import SparkSpec
from featurestream.jars import aws_connector_jars, spark_jars


def configure_builder(
    builder: SparkSession.Builder,
    spark: SparkSpec,
    *,
    with_aws_connector: bool = False,
) -> SparkSession.Builder:
    """Apply a profile's Spark settings and the local jars to `builder`.

    `master` is left alone when the profile has none (spark-submit decides on a cluster).
    """
    if spark.master:
        builder = builder.master(spark.master)
    jars = spark_jars() + (aws_connector_jars() if with_aws_connector else [])
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    settings = {
        "spark.sql.shuffle.partitions": str(spark.shuffle_partitions),
        # Event times are UTC end to end; the online record's EventTime is written with a `Z`.
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.streaming.stateStore.providerClass":
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
        # Each batch uploads the state's changes, not new SST files; snapshots are made in the
        # background. Much less checkpoint I/O for a job that runs for months, on s3a:// above all.
        "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
        # Plans and errors print source options; Kafka SASL/SSL secrets must not be among them.
        "spark.sql.redaction.options.regex": "(?i)url|password|secret|token|jaas|credential|key",
    }
    if spark.master and spark.master.startswith("local"):
        settings.update({
            "spark.ui.enabled": "false",
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.sql.adaptive.enabled": "false",
        })
    settings.update(spark.conf)
    for key, value in settings.items():
        builder = builder.config(key, value)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return builder


def local_session(app_name: str, spark: SparkSpec | None = None, *, with_aws_connector: bool = False) -> SparkSession:
    builder = configure_builder(SparkSession.builder.appName(app_name), spark or SparkSpec(),
                                with_aws_connector=with_aws_connector)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session
