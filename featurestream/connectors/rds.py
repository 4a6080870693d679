"""RDS over Spark JDBC: PostgreSQL, MySQL and MariaDB through one code path.

What this module guarantees:
- every table name is validated (letters, digits, underscore) and every column name (e.g.
  `amount.usd`; no quotes, backslashes or control characters) is validated and quoted for its
  dialect before it goes into SQL; times go in as literals we format ourselves, never user text;
- time-range predicates are written into the SQL the database runs (pushed down);
- reads are partitioned: the partition column (integer primary key, else the time column) and its
  bounds are discovered with one MIN/MAX/COUNT query when the config does not give them;
- the password comes from an environment variable or a secret file, is held in `Secret` (whose
  repr is masked), goes only into the driver's connection properties, and is never logged; a URL
  carrying one is refused at load, and every URL or driver message we log or raise goes through
  `featurestream.config.credentials.redact` all the same;
- sessions run in UTC, and the jobs' JVMs too (featurestream.spark): a `timestamp without time
  zone` value is read as UTC wall-clock time, the same instant on both sides, as timestamptz is.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from featurestream.config.credentials import redact
from featurestream.config.training_set import JdbcSpec, PartitioningSpec
from featurestream.errors import ConfigError, FeatureStreamError

log = logging.getLogger(__name__)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
# Column names as tables and queries give them (`amount.usd`, `merchant name`): inside quotes any
# character is literal except the quotes themselves (and backslashes for MySQL), so those and
# control characters are refused rather than escaped.
_QUOTABLE = re.compile(r'^[^\x00-\x1f\x7f"`\\]{1,63}\Z')
PASSWORD_FILE_ENV = "FEATURESTREAM_JDBC_PASSWORD_FILE"  # noqa: S105 - the name of a variable, not a secret
USER_ENV = "FEATURESTREAM_JDBC_USER"
Op = Literal[">=", ">", "<", "<="]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class InvalidIdentifierError(ConfigError):
    """A table or column name that we refuse to put into SQL."""


class JdbcReadError(FeatureStreamError):
    """The database could not be read (connection, permissions, SQL)."""


class Secret:
    """A string that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__


@dataclass(frozen=True)
class Dialect:
    name: str
    driver: str
    quote_char: str
    current_schema_sql: str
    integer_types: frozenset[str]
    session_init: str

    def quote(self, identifier: str) -> str:
        """A column name as an SQL identifier: checked, then quoted."""
        if not _QUOTABLE.match(identifier):
            raise InvalidIdentifierError("<sql>", identifier, "not a valid column name (1-63 characters; no quotes, "
                                         "backslashes or control characters)")
        return f"{self.quote_char}{identifier}{self.quote_char}"

    def quote_table(self, table: str) -> str:
        """Table names stay strict (letters, digits, underscore): they are also used as literals."""
        parts = table.split(".")
        if len(parts) > 2 or not all(_IDENT.match(part) for part in parts):
            raise InvalidIdentifierError("<sql>", table, "not a valid table name (letters, digits, underscore)")
        return ".".join(self.quote(part) for part in parts)

    def timestamp_literal(self, value: datetime) -> str:
        """A UTC timestamp literal (sessions run in UTC, see session_init)."""
        utc = value.astimezone(UTC) if value.tzinfo else value
        return f"TIMESTAMP '{utc.strftime('%Y-%m-%d %H:%M:%S.%f')}'"


_PG_INTS = frozenset({"smallint", "integer", "bigint"})
_MY_INTS = frozenset({"tinyint", "smallint", "mediumint", "int", "integer", "bigint"})
# pgjdbc opens a session in the JVM's default zone (its TimeZone startup parameter also overrides
# a URL's `options=-c TimeZone=...`), so the init statement sets UTC, which every read runs first.
# The session zone decides how the database compares our TIMESTAMP literals with timestamptz and
# renders timestamptz (with its offset, so the instant is right in any JVM). A `timestamp without
# time zone` value is read by the driver as wall-clock time in the *JVM's* zone, which the jobs
# set to UTC (featurestream.spark).
POSTGRES = Dialect("postgresql", "org.postgresql.Driver", '"', "current_schema()", _PG_INTS, "SET TIME ZONE 'UTC'")
MYSQL = Dialect("mysql", "com.mysql.cj.jdbc.Driver", "`", "DATABASE()", _MY_INTS, "SET time_zone = '+00:00'")
# Spark 3.5 has no MariaDB dialect: it quotes with double quotes, which ANSI_QUOTES makes identifiers.
MARIADB = Dialect(
    "mariadb", "org.mariadb.jdbc.Driver", "`", "DATABASE()", _MY_INTS,
    "SET time_zone = '+00:00', sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')",
)


