"""From the configuration to concrete feature group targets, before Spark starts.

A group given by name is described with DescribeFeatureGroup: its ResolvedOutputS3Uri, record
identifier, event time feature and feature definitions (the authoritative schema). A group given
by path brings its own column names; its schema is merged from the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from featurestream.compaction.context import CompactionSettings, FeatureGroupTarget
from featurestream.compaction.errors import CompactionError
from featurestream.compaction.schema import offline_schema
from featurestream.compaction.table import TableRef, table_name_for
from featurestream.config.compaction import CompactionConfig, FeatureGroupInput
from featurestream.connectors.offline_store import StoreUri
from featurestream.errors import ConfigError


def sagemaker_client(region: str) -> Any:
    """Control-plane client; AWS_ENDPOINT_URL_SAGEMAKER (the emulator locally) is honoured by boto3."""
    import boto3

    return boto3.client("sagemaker", region_name=region)


def local_mirror(uri: StoreUri, offline_local_root: str | None) -> StoreUri:
    """s3://bucket/key → <root>/bucket/key when the offline store is an emulator's local folder."""
    if offline_local_root is None or not uri.is_s3:
        return uri
    return StoreUri.parse(Path(offline_local_root) / uri.bucket / uri.key)


def _parse_location(text: str, file: Path, field: str) -> StoreUri:
    try:
        return StoreUri.parse(text)
    except ValueError as exc:
        raise ConfigError(file, field, str(exc)) from None


def resolve_targets(
    config: CompactionConfig,
    config_file: Path,
    names: list[str] | None = None,
    client: Any = None,
    catalog: str = "featurestream",
) -> list[FeatureGroupTarget]:
    """The targets to compact: all configured groups, or the named ones (each must be configured).

    `catalog` is the Spark name of the project's Iceberg catalog (the profile's `catalog.name`).
    """
    selected: list[tuple[int, FeatureGroupInput]] = []
    for name in names or [g.name for g in config.feature_groups]:
        index = next((i for i, g in enumerate(config.feature_groups) if g.name == name), None)
        if index is None:
            raise ConfigError(config_file, "--feature-group-name",
                              f"{name!r} is not in feature_groups ({', '.join(g.name for g in config.feature_groups)})")
        selected.append((index, config.feature_groups[index]))
    output_root = _parse_location(config.output, config_file, "output")
    targets = []
    for index, group in selected:
        field = f"feature_groups[{index}]"
        output = output_root.join(group.name)
        table = TableRef(catalog, config.namespace, table_name_for(group.name), output)
        if group.path is not None:
            if group.record_identifier is None or group.event_time is None:
                raise ConfigError(config_file, field, "a feature group given by path needs record_identifier and "
                                  "event_time")
            source = local_mirror(_parse_location(group.path, config_file, f"{field}.path"), config.offline_local_root)
            targets.append(FeatureGroupTarget(group.name, source, output, group.record_identifier, group.event_time,
                                              table=table))
            continue
        description = _describe(client or sagemaker_client(config.region), group.name, config_file, field)
        offline = description.get("OfflineStoreConfig")
        if not offline:
            raise ConfigError(config_file, f"{field}.name", f"feature group {group.name!r} has no offline store")
        table_format = offline.get("TableFormat", "Glue")
        if table_format not in ("Glue", "Default", "Iceberg"):
            raise ConfigError(config_file, f"{field}.name",
                              f"feature group {group.name!r} uses the unknown table format {table_format}")
        source_table = None
        if table_format == "Iceberg":
            # Its own table (DataCatalogConfig, in the project's catalog) is rewritten in place.
            data_catalog = offline.get("DataCatalogConfig") or {}
            if not data_catalog.get("Database") or not data_catalog.get("TableName"):
                raise ConfigError(config_file, f"{field}.name",
                                  f"Iceberg feature group {group.name!r} has no DataCatalogConfig table")
            source_table = TableRef(catalog, str(data_catalog["Database"]), str(data_catalog["TableName"]))
        resolved = offline["S3StorageConfig"]["ResolvedOutputS3Uri"]
        source = local_mirror(StoreUri.parse(resolved), config.offline_local_root)
        try:
            schema = offline_schema(description["FeatureDefinitions"])
        except CompactionError as exc:
            raise ConfigError(config_file, f"{field}.name", str(exc)) from None
        targets.append(FeatureGroupTarget(group.name, source, output, description["RecordIdentifierFeatureName"],
                                          description["EventTimeFeatureName"], schema, table, source_table))
    return targets


def _describe(client: Any, name: str, config_file: Path, field: str) -> dict[str, Any]:
    try:
        return dict(client.describe_feature_group(FeatureGroupName=name))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("ResourceNotFound", "ResourceNotFoundException"):
            raise ConfigError(config_file, f"{field}.name", f"feature group {name!r} does not exist") from None
        raise CompactionError(f"DescribeFeatureGroup {name}: {exc}") from exc
    except BotoCoreError as exc:
        raise CompactionError(f"DescribeFeatureGroup {name}: {exc}") from exc


def settings_from_config(config: CompactionConfig, **overrides: Any) -> CompactionSettings:
    return CompactionSettings(
        compression=config.compression,
        target_file_bytes=config.target_file_bytes,
        partition_by=config.partition_by,
        deletes=config.deletes,
        snapshot=config.snapshot,
        stale_after_s=config.lock.stale_after_s,
        heartbeat_s=config.lock.heartbeat_s,
        gc_grace_s=config.gc_grace_s,
        s3_scheme=config.s3_scheme,
        region=config.region,
        **overrides,
    )
