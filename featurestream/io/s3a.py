"""Hadoop S3A wiring for a custom S3 endpoint (moto locally, any S3-compatible store).

On AWS nothing is needed: S3A finds the region and the credentials itself (instance profile,
IRSA, environment). Against a local endpoint S3A needs the endpoint, path-style access and plain
HTTP. The settings can go on a Builder before the session exists, or on a running session's Hadoop
configuration; both can be scoped to buckets (`fs.s3a.bucket.<b>.*`), which is what a shared
session needs: another library (the SageMaker connector) sets the global `fs.s3a.endpoint` to
AWS, and per-bucket keys win over global ones.

Credentials are never written here: S3A's default chain reads AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY from the environment (dummy `testing` values locally).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def endpoint_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The S3 endpoint the AWS SDKs would use: AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL."""
    env = os.environ if env is None else env
    return env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None


def s3a_options(endpoint: str | None, region: str, buckets: Iterable[str] = ()) -> dict[str, str]:
    """Hadoop keys (without `spark.hadoop.`) that point S3A at `endpoint` for the given buckets.

    No endpoint means AWS itself: nothing to set. No buckets means every bucket (global keys).
    """
    if not endpoint:
        return {}
    values = {
        "endpoint": endpoint,
        "endpoint.region": region,
        "path.style.access": "true",
        "connection.ssl.enabled": "true" if endpoint.startswith("https://") else "false",
        # A local endpoint answers fast; don't let a stopped one stall a test for minutes.
        "attempts.maximum": "3",
        "retry.limit": "3",
    }
    names = list(buckets)
    prefixes = [f"fs.s3a.bucket.{b}." for b in names] if names else ["fs.s3a."]
    return {prefix + key: value for prefix in prefixes for key, value in values.items()}


def configure_builder(
    builder: SparkSession.Builder, endpoint: str | None, region: str, buckets: Iterable[str] = ()
) -> SparkSession.Builder:
    for key, value in s3a_options(endpoint, region, buckets).items():
        builder = builder.config(f"spark.hadoop.{key}", value)
    return builder


def configure_session(spark: SparkSession, endpoint: str | None, region: str, buckets: Iterable[str] = ()) -> None:
    """Set the options on a running session's Hadoop configuration.

    Set them before the first access to a bucket: Hadoop caches one FileSystem per bucket.
    """
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in s3a_options(endpoint, region, buckets).items():
        conf.set(key, value)


def to_s3a(uri: str) -> str:
    """`s3://b/k` → `s3a://b/k` (what Spark outside EMR reads); other URIs unchanged."""
    return "s3a://" + uri[len("s3://"):] if uri.startswith("s3://") else uri
