"""A feature group's offline store as `backfill` and `consistency` use it, from DescribeFeatureGroup.

SageMaker has two offline formats. Glue: Parquet files under ResolvedOutputS3Uri (`.../data`,
`year=/month=/day=/hour=`). Iceberg (`TableFormat: Iceberg`): one Iceberg table, the group's
`DataCatalogConfig` `<Database>.<TableName>` in the Glue Data Catalog (locally the profile's
catalog, where the emulator creates it), its data files under the same ResolvedOutputS3Uri.
Athena reads that table; so do our jobs, by its name in the profile's catalog.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from featurestream.errors import ConfigError, FeatureStreamError

if TYPE_CHECKING:
    from featurestream.config.feature_group import FeatureGroupSpec
    from featurestream.config.profile import EnvironmentProfile
    from featurestream.iceberg import IcebergCatalog


@dataclass(frozen=True)
class OfflineTarget:
    data_root: str  # ResolvedOutputS3Uri (or --output) as a Spark path
    table: str | None = None  # Iceberg format: `<catalog>.<database>.<table>` in Spark SQL
    catalog: IcebergCatalog | None = None  # the catalog that holds `table`

    @property
    def is_iceberg(self) -> bool:
        return self.table is not None


def describe_group(spec: FeatureGroupSpec, profile: EnvironmentProfile, feature_group_file: str,
                   command: str) -> dict[str, Any]:
    import boto3

    from featurestream.connectors.provisioning import describe_or_none

    name = spec.online_store.feature_group_name
    description = describe_or_none(boto3.client("sagemaker", region_name=profile.feature_store.region), name)
    if description is None:
        raise FeatureStreamError(f"{command}: feature group {name} does not exist "
                                 f"(run: featurestream feature-groups apply {feature_group_file})")
    return description


def offline_target(args: argparse.Namespace, spec: FeatureGroupSpec, profile: EnvironmentProfile,
                   command: str) -> OfflineTarget:
    """--output (a Glue-layout folder), or the group's offline store as DescribeFeatureGroup says."""
    from featurestream.io import s3a

    if getattr(args, "output", None):
        return OfflineTarget(s3a.to_s3a(args.output))
    description = describe_group(spec, profile, args.feature_group, command)
    name = spec.online_store.feature_group_name
    offline = description.get("OfflineStoreConfig") or {}
    uri = (offline.get("S3StorageConfig") or {}).get("ResolvedOutputS3Uri")
    if not uri:
        raise FeatureStreamError(f"{command}: feature group {name} has no offline store")
    if offline.get("TableFormat") != "Iceberg":
        return OfflineTarget(s3a.to_s3a(str(uri)))
    data_catalog = offline.get("DataCatalogConfig") or {}
    if not data_catalog.get("Database") or not data_catalog.get("TableName"):
        raise FeatureStreamError(f"{command}: Iceberg feature group {name} has no DataCatalogConfig table")
    from featurestream import iceberg

    catalog = iceberg.from_profile(profile, f"--env {args.env}")
    iceberg.spark_settings(catalog)  # reads the catalog password: a missing secret is a config error now
    table = catalog.spark_table(str(data_catalog["Database"]), str(data_catalog["TableName"]))
    return OfflineTarget(s3a.to_s3a(str(uri)), table, catalog)


def refuse_online_with_iceberg(target: OfflineTarget, flag: str = "--online") -> None:
    if target.is_iceberg:
        raise ConfigError("command line", flag, f"not supported for an Iceberg-format feature group "
                          f"({target.table}): backfill without it (the stream keeps the online store)")
