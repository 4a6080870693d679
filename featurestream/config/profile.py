"""An environment profile (`--env`, see config.profiles for the lookup): where things run, not what they compute.

Secrets never live here: credentials come from the AWS default chain, the environment or secret
files (`security.kafka_secret_options`). An option whose name looks like a secret, or whose value
carries one (a JAAS `password="..."`, a URL's `user:password@`; see config.credentials), is
refused. Every S3 URI is checked (config.locations). Values may reference the environment as
`${VAR}` or `${VAR:-default}` (see loader).
"""

from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from featurestream.config.base import Frozen
from featurestream.config.catalog import ArchiveSpec, CatalogSpec
from featurestream.config.credentials import credential_in, refuse_credentials
from featurestream.config.locations import Location, OfflineStoreUri
from featurestream.durations import parse_duration_ms

_SECRET_WORDS = ("password", "secret", "token", "access_key", "secret_key")
# Spark settings whose value is a secret (spark.authenticate.secret, fs.s3a.secret.key, ...).
_SECRET_SPARK_KEY = re.compile(r"(?i)(password|passwd|secret|token|secret[._]key|access[._]key)$")
_USE_SECRET_OPTIONS = "give it in security.kafka_secret_options (env or file)"  # noqa: S105 - a hint


def _refuse_secret_values(options: dict[str, str], hint: str) -> None:
    """A value carrying a secret (inside a JAAS string, a URL, a property list) is refused."""
    for key, value in options.items():
        found = credential_in(value)
        if found:
            raise ValueError(f"{key!r} carries {found} in its value: {hint}")


class KafkaSpec(Frozen):
    bootstrap_servers: str = Field(min_length=1)
    # Passed to Spark's Kafka source as `kafka.<key>` (security.protocol, sasl.mechanism, ...).
    options: dict[str, str] = {}
    max_offsets_per_trigger: int | None = Field(default=None, gt=0)
    # Spark's `failOnDataLoss`: fail the job when records it has not read are gone (retention,
    # a deleted topic). None = true, except in a `kind: local` profile (topics there are deleted
    # and re-created). When false, what was skipped is logged and counted
    # (`featurestream_events_lost_total`).
    fail_on_data_loss: bool | None = None

    @field_validator("options")
    @classmethod
    def _no_inline_secrets(cls, options: dict[str, str]) -> dict[str, str]:
        for key in options:
            if any(word in key.lower() for word in _SECRET_WORDS) and "jaas" not in key.lower():
                raise ValueError(f"{key!r} looks like a secret: {_USE_SECRET_OPTIONS}, not the file")
        # A JAAS config without secrets (MSK IAM, Kerberos with a keytab file) may stay here.
        _refuse_secret_values(options, _USE_SECRET_OPTIONS)
        return options


# `feature_store.driver_write_max_records` left unset: on a cluster, and with a local master.
CLUSTER_DRIVER_WRITE_MAX_RECORDS, LOCAL_DRIVER_WRITE_MAX_RECORDS = 5_000, 50_000


