"""The job's event source, Kafka or Kinesis, as one shape: Kafka's columns.

`featurestream.engine.parsing` reads `value`, `topic`, `partition`, `offset` and `timestamp`; a Kinesis
record maps onto them as data → value, streamName → topic, shardId → partition,
sequenceNumber → offset, approximateArrivalTimestamp → timestamp. The DLQ therefore names where
a bad record came from in either case.
"""

from __future__ import annotations

import os

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from featurestream.config.feature_group import FeatureGroupSpec, KafkaSourceSpec
from featurestream.config.profile import EnvironmentProfile
from featurestream.connectors.kafka_source import read_kafka
from featurestream.connectors.kinesis import KinesisReadOptions, read_kinesis


def kinesis_endpoint() -> str | None:
    """The endpoint boto3 would use for Kinesis (kinesis-local locally); None means AWS's own."""
    return os.environ.get("AWS_ENDPOINT_URL_KINESIS") or os.environ.get("AWS_ENDPOINT_URL")


def read_events(spark: SparkSession, spec: FeatureGroupSpec, profile: EnvironmentProfile) -> DataFrame:
    source = spec.source
    if isinstance(source, KafkaSourceSpec):
        return read_kafka(spark, source, profile.kafka, profile.fail_on_data_loss)
    options = KinesisReadOptions(
        stream=source.stream, connector=source.connector, region=profile.feature_store.region,
        endpoint_url=kinesis_endpoint(), starting_position=source.starting_position,
        starting_timestamp=source.starting_timestamp, max_records_per_shard=source.max_records_per_shard,
    )
    return read_kinesis(spark, options).select(
        F.col("data").alias("value"),
        F.col("streamName").alias("topic"),
        F.col("shardId").alias("partition"),
        F.col("sequenceNumber").alias("offset"),
        F.col("approximateArrivalTimestamp").alias("timestamp"),
    )
