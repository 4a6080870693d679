"""Small files (manifest, export state) and folders on any Hadoop file system: local paths, s3a://.

Going through the session's Hadoop FileSystem means the manifest lands wherever Spark wrote the
data, with the same credentials and endpoint settings (featurestream.io.s3a).
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from pyspark.sql import SparkSession

from featurestream.io import hadoop_fs, s3a


def prepare(spark: SparkSession, *paths: str | None) -> None:
    """Point S3A at the local endpoint (moto) for the buckets of these paths, when one is set."""
    buckets = sorted({urlparse(p).netloc for p in paths if p and p.startswith(("s3a://", "s3://"))})
    if buckets:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        s3a.configure_session(spark, s3a.endpoint_from_env(), region, buckets)


def normalise(path: str) -> str:
    return s3a.to_s3a(path)


exists = hadoop_fs.exists  # the training package reads and writes its files through this module


def delete(spark: SparkSession, path: str) -> None:
    fs, hadoop_path = hadoop_fs.filesystem(spark, path)
    if fs.exists(hadoop_path):
        fs.delete(hadoop_path, True)


def read_text(spark: SparkSession, path: str) -> str | None:
    return hadoop_fs.read_text(spark, path) if exists(spark, path) else None


def rename(spark: SparkSession, source: str, target: str) -> None:
    """Move a folder (a rename on HDFS and local disks; copy + delete on S3)."""
    fs, source_path = hadoop_fs.filesystem(spark, source)
    _, target_path = hadoop_fs.filesystem(spark, target)
    if not fs.rename(source_path, target_path):
        raise OSError(f"could not move {source} to {target}")