def dialect_for(url: str) -> Dialect:
    lowered = url.lower()
    for prefix, dialect in (("jdbc:postgresql:", POSTGRES), ("jdbc:mysql:", MYSQL), ("jdbc:mariadb:", MARIADB)):
        if lowered.startswith(prefix):
            return dialect
    raise ConfigError("<config>", "labels.jdbc.url", "supported databases: postgresql, mysql, mariadb")


def resolve_password(spec: JdbcSpec, source: str = "<config>") -> Secret | None:
    """The password from the environment variable named in the config, else from the secret file."""
    value = os.environ.get(spec.password_env)
    if value:
        return Secret(value)
    file_name = spec.password_file or os.environ.get(PASSWORD_FILE_ENV)
    if not file_name:
        return None
    path = Path(file_name)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = f"cannot read the secret file ({exc.strerror})"
        raise ConfigError(source, "labels.jdbc.password_file", reason) from None
    return Secret(text.rstrip("\r\n"))


def resolve_user(spec: JdbcSpec) -> str | None:
    if spec.user:
        return spec.user
    _, _, query = spec.url.partition("?")
    if any(k.lower() == "user" for k, _ in parse_qsl(query)):
        return None  # already in the URL
    return os.environ.get(USER_ENV)


@dataclass(frozen=True)
class TimePredicate:
    column: str
    op: Op
    value: datetime

    def sql(self, dialect: Dialect) -> str:
        return f"{dialect.quote(self.column)} {self.op} {dialect.timestamp_literal(self.value)}"


@dataclass(frozen=True)
class JdbcRelation:
    """A table or a query, narrowed to some columns and time predicates, as one SELECT."""

    table: str | None = None
    query: str | None = None
    columns: tuple[str, ...] | None = None
    predicates: tuple[TimePredicate, ...] = ()

    def __post_init__(self) -> None:
        if (self.table is None) == (self.query is None):
            raise ValueError("a JdbcRelation is a table or a query")

    def sql(self, dialect: Dialect) -> str:
        cols = "*" if self.columns is None else ", ".join(dialect.quote(c) for c in self.columns)
        # A query from the config is the operator's own SQL; it is wrapped, never spliced into.
        source = dialect.quote_table(self.table) if self.table else f"({self.query}) fs_query"
        where = " AND ".join(p.sql(dialect) for p in self.predicates)
        # Names are validated and quoted, times are literals we format: nothing user-typed is spliced.
        return f"SELECT {cols} FROM {source}" + (f" WHERE {where}" if where else "")  # noqa: S608

    def with_predicates(self, *extra: TimePredicate) -> JdbcRelation:
        return JdbcRelation(self.table, self.query, self.columns, self.predicates + extra)


@dataclass
class JdbcRead:
    """The DataFrame and what the manifest needs to say about how it was read."""

    frame: DataFrame
    lineage: dict[str, Any] = field(default_factory=dict)


def _bound_text(value: Any) -> str:
    if isinstance(value, datetime):
        utc = value.astimezone(UTC) if value.tzinfo else value
        return utc.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(int(value))
    return str(value)


