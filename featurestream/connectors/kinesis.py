"""Kinesis source: our JVM reader (format "kinesis") or the AWS Labs connector ("aws-kinesis").

Both are read through the same options and come out with the same six columns (`data`,
`streamName`, `partitionKey`, `sequenceNumber`, `shardId`, `approximateArrivalTimestamp`), so a
job switches between them with `connector: builtin | aws` alone. The AWS Labs connector has no
`shardId` column; it comes out as null there.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from featurestream.errors import FeatureStreamError
from featurestream.io.jars import KINESIS_SOURCE_JAR, module_jar

BUILTIN_FORMAT = "kinesis"
AWS_FORMAT = "aws-kinesis"
COLUMNS = ("data", "streamName", "partitionKey", "sequenceNumber", "shardId", "approximateArrivalTimestamp")


class KinesisSourceError(FeatureStreamError):
    """The Kinesis source cannot be set up: bad options, or the connector's jar is not on the classpath."""


class KinesisReadOptions(BaseModel):
    """What a job says about its Kinesis input; validated before Spark is touched."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    stream: str = Field(min_length=1, description="stream name or stream ARN")
    connector: Literal["builtin", "aws"] = "builtin"
    region: str | None = None
    endpoint_url: str | None = None
    starting_position: Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"] = "LATEST"
    starting_timestamp: datetime | None = None
    # Kinesis records per shard per micro-batch (an aggregated KPL record counts once).
    max_records_per_shard: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _timestamp_with_at_timestamp(self) -> KinesisReadOptions:
        if (self.starting_position == "AT_TIMESTAMP") != (self.starting_timestamp is not None):
            raise ValueError("starting_timestamp is required with AT_TIMESTAMP and only with it")
        return self


def builtin_jar_path() -> Path:
    """Where `make` builds our source's shaded jar (the path `spark.jars` must list)."""
    return module_jar(KINESIS_SOURCE_JAR)


def _iso_utc(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def reader_options(options: KinesisReadOptions) -> dict[str, str]:
    """Spark reader options for the chosen connector (both take the `kinesis.*` keys)."""
    opts: dict[str, str] = {"kinesis.consumerType": "GetRecords"}
    if options.stream.startswith("arn:"):
        if options.connector == "aws":
            raise KinesisSourceError("the AWS Labs connector takes a stream name, not an ARN")
        opts["kinesis.streamArn"] = options.stream
    else:
        opts["kinesis.streamName"] = options.stream
    if options.region:
        opts["kinesis.region"] = options.region
    if options.endpoint_url:
        opts["kinesis.endpointUrl"] = options.endpoint_url
    if options.starting_timestamp is not None:
        # the AWS Labs spelling; our source reads it too
        opts["kinesis.startingPosition"] = f"AT_TIMESTAMP {_iso_utc(options.starting_timestamp)}"
    else:
        opts["kinesis.startingPosition"] = options.starting_position
    if options.max_records_per_shard is not None:
        key = "kinesis.maxRecordsPerShard" if options.connector == "builtin" else "kinesis.maxFetchRecordsPerShard"
        opts[key] = str(options.max_records_per_shard)
    return opts


def _validated(options: KinesisReadOptions | Mapping[str, Any]) -> KinesisReadOptions:
    if isinstance(options, KinesisReadOptions):
        return options
    try:
        return KinesisReadOptions.model_validate(dict(options))
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "options"
        raise KinesisSourceError(f"kinesis source: {field}: {first['msg']}") from e


def _normalised(df: DataFrame) -> DataFrame:
    present = set(df.columns)
    columns: list[Column] = [
        F.col(name) if name in present else F.lit(None).cast("string").alias(name) for name in COLUMNS
    ]
    return df.select(*columns)


def read_kinesis(spark: SparkSession, options: KinesisReadOptions | Mapping[str, Any]) -> DataFrame:
    """A streaming DataFrame over the stream, from our source or the AWS Labs one as configured."""
    opts = _validated(options)
    fmt = BUILTIN_FORMAT if opts.connector == "builtin" else AWS_FORMAT
    try:
        df = spark.readStream.format(fmt).options(**reader_options(opts)).load()
    except Exception as e:  # py4j/AnalysisException: the only signal for a missing data source
        if "DATA_SOURCE_NOT_FOUND" in str(e) or "Failed to find data source" in str(e):
            hint = (f"build it with `make kinesis-source` and put {builtin_jar_path()} on spark.jars"
                    if opts.connector == "builtin" else "add the AWS Labs connector jar to spark.jars")
            raise KinesisSourceError(f"data source {fmt!r} not on the classpath: {hint}") from e
        raise
    return _normalised(df)
