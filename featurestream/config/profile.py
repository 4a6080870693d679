"""An environment profile (`conf/environments/<name>.yaml`): where things run, not what they compute.

Secrets never live here: credentials come from the AWS default chain, the environment or secret
files. Values may reference the environment as `${VAR}` or `${VAR:-default}` (see loader).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from featurestream.config.base import Frozen

_SECRET_WORDS = ("password", "secret", "token", "access_key", "secret_key")


class KafkaSpec(Frozen):
    bootstrap_servers: str = Field(min_length=1)
    # Passed to Spark's Kafka source as `kafka.<key>` (security.protocol, sasl.mechanism, ...).
    options: dict[str, str] = {}
    max_offsets_per_trigger: int | None = Field(default=None, gt=0)

    @field_validator("options")
    @classmethod
    def _no_inline_secrets(cls, options: dict[str, str]) -> dict[str, str]:
        for key in options:
            if any(word in key.lower() for word in _SECRET_WORDS) and "jaas" not in key.lower():
                raise ValueError(f"{key!r} looks like a secret: pass it through the environment, not the file")
        return options


class FeatureStoreSpec(Frozen):
    region: str = "us-east-1"
    # Where the offline store lives; None = online only.
    offline_store_s3_uri: str | None = None
    role_arn: str | None = None
    # Writer settings (the sink runs on the executors).
    threads_per_partition: int = Field(default=8, ge=1, le=64)
    max_attempts: int = Field(default=8, ge=1, le=50)


class SparkSpec(Frozen):
    master: str | None = "local[2]"
    # Fixed before the first checkpoint: Spark refuses to change it for an existing checkpoint.
    shuffle_partitions: int = Field(default=4, ge=1, le=10_000)
    trigger_interval: str = "5 seconds"
    conf: dict[str, str] = {}


class EnvironmentProfile(Frozen):
    name: str
    kind: Literal["local", "aws"] = "local"
    kafka: KafkaSpec
    feature_store: FeatureStoreSpec = FeatureStoreSpec()
    spark: SparkSpec = SparkSpec()
    checkpoint_root: str = Field(min_length=1)
    dlq_path: str = Field(min_length=1)