class JdbcReader:
    """Reads relations of one database. The session is passed in; nothing runs at construction."""

    def __init__(self, spark: SparkSession, spec: JdbcSpec, *, source: str = "<config>") -> None:
        self.spark = spark
        self.spec = spec
        self.source = source
        self.dialect = dialect_for(spec.url)
        self._password = resolve_password(spec, source)
        self._user = resolve_user(spec)

    def _options(self) -> dict[str, str]:
        options = {
            "url": self.spec.url,
            "driver": self.spec.driver or self.dialect.driver,
            "fetchsize": str(self.spec.fetch_size),
            "sessionInitStatement": self.dialect.session_init,
            "pushDownPredicate": "true",
        }
        if self._user:
            options["user"] = self._user
        if self._password is not None:
            options["password"] = self._password.reveal()
        return options

    def _load(self, options: dict[str, str]) -> DataFrame:
        try:
            with _py4j_quiet():
                return self.spark.read.format("jdbc").options(**self._options(), **options).load()
        except Exception as exc:
            raise JdbcReadError(redact(f"JDBC read from {self.spec.url} failed: {_first_line(exc)}")) from None

    def query(self, sql: str) -> list[Row]:
        """Run a small query on the driver side (metadata, bounds)."""
        frame = self._load({"query": sql})
        try:
            return frame.collect()
        except Exception as exc:
            raise JdbcReadError(redact(f"JDBC query on {self.spec.url} failed: {_first_line(exc)}")) from None

    def integer_primary_key(self, table: str) -> str | None:
        """The table's single-column integer primary key, if it has one."""
        schema, _, name = table.rpartition(".")
        # Both parts passed validation (letters, digits, underscore), so they are safe as literals.
        self.dialect.quote_table(table)
        schema_sql = f"'{schema}'" if schema else self.dialect.current_schema_sql
        rows = self.query(
            "SELECT k.column_name AS col, c.data_type AS typ "  # noqa: S608 - validated names only
            "FROM information_schema.table_constraints t "
            "JOIN information_schema.key_column_usage k ON t.constraint_name = k.constraint_name "
            " AND t.table_schema = k.table_schema AND t.table_name = k.table_name "
            "JOIN information_schema.columns c ON c.table_schema = k.table_schema "
            " AND c.table_name = k.table_name AND c.column_name = k.column_name "
            f"WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_schema = {schema_sql} AND t.table_name = '{name}'"
        )
        if len(rows) != 1 or str(rows[0]["typ"]).lower() not in self.dialect.integer_types:
            return None
        column = str(rows[0]["col"])
        return column if _IDENT.match(column) else None

    def bounds(self, relation: JdbcRelation, column: str) -> tuple[Any, Any, int]:
        """MIN, MAX and COUNT(*) of `column` over the relation, in one query.

        Timestamps come back as aware UTC datetimes: they are turned into unix micros inside
        Spark, because PySpark's own conversion uses the Python process's local time zone.
        """
        quoted = self.dialect.quote(column)
        inner = relation.sql(self.dialect)
        sql = f"SELECT MIN({quoted}) AS lo, MAX({quoted}) AS hi, COUNT(*) AS n FROM ({inner}) fs_b"  # noqa: S608
        frame = self._load({"query": sql})
        is_time = isinstance(frame.schema["lo"].dataType, T.TimestampType | T.TimestampNTZType)
        if is_time:
            frame = frame.select(*[F.unix_micros(F.col(c).cast(T.TimestampType())).alias(c) for c in ("lo", "hi")],
                                 "n")
        try:
            row = frame.collect()[0]
        except Exception as exc:
            raise JdbcReadError(redact(f"JDBC query on {self.spec.url} failed: {_first_line(exc)}")) from None
        lo, hi = row["lo"], row["hi"]
        if is_time and lo is not None:
            lo, hi = EPOCH + timedelta(microseconds=int(lo)), EPOCH + timedelta(microseconds=int(hi))
        return lo, hi, int(row["n"])

    def read(self, relation: JdbcRelation, partitioning: PartitioningSpec, *, time_column: str | None) -> JdbcRead:
        """Read the relation in parallel; the lineage records the SQL shape, partitioning and read time."""
        read_at = datetime.now(UTC)
        column = partitioning.column
        if column is None and relation.table is not None:
            column = self.integer_primary_key(relation.table)
        column = column or time_column
        options: dict[str, str] = {"dbtable": f"({relation.sql(self.dialect)}) fs_src"}
        lineage: dict[str, Any] = {
            "kind": "jdbc",
            "database": self.dialect.name,
            "url": redact(self.spec.url),
            "table": relation.table,
            "query": relation.query,
            "columns": list(relation.columns) if relation.columns else None,
            "predicates": [p.sql(self.dialect) for p in relation.predicates],
            "read_at": read_at.isoformat(),
        }
        if column is not None:
            lower, upper, count = partitioning.lower_bound, partitioning.upper_bound, None
            if lower is None:
                lo, hi, count = self.bounds(relation, column)
                lower, upper = (None, None) if lo is None else (_bound_text(lo), _bound_text(hi))
            partitions = partitioning.num_partitions or max(
                1, min(partitioning.max_partitions, math.ceil((count or 0) / partitioning.rows_per_partition))
            )
            if lower is not None and upper is not None and partitions > 1 and lower != upper:
                options.update({
                    "partitionColumn": column, "lowerBound": lower, "upperBound": upper,
                    "numPartitions": str(partitions),
                })
            lineage["partitioning"] = {
                "column": column, "lower_bound": lower, "upper_bound": upper,
                "num_partitions": int(options.get("numPartitions", "1")), "row_count_at_read": count,
            }
        log.info("jdbc read %s %s", redact(self.spec.url), lineage.get("partitioning"))
        return JdbcRead(self._load(options), lineage)


@contextmanager
def _py4j_quiet() -> Iterator[None]:
    """py4j logs every command it sends at DEBUG, the password option included: not while we send it."""
    loggers = [logging.getLogger(name) for name in ("py4j", "py4j.clientserver", "py4j.java_gateway")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _first_line(exc: BaseException) -> str:
    """The useful line: the Java exception (driver messages live there), else the first line."""
    java = getattr(exc, "java_exception", None)
    text = str(java.toString()) if java is not None else str(exc)
    lines = [line for line in text.strip().splitlines() if line.strip()]
    first = lines[0][:500] if lines else type(exc).__name__
    if "ClassNotFoundException" in first:
        # Under spark-submit the JVM starts before the job sets spark.jars: those reach the
        # executors, not the driver that opens the connection. The driver jar must be given at launch.
        first += (" (the JDBC driver jar is not on the driver's classpath:"
                  " give it to spark-submit with --jars or --packages)")
    return first
