"""AWS's Spark connector as an alternative sink (`feature_store.sink: sagemaker-connector`).

`FeatureStoreManager.ingest_data` writes the latest record per entity (same dedup as our sink,
skipped like ours when the target is `already_unique`)
with PutRecord, or BatchWriteRecord of 25 when `write_mode` is not `put`. The connector retries
by itself (its SDK's policy) and collects rows that still failed in
`get_failed_stream_ingestion_data_frame()`. Of those, records the service rejected
(ValidationError) go to the same DLQ as our writer's; anything else (throttles or 5xx after the
connector's retries, a missing group) fails the micro-batch so Spark replays it.

The connector's JVM client reads endpoints from the JVM's environment, which is fixed when the
JVM starts; a local endpoint override is therefore also set as the AWS SDK's system properties
(`aws.endpointUrlSageMaker`, `aws.endpointUrlSageMakerFeatureStoreRuntime`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from featurestream.connectors.writer.dedup import RECORDS_IN, latest_per_entity, one_per_entity
from featurestream.connectors.writer.dlq import MAX_MESSAGE_CHARS, write_frame
from featurestream.connectors.writer.errors import TooManyRejected, WriteFailed
from featurestream.connectors.writer.metrics import BatchMetrics, history
from featurestream.connectors.writer.redact import install_redaction
from featurestream.connectors.writer.retry import REJECT_CODES
from featurestream.connectors.writer.settings import WriterSettings, runtime_endpoint
from featurestream.connectors.writer.spark_env import num_partitions
from featurestream.connectors.writer.target import OnlineStoreTarget
from featurestream.errors import SinkError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession


log = logging.getLogger(__name__)

ERROR_COLUMN = "online_ingestion_error"
SINK_NAME = "sagemaker-connector"
_ISO_UTC = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"


def error_code_column(error: Column) -> Column:
    """The AWS error code of a connector error string.

    BatchWriteRecord failures read `<Code>: <message>`; PutRecord failures carry the SDK's
    message with `(Service: ..., Status Code: N, ...)` and no code, so the status decides.
    """
    from pyspark.sql import functions as F

    prefix = F.regexp_extract(error, r"^([A-Za-z]+): ", 1)
    status = F.regexp_extract(error, r"Status Code: (\d+)", 1)
    return (
        F.when(prefix != "", prefix)
        .when(F.lower(error).rlike("throttl|rate exceeded"), F.lit("ThrottlingException"))
        .when(status == "503", F.lit("ServiceUnavailable"))
        .when(status.startswith("5"), F.lit("InternalFailure"))
        .when(status == "404", F.lit("ResourceNotFound"))
        .when(status == "403", F.lit("AccessForbidden"))
        .when(status == "400", F.lit("ValidationError"))
        .otherwise(F.lit("Unknown"))
    )


def _control_endpoint(settings: WriterSettings) -> str | None:
    """An explicit endpoint serves both planes (Feature Store Local does); else the environment's."""
    return (settings.runtime_endpoint_url or os.environ.get("AWS_ENDPOINT_URL_SAGEMAKER")
            or os.environ.get("AWS_ENDPOINT_URL"))


def point_jvm_at_endpoints(spark: SparkSession, settings: WriterSettings) -> None:
    """Local runs: tell the connector's SDK (driver JVM = executor JVM) where the emulator is."""
    runtime, control = runtime_endpoint(settings), _control_endpoint(settings)
    system = spark.sparkContext._jvm.java.lang.System  # type: ignore[union-attr]
    if runtime:
        system.setProperty("aws.endpointUrlSageMakerFeatureStoreRuntime", runtime)
    if control:
        system.setProperty("aws.endpointUrlSageMaker", control)


