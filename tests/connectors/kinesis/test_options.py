"""Option handling on both sides: Python validation, and the JVM source's own checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from featurestream.connectors.kinesis import KinesisReadOptions, KinesisSourceError, read_kinesis, reader_options


def test_reader_options_map_to_the_connector_keys() -> None:
    builtin = reader_options(KinesisReadOptions(stream="s", region="eu-west-1", endpoint_url="http://h:1",
                                                starting_position="AT_TIMESTAMP",
                                                starting_timestamp=datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC),
                                                max_records_per_shard=50))
    assert builtin == {"kinesis.consumerType": "GetRecords", "kinesis.streamName": "s",
                       "kinesis.region": "eu-west-1", "kinesis.endpointUrl": "http://h:1",
                       "kinesis.startingPosition": "AT_TIMESTAMP 2026-01-02T03:04:05.006Z",
                       "kinesis.maxRecordsPerShard": "50"}
    aws = reader_options(KinesisReadOptions(stream="s", connector="aws", max_records_per_shard=50))
    assert aws["kinesis.maxFetchRecordsPerShard"] == "50"
    arn = reader_options(KinesisReadOptions(stream="arn:aws:kinesis:us-east-1:123456789012:stream/s"))
    assert arn["kinesis.streamArn"].endswith(":stream/s") and "kinesis.streamName" not in arn


def test_bad_options_are_named_before_spark_runs() -> None:
    with pytest.raises(KinesisSourceError, match="starting_timestamp"):
        read_kinesis(None, {"stream": "s", "starting_position": "AT_TIMESTAMP"})  # type: ignore[arg-type]
    with pytest.raises(KinesisSourceError, match="max_records_per_shard"):
        read_kinesis(None, {"stream": "s", "max_records_per_shard": 0})  # type: ignore[arg-type]


def test_jvm_source_rejects_a_bad_option_by_name(kinesis_spark) -> None:
    with pytest.raises(Exception, match=r"kinesis\.startingPosition"):
        kinesis_spark.readStream.format("kinesis").option("kinesis.streamName", "s") \
            .option("kinesis.startingPosition", "YESTERDAY").load()
