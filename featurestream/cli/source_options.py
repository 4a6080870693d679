"""The event-source flags every command that reads a group's raw events shares (`backfill`,
`consistency`), and the `EventSource` they name. A new kind of source (the raw event archive) is
one more flag here and one more class in featurestream.backfill.sources, for both commands at once.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from featurestream.errors import ConfigError

if TYPE_CHECKING:
    from featurestream.backfill.sources import EventSource
    from featurestream.config.feature_group import FeatureGroupSpec
    from featurestream.config.profile import EnvironmentProfile
    from featurestream.iceberg import IcebergCatalog


def add_source_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    source = parser.add_mutually_exclusive_group(required=required)
    source.add_argument("--from-files", metavar="PATH", help="Parquet or JSON-lines files (a file or a folder)")
    source.add_argument("--from-jdbc-url", metavar="URL", help="an RDS database (jdbc:postgresql://host:5432/db)")
    source.add_argument("--from-archive", action="store_true",
                        help="the raw event archive of the group's source (the profile's catalog and archive:)")
    parser.add_argument("--format", choices=("parquet", "json"), default="parquet", help="of --from-files")
    parser.add_argument("--from-jdbc-table", metavar="TABLE", help="the table of --from-jdbc-url")
    parser.add_argument("--jdbc-user", metavar="USER", help="default: FEATURESTREAM_JDBC_USER")


def archive_catalog(args: argparse.Namespace, profile: EnvironmentProfile) -> IcebergCatalog | None:
    """The profile's Iceberg catalog when the source is the archive (checked now: exit 2 before Spark)."""
    if not getattr(args, "from_archive", False):
        return None
    from featurestream import iceberg

    catalog = iceberg.from_profile(profile, f"--env {args.env}")
    iceberg.spark_settings(catalog)  # reads the catalog password: a missing secret is a config error
    return catalog


def event_source(args: argparse.Namespace, spec: FeatureGroupSpec | None = None,
                 catalog: IcebergCatalog | None = None, profile: EnvironmentProfile | None = None) -> EventSource:
    from featurestream.backfill.sources import ArchiveSource, FileSource, JdbcSource
    from featurestream.config.training_set import JdbcSpec

    if catalog is not None and spec is not None and profile is not None:
        from featurestream.engine.archive import source_table

        return ArchiveSource(catalog, source_table(spec, profile, catalog))
    if args.from_files:
        return FileSource(args.from_files, args.format)
    if not args.from_jdbc_table:
        raise ConfigError("command line", "--from-jdbc-table", "required with --from-jdbc-url")
    try:
        jdbc = JdbcSpec(url=args.from_jdbc_url, user=args.jdbc_user)
    except ValueError as exc:
        reason = str(exc).splitlines()[-1].strip() if str(exc).strip() else "invalid"
        raise ConfigError("command line", "--from-jdbc-url", reason) from None
    return JdbcSource(jdbc, args.from_jdbc_table)
