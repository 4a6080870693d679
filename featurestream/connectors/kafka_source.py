"""Kafka source: Spark's built-in `kafka` format with options from the profile."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from featurestream.config.feature_group import KafkaSourceSpec
from featurestream.config.profile import KafkaSpec


def kafka_options(source: KafkaSourceSpec, kafka: KafkaSpec, fail_on_data_loss: bool) -> dict[str, str]:
    """Spark's Kafka source options; `fail_on_data_loss` is the profile's resolved setting."""
    options = {
        "kafka.bootstrap.servers": kafka.bootstrap_servers,
        "subscribe": source.topic,
        "startingOffsets": source.starting_offsets,
        "failOnDataLoss": str(fail_on_data_loss).lower(),
    }
    if kafka.max_offsets_per_trigger:
        options["maxOffsetsPerTrigger"] = str(kafka.max_offsets_per_trigger)
    options.update({f"kafka.{k}": v for k, v in kafka.options.items()})
    return options


def read_kafka(spark: SparkSession, source: KafkaSourceSpec, kafka: KafkaSpec, fail_on_data_loss: bool) -> DataFrame:
    return spark.readStream.format("kafka").options(**kafka_options(source, kafka, fail_on_data_loss)).load()
