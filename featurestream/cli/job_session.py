"""The Spark session a CLI command runs its job in (`stream`, `backfill`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from featurestream.config.profile import EnvironmentProfile

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from featurestream.iceberg import IcebergCatalog


def s3a_buckets(uris: Iterable[str]) -> list[str]:
    """The buckets of the `s3a://` URIs among `uris` (and `s3://`, which S3A serves outside EMR), sorted, each once."""
    return sorted({u.split("://", 1)[1].split("/", 1)[0] for u in uris if u.startswith(("s3a://", "s3://"))})


def job_session(app_name: str, profile: EnvironmentProfile, uris: Iterable[str], *,
                with_aws_connector: bool = False, catalog: IcebergCatalog | None = None) -> tuple[SparkSession, bool]:
    """The job's session and whether we created it (then we also stop it): the profile's Spark
    settings and S3A for the buckets of `uris`; with `catalog`, the project's Iceberg catalog (its
    warehouse's and the offline store's buckets through S3A too)."""
    from pyspark.sql import SparkSession

    from featurestream.io import s3a
    from featurestream.io.checkpoint_files import use_rename_on_local_disk
    from featurestream.spark import configure_builder, start_session

    existed = SparkSession.getActiveSession() is not None
    from featurestream import iceberg

    uris = list(uris)
    if catalog is not None:
        uris += [u for u in (catalog.spec.warehouse, profile.feature_store.offline_store_s3_uri) if u]
    buckets = s3a_buckets(uris)
    builder = configure_builder(SparkSession.builder.appName(app_name), profile.spark,
                                with_aws_connector=with_aws_connector)
    if catalog is not None:
        builder = iceberg.configure_builder(builder, catalog)
    builder = s3a.configure_builder(builder, s3a.endpoint_from_env(), profile.feature_store.region, buckets)
    # Spark's console bar would interleave with the JSON log lines on stderr.
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    spark = start_session(builder)
    if not existed:
        spark.sparkContext.setLogLevel("WARN")
    s3a.configure_session(spark, s3a.endpoint_from_env(), profile.feature_store.region, buckets)
    use_rename_on_local_disk(spark, profile.checkpoint_root)
    if catalog is not None:
        # A session that existed before (a test's, a notebook's) ignored the builder's Hadoop settings
        # (s3:// through S3A for the catalog's files): set them on it too.
        iceberg.configure_session(spark, catalog)
    return spark, not existed
