"""Kafka source: Spark's built-in `kafka` format with options from the profile."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from featurestream.config.feature_group import KafkaSourceSpec
from featurestream.config.profile import KafkaSpec


def kafka_options(source: KafkaSourceSpec, kafka: KafkaSpec) -> dict[str, str]:
    options = {
        "kafka.bootstrap.servers": kafka.bootstrap_servers,
        "subscribe": source.topic,
        "startingOffsets": source.starting_offsets,
        # A topic deleted and re-created in development must not stop the job silently.
        "failOnDataLoss": "false",
    }
    if kafka.max_offsets_per_trigger:
        options["maxOffsetsPerTrigger"] = str(kafka.max_offsets_per_trigger)
    options.update({f"kafka.{k}": v for k, v in kafka.options.items()})
    return options


def read_kafka(spark: SparkSession, source: KafkaSourceSpec, kafka: KafkaSpec) -> DataFrame:
    return spark.readStream.format("kafka").options(**kafka_options(source, kafka)).load()
