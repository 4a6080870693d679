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


def add_source_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    source = parser.add_mutually_exclusive_group(required=required)
    source.add_argument("--from-files", metavar="PATH", help="Parquet or JSON-lines files (a file or a folder)")
    source.add_argument("--from-jdbc-url", metavar="URL", help="an RDS database (jdbc:postgresql://host:5432/db)")
    parser.add_argument("--format", choices=("parquet", "json"), default="parquet", help="of --from-files")
    parser.add_argument("--from-jdbc-table", metavar="TABLE", help="the table of --from-jdbc-url")
    parser.add_argument("--jdbc-user", metavar="USER", help="default: FEATURESTREAM_JDBC_USER")


def event_source(args: argparse.Namespace) -> EventSource:
    from featurestream.backfill.sources import FileSource, JdbcSource
    from featurestream.config.training_set import JdbcSpec

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