@dataclass(frozen=True)
class ConnectorSink:
    target: OnlineStoreTarget
    settings: WriterSettings

    def feature_group_arn(self) -> str:
        """ingest_data wants the ARN; a bare name is rejected by the connector."""
        import boto3

        client = boto3.client("sagemaker", region_name=self.target.region,
                              endpoint_url=_control_endpoint(self.settings))
        described: dict[str, Any] = client.describe_feature_group(FeatureGroupName=self.target.feature_group_name)
        return str(described["FeatureGroupArn"])

    def _frame(self, records: DataFrame) -> DataFrame:
        """Latest per entity, event time as ISO-8601 UTC text (the group's String EventTime)."""
        from pyspark.sql import functions as F
        from pyspark.sql.types import DateType, TimestampNTZType, TimestampType

        t = self.target
        # Same rule as our sink: a caller whose rows are one per entity (the feature pipeline) skips the aggregate.
        pick = one_per_entity if t.already_unique else latest_per_entity
        latest = pick(records, t.record_identifier, t.event_time_feature, t.feature_names)
        zone = records.sparkSession.conf.get("spark.sql.session.timeZone") or "UTC"
        columns = []
        for f in latest.schema.fields:
            column = F.col(f"`{f.name}`")
            if isinstance(f.dataType, TimestampType):
                # date_format renders in the session zone; shift so the text is UTC.
                column = F.date_format(F.to_utc_timestamp(column, zone), _ISO_UTC).alias(f.name)
            elif isinstance(f.dataType, (TimestampNTZType, DateType)):
                column = F.date_format(column, _ISO_UTC).alias(f.name)
            columns.append(column)
        return latest.select(*columns)

    def write_batch(self, records: DataFrame, batch_id: int, rows: int | None = None) -> BatchMetrics:
        from pyspark.sql import functions as F

        install_redaction()
        started = time.monotonic()
        spark = records.sparkSession
        frame = self._frame(records).persist()
        try:
            counts = frame.agg(F.count(F.lit(1)).alias("n"), F.sum(RECORDS_IN).alias("rows")).first()
            entities = int(counts["n"]) if counts else 0
            records_in = int((counts["rows"] if counts else 0) or 0)
            partitions = num_partitions(frame)
            dlq = self._ingest(spark, frame.drop(RECORDS_IN), batch_id) if entities else 0
        finally:
            frame.unpersist()
        metrics = BatchMetrics(
            feature_group=self.target.feature_group_name, batch_id=batch_id, sink=SINK_NAME,
            mode="put" if self.settings.write_mode == "put" else "batch", records_in=records_in,
            entities=entities, records_written=entities - dlq, dlq=dlq, calls=None, retries=None,
            throttles=None, fallbacks=0, latency_ms_p50=None, latency_ms_p99=None,
            seconds=round(time.monotonic() - started, 3), write_seconds=None, partitions=partitions,
            worker_tps_budget=None, rate_wait_s=None,
        )
        history.record(metrics)
        log.info(json.dumps({"event": "online_store_batch", **metrics.to_dict()}))
        return metrics

    def _ingest(self, spark: SparkSession, frame: DataFrame, batch_id: int) -> int:
        """Run the connector; dead-letter its rejected rows; return how many were rejected."""
        from feature_store_pyspark.FeatureStoreManager import FeatureStoreManager
        from py4j.protocol import Py4JJavaError

        point_jvm_at_endpoints(spark, self.settings)
        manager = FeatureStoreManager()
        try:
            manager.ingest_data(frame, self.feature_group_arn(), None,
                                use_batch_write_record=self.settings.write_mode != "put")
            return 0
        except Py4JJavaError as exc:
            if "StreamIngestionFailureException" not in str(exc.java_exception):
                raise SinkError(f"AWS connector failed on batch {batch_id} of {self.target.feature_group_name}: "
                                f"{str(exc.java_exception)[:500]}") from exc
        return self._dead_letter(manager.get_failed_stream_ingestion_data_frame(), batch_id)

    def _dead_letter(self, failed: DataFrame, batch_id: int) -> int:
        from pyspark.sql import functions as F

        t = self.target
        error = F.col(ERROR_COLUMN)
        original = [c for c in failed.columns if c != ERROR_COLUMN]
        entries = failed.select(
            F.lit(t.feature_group_name).alias("feature_group"),
            F.col(f"`{t.record_identifier}`").cast("string").alias("record_identifier"),
            F.col(f"`{t.event_time_feature}`").cast("string").alias("event_time"),
            error_code_column(error).alias("error_code"),
            F.substring(error, 1, MAX_MESSAGE_CHARS).alias("error_message"),
            F.to_json(F.struct(*[F.col(f"`{c}`").cast("string").alias(c) for c in original])).alias("record"),
            F.lit(SINK_NAME).alias("sink"),
            F.current_timestamp().alias("failed_at"),
            F.lit(batch_id).cast("long").alias("batch_id"),
        ).persist()
        try:
            summary = {r["error_code"]: int(r["n"]) for r in entries.groupBy("error_code").agg(
                F.count(F.lit(1)).alias("n")).collect()}
            not_rejected = {code: n for code, n in summary.items() if code not in REJECT_CODES}
            if not_rejected:
                raise WriteFailed(f"AWS connector could not write {sum(not_rejected.values())} records of batch "
                                  f"{batch_id} to {t.feature_group_name} after its retries: {not_rejected}")
            rejected = sum(summary.values())
            if self.settings.dlq_path is None or rejected > self.settings.dlq_max_records_per_batch:
                raise TooManyRejected(f"{rejected} records of batch {batch_id} rejected by {t.feature_group_name} "
                                      f"(DLQ path {self.settings.dlq_path!r}, cap "
                                      f"{self.settings.dlq_max_records_per_batch})")
            write_frame(entries, self.settings.dlq_path)
        finally:
            entries.unpersist()
        log.warning(json.dumps({"event": "online_store_dlq", "feature_group": t.feature_group_name,
                                "batch_id": batch_id, "records": rejected, "path": self.settings.dlq_path,
                                "sink": SINK_NAME}))
        return rejected