class FeatureStoreSpec(Frozen):
    region: str = "us-east-1"
    # Where the offline store lives (s3://bucket/prefix); None = online only.
    offline_store_s3_uri: OfflineStoreUri | None = None
    role_arn: str | None = None
    # Writer settings (the sink runs on the executors; see featurestream/connectors/writer/README.md).
    # `featurestream` is our writer; `sagemaker-connector` is AWS's FeatureStoreManager.ingest_data.
    sink: Literal["featurestream", "sagemaker-connector"] = "featurestream"
    # auto = BatchWriteRecord where the service has it, PutRecord otherwise.
    write_mode: Literal["auto", "batch", "put"] = "auto"
    threads_per_partition: int = Field(default=8, ge=1, le=64)
    # Attempts per call (first try included) before the micro-batch fails.
    max_attempts: int = Field(default=8, ge=1, le=50)
    # API calls per second this job may make, across all executors (AWS: 10,000 TPS per API per
    # account, shared by every writer of the account). None = no client-side limit.
    account_tps: float | None = Field(default=10_000, gt=0)
    # Executors sharing `account_tps`; None = read from Spark at each micro-batch.
    executors: int | None = Field(default=None, ge=1)
    # Full-jitter exponential back-off: sleep U(0, min(cap, base * 2**attempt)).
    backoff_base_ms: int = Field(default=25, ge=1, le=60_000)
    backoff_cap_ms: int = Field(default=2_000, ge=1, le=600_000)
    # Bound on one micro-batch's write, retries included; past it the batch fails and Spark
    # replays it from the checkpoint.
    batch_timeout_s: float = Field(default=300.0, gt=0)
    # Socket read timeout of one call; a timed-out call is retried like a throttle.
    call_timeout_s: float = Field(default=10.0, gt=0)
    # Records the service rejects for good go here (Parquet, local or s3a://);
    # None = `<dlq_path>/<feature group>/online-store` of the profile.
    dlq_path: Location | None = None
    # More rejects than this in one micro-batch fail it: that is a schema mismatch, not bad rows.
    dlq_max_records_per_batch: int = Field(default=100_000, ge=0)
    # Endpoint override of the featurestore runtime; None = AWS_ENDPOINT_URL_* or AWS's endpoint.
    runtime_endpoint_url: str | None = None
    # A micro-batch of at most this many records is written from the driver (its Arrow rows
    # collected from the cached batch, the writer's thread pool on the driver) instead of a
    # Spark job of Python tasks; 0 = always on the executors. Small batches spend most of their
    # time in that job's scheduling and Python workers, not in the writes. The stream also runs
    # a micro-batch as one Spark job collected to the driver when the previous one had at most
    # this many rows of output (engine.driver_batch, pipeline.SourceBatchWriter).
    # None = `driver_write_limit`: 5,000 on a cluster, 50,000 when Spark's master is local (the
    # executors' Python workers share the driver's cores: nothing to gain from them, and the
    # driver's write was cheaper at every size measured up to 50k records; README, Performance).
    driver_write_max_records: int | None = Field(default=None, ge=0, le=1_000_000)

    def driver_write_limit(self, local_master: bool) -> int:
        """`driver_write_max_records`, or its default where the job runs (see there)."""
        if self.driver_write_max_records is not None:
            return self.driver_write_max_records
        return LOCAL_DRIVER_WRITE_MAX_RECORDS if local_master else CLUSTER_DRIVER_WRITE_MAX_RECORDS

    @field_validator("offline_store_s3_uri", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        # `${VAR:-}` expands to "" when the variable is unset: no offline store then.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("runtime_endpoint_url")
    @classmethod
    def _no_url_credentials(cls, value: str | None) -> str | None:
        return value if value is None else refuse_credentials(value)

    @model_validator(mode="after")
    def _backoff_order(self) -> FeatureStoreSpec:
        if self.backoff_cap_ms < self.backoff_base_ms:
            raise ValueError("backoff_cap_ms must be at least backoff_base_ms")
        return self


class SparkSpec(Frozen):
    master: str | None = "local[2]"
    # Fixed before the first checkpoint: Spark refuses to change it for an existing checkpoint.
    shuffle_partitions: int = Field(default=4, ge=1, le=10_000)
    trigger_interval: str = "5 seconds"
    conf: dict[str, str] = {}

    @field_validator("conf")
    @classmethod
    def _no_inline_secrets(cls, conf: dict[str, str]) -> dict[str, str]:
        hint = "pass it through the environment or spark-submit, not the file"
        for key in conf:
            if _SECRET_SPARK_KEY.search(key):
                raise ValueError(f"{key!r} looks like a secret: {hint}")
        _refuse_secret_values(conf, hint)
        return conf


def _check_duration(value: str) -> str:
    parse_duration_ms(value)
    return value


def _env_port(name: str, default: int) -> int:
    """A port from the environment (the local stack's FEATURESTREAM_<X>_PORT convention)."""
    text = os.environ.get(name, "").strip()
    return int(text) if text.isdigit() else default


# The job's Prometheus port when neither the profile nor FEATURESTREAM_METRICS_PORT says otherwise.
DEFAULT_METRICS_PORT = 19464


class MetricsSpec(Frozen):
    """The Prometheus endpoint of a job (see docs/operations.md for the metric names)."""

    enabled: bool = True
    # Loopback by default: exposing it is a deployment decision (a pod port, a security group);
    # FEATURESTREAM_METRICS_HOST overrides the default (0.0.0.0 in a container).
    host: str = Field(default_factory=lambda: os.environ.get("FEATURESTREAM_METRICS_HOST") or "127.0.0.1")
    # 0 = any free port (the job logs the URL). FEATURESTREAM_METRICS_PORT overrides the default.
    port: int = Field(default_factory=lambda: _env_port("FEATURESTREAM_METRICS_PORT", DEFAULT_METRICS_PORT),
                      ge=0, le=65535)
    # Also write the final values here when the job ends (Prometheus text format), for batch runs.
    textfile: str | None = None
    # Freshness quantiles are computed over the events of this recent period.
    freshness_window: str = "10m"

    _window = field_validator("freshness_window")(lambda v: _check_duration(v))


def _env_text(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


class BatchMetricsSpec(Frozen):
    """Run metrics of a batch job (compact, training-set, ...), published once when it ends.

    A batch run is gone before anything scrapes it: its metrics go to a Prometheus Pushgateway
    (`pushgateway`, e.g. http://pushgateway:9091) and/or, as node_exporter's textfile collector
    reads them, to `<textfile_dir>/featurestream_<job>_<target>.prom`. Neither set: nothing is
    published. Both default to FEATURESTREAM_PUSHGATEWAY_URL and FEATURESTREAM_METRICS_TEXTFILE_DIR.
    """

    pushgateway: str | None = Field(default_factory=lambda: _env_text("FEATURESTREAM_PUSHGATEWAY_URL"))
    textfile_dir: str | None = Field(default_factory=lambda: _env_text("FEATURESTREAM_METRICS_TEXTFILE_DIR"))
    # A gateway that does not answer delays the end of the job by this much, never fails it.
    timeout_s: float = Field(default=10.0, gt=0, le=300)

    @field_validator("pushgateway", "textfile_dir")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        # `${VAR:-}` expands to "" when the variable is unset: not configured then.
        return value or None

    @field_validator("pushgateway")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL (e.g. http://pushgateway:9091)")
        return value


class SageMakerLineageSpec(Frozen):
    """SageMaker ML Lineage Tracking (artifacts, actions, associations; docs/operations.md#lineage)."""

    enabled: bool = False
    # False: a failing lineage API is a warning (logged, counted, in the manifest) and the job
    # finishes; true: it fails the job (exit 1, one line), for setups where the audit trail is a must.
    required: bool = False


class LineageSpec(Frozen):
    """OpenLineage run events: a JSON-lines file by default, an HTTP endpoint on request; and
    SageMaker ML Lineage Tracking (`sagemaker`), on in the aws and local profiles."""

    transport: Literal["file", "http", "none"] = "file"
    # File transport; default <FEATURESTREAM_STATE_DIR or .state>/lineage/openlineage.jsonl.
    file: str | None = None
    # HTTP transport (Marquez and friends): POST <url>/<endpoint>.
    url: str | None = None
    endpoint: str = "api/v1/lineage"
    # The *name* of the variable holding the API key, never the key itself.
    api_key_env: str | None = None
    timeout_s: float = Field(default=5.0, gt=0)
    # HTTP retries per event (back-off 0.3 s, doubling): a down backend delays a job, never fails it.
    retries: int = Field(default=3, ge=0, le=10)
    namespace: str = Field(default="featurestream", min_length=1)
    sagemaker: SageMakerLineageSpec = Field(default_factory=SageMakerLineageSpec)

    _url = field_validator("url")(lambda v: v if v is None else refuse_credentials(v, "(use api_key_env)"))

    @model_validator(mode="after")
    def _http_needs_url(self) -> LineageSpec:
        if self.transport == "http" and not self.url:
            raise ValueError("transport http needs url")
        return self


class ShutdownSpec(Frozen):
    """Graceful stop on SIGTERM/SIGINT (or when `stop_file` appears): finish the batch in flight."""

    # Longest wait for the batch in flight; past it the queries are stopped hard (the batch is
    # replayed from the checkpoint at the next start, which the writer makes harmless).
    timeout: str = "10m"
    # A path (local, s3a://, hdfs://) whose appearance stops the job like SIGTERM: for YARN and
    # other schedulers that cannot signal the driver's Python process.
    stop_file: Location | None = None
    poll_interval: str = "5s"

    _durations = field_validator("timeout", "poll_interval")(lambda v: _check_duration(v))


class RecoverySpec(Frozen):
    """Restart the queries from their checkpoints when one fails, instead of ending the job.

    A broker or the Feature Store unreachable for longer than the sources' and the writer's own
    retries last makes a micro-batch fail; the checkpoint makes a restart lose nothing. A failure
    that keeps coming back (a bug, a bad schema) still ends the job once the budget is spent.
    """

    # Restarts allowed within `window`; 0 = the first failure ends the job (exit 1).
    max_restarts: int = Field(default=5, ge=0, le=1000)
    window: str = "1h"
    # Wait before the first restart; doubled each time up to `backoff_max`.
    backoff: str = "5s"
    backoff_max: str = "5m"

    _durations = field_validator("window", "backoff", "backoff_max")(lambda v: _check_duration(v))


class SecretRef(Frozen):
    """Where a secret is read at run time: an environment variable or a (mounted) file."""

    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    file: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self


class SecuritySpec(Frozen):
    """Kafka authentication beyond `kafka.options`: secret option values and MSK IAM."""

    # Kafka client options whose values are secrets (sasl.jaas.config, ssl.keystore.password,
    # ...), read at run time and never logged; passed to Spark as `kafka.<option>`.
    kafka_secret_options: dict[str, SecretRef] = {}
    # Amazon MSK IAM auth (needs software.amazon.msk:aws-msk-iam-auth on the classpath).
    kafka_msk_iam: bool = False


class EnvironmentProfile(Frozen):
    name: str
    kind: Literal["local", "aws"] = "local"
    kafka: KafkaSpec
    feature_store: FeatureStoreSpec = FeatureStoreSpec()
    spark: SparkSpec = SparkSpec()
    checkpoint_root: Location = Field(min_length=1)
    dlq_path: Location = Field(min_length=1)
    # Factories, not shared instances: defaults that read the environment are read at load time.
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    lineage: LineageSpec = Field(default_factory=LineageSpec)
    # Run metrics of the batch jobs (training-set, ...); the streaming job has `metrics`.
    batch_metrics: BatchMetricsSpec = Field(default_factory=BatchMetricsSpec)
    shutdown: ShutdownSpec = Field(default_factory=ShutdownSpec)
    recovery: RecoverySpec = Field(default_factory=RecoverySpec)
    security: SecuritySpec = Field(default_factory=SecuritySpec)
    # The project's Apache Iceberg catalog (config.catalog); None = no Iceberg table is used.
    catalog: CatalogSpec | None = None
    # The raw event archive of the groups with `archive: true` (engine.archive), in `catalog`.
    archive: ArchiveSpec = Field(default_factory=ArchiveSpec)

    @property
    def fail_on_data_loss(self) -> bool:
        """`kafka.fail_on_data_loss`, or its default: true outside the local profile."""
        if self.kafka.fail_on_data_loss is not None:
            return self.kafka.fail_on_data_loss
        return self.kind != "local"
