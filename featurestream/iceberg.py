"""The project's one Apache Iceberg catalog, from the profile's `catalog:` section.

Two views of the same catalog, so Spark and Python code (the emulator, tests, readers without a
JVM) name the same tables:

- `spark_settings` / `configure_builder`: `spark.sql.catalog.<name>.*` for Spark's Iceberg runtime
  (the jar of conf/jars/pom.xml locally, `--packages` on a cluster), and Iceberg's SQL extensions
  (CALL procedures, e.g. snapshot expiry);
- `load_catalog`: a pyiceberg catalog (the `iceberg` extra).

JDBC catalog: Spark's JdbcCatalog and pyiceberg's SqlCatalog share PostgreSQL tables
(`iceberg_tables`, `iceberg_namespace_properties`), so a table created by either is seen by both.
Spark reads and writes the files through Hadoop: `s3://` is mapped to S3A where Spark runs
outside EMR, so table locations are the plain `s3://` URIs every engine (Athena, Trino, DuckDB,
pyiceberg) understands. Glue catalog: S3FileIO (the iceberg-aws-bundle on the cluster).

The catalog password is read here, when a job starts, from `password_env` or `password_file`;
it goes into the catalog's properties only (Spark redacts `*password*` settings in its UI and
logs) and never into a message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from featurestream.config.catalog import CatalogSpec
from featurestream.errors import ConfigError
from featurestream.io import s3a

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyspark.sql import SparkSession

    from featurestream.config.profile import EnvironmentProfile

SPARK_CATALOG = "org.apache.iceberg.spark.SparkCatalog"
SPARK_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
JDBC_CATALOG = "org.apache.iceberg.jdbc.JdbcCatalog"
GLUE_CATALOG = "org.apache.iceberg.aws.glue.GlueCatalog"
HADOOP_FILE_IO = "org.apache.iceberg.hadoop.HadoopFileIO"
S3_FILE_IO = "org.apache.iceberg.aws.s3.S3FileIO"
S3A_FILESYSTEM = "org.apache.hadoop.fs.s3a.S3AFileSystem"


@dataclass(frozen=True)
class IcebergCatalog:
    """A profile's catalog with what the profile says around it (region, kind, its file)."""

    spec: CatalogSpec
    region: str
    # local profiles run Spark outside EMR: `s3://` goes through S3A there.
    local: bool
    # The profile file, for error lines.
    source: str = "<profile>"

    @property
    def name(self) -> str:
        return self.spec.name

    def spark_table(self, namespace: str, table: str) -> str:
        """The table's name in Spark SQL: `<catalog>.<namespace>.<table>`."""
        return f"{self.spec.name}.{namespace}.{table}"


def from_profile(profile: EnvironmentProfile, source: str = "<profile>") -> IcebergCatalog:
    """The profile's catalog; a ConfigError naming `catalog` when the profile has none."""
    if profile.catalog is None:
        raise ConfigError(source, "catalog", "this needs an Iceberg catalog: add a catalog section "
                          "(type jdbc or glue; see the README's configuration)")
    return IcebergCatalog(profile.catalog, profile.feature_store.region, profile.kind == "local", source)


def _password(catalog: IcebergCatalog) -> str | None:
    jdbc = catalog.spec.jdbc
    assert jdbc is not None  # checked by CatalogSpec for type jdbc
    value = os.environ.get(jdbc.password_env)
    if value:
        return value
    if not jdbc.password_file:
        return None
    try:
        return Path(jdbc.password_file).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(catalog.source, "catalog.jdbc.password_file",
                          f"cannot read the secret file {jdbc.password_file} ({exc.strerror}); "
                          f"is the database up (featurestream stack up postgres)?") from None


def _jdbc_user(catalog: IcebergCatalog) -> str | None:
    jdbc = catalog.spec.jdbc
    assert jdbc is not None
    if jdbc.user:
        return jdbc.user
    query = urlsplit(jdbc.url.removeprefix("jdbc:")).query
    return next((v for k, v in parse_qsl(query) if k.lower() == "user"), None)


def spark_settings(catalog: IcebergCatalog) -> dict[str, str]:
    """Spark settings that make `catalog.name` the project's Iceberg catalog."""
    spec = catalog.spec
    prefix = f"spark.sql.catalog.{spec.name}"
    settings = {prefix: SPARK_CATALOG}
    if spec.warehouse:
        settings[f"{prefix}.warehouse"] = spec.warehouse
    if spec.type == "jdbc":
        assert spec.jdbc is not None
        settings.update({
            f"{prefix}.catalog-impl": JDBC_CATALOG,
            f"{prefix}.uri": spec.jdbc.url,
            f"{prefix}.io-impl": HADOOP_FILE_IO,
        })
        user, password = _jdbc_user(catalog), _password(catalog)
        if user:
            settings[f"{prefix}.jdbc.user"] = user
        if password is not None:
            settings[f"{prefix}.jdbc.password"] = password
        if catalog.local:
            # Outside EMR, Hadoop has no `s3://` file system: S3A serves it (same fs.s3a.* settings).
            settings["spark.hadoop.fs.s3.impl"] = S3A_FILESYSTEM
    else:
        settings.update({
            f"{prefix}.catalog-impl": GLUE_CATALOG,
            f"{prefix}.io-impl": S3_FILE_IO,
            f"{prefix}.client.region": spec.glue.region or catalog.region,
        })
        if spec.glue.catalog_id:
            settings[f"{prefix}.glue.id"] = spec.glue.catalog_id
    return settings


def configure_builder(builder: SparkSession.Builder, catalog: IcebergCatalog) -> SparkSession.Builder:
    """`builder` with the catalog's settings and Iceberg's SQL extensions (added to any others)."""
    for key, value in spark_settings(catalog).items():
        builder = builder.config(key, value)
    given = getattr(builder, "_options", {}).get("spark.sql.extensions", "")
    extensions = [e.strip() for e in given.split(",") if e.strip()]
    if SPARK_EXTENSIONS not in extensions:
        extensions.append(SPARK_EXTENSIONS)
    return builder.config("spark.sql.extensions", ",".join(extensions))


def configure_session(spark: SparkSession, catalog: IcebergCatalog) -> None:
    """The catalog on a running session (Spark reads catalog settings when a name is first used).

    Iceberg's SQL extensions cannot be added to a running session: CALL procedures need a session
    built with `configure_builder`. Reads, writes and DDL work either way.
    """
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in spark_settings(catalog).items():
        if key.startswith("spark.hadoop."):
            hadoop.set(key.removeprefix("spark.hadoop."), value)
        else:
            spark.conf.set(key, value)


def pyiceberg_properties(catalog: IcebergCatalog) -> dict[str, str]:
    """pyiceberg's catalog properties (files through pyarrow; S3 at AWS_ENDPOINT_URL_S3 when set)."""
    spec = catalog.spec
    props: dict[str, str] = {}
    if spec.warehouse:
        props["warehouse"] = spec.warehouse
    region = spec.glue.region if spec.type == "glue" and spec.glue.region else catalog.region
    props["s3.region"] = region
    endpoint = s3a.endpoint_from_env()
    if endpoint:
        props["s3.endpoint"] = endpoint
    if spec.type == "jdbc":
        props["type"] = "sql"
        props["uri"] = _sqlalchemy_url(catalog)
    else:
        props.update({"type": "glue", "glue.region": region})
        if spec.glue.catalog_id:
            props["glue.id"] = spec.glue.catalog_id
    return props


def _sqlalchemy_url(catalog: IcebergCatalog) -> str:
    """The JDBC URL as SQLAlchemy's (psycopg2), with the user and password."""
    from sqlalchemy.engine import URL

    jdbc = catalog.spec.jdbc
    assert jdbc is not None
    parts = urlsplit(jdbc.url.removeprefix("jdbc:"))
    query = {k: v for k, v in parse_qsl(parts.query) if k.lower() not in ("user", "password")}
    url = URL.create("postgresql+psycopg2", username=_jdbc_user(catalog), password=_password(catalog),
                     host=parts.hostname, port=parts.port, database=parts.path.lstrip("/") or None, query=query)
    return url.render_as_string(hide_password=False)


def load_catalog(catalog: IcebergCatalog) -> Catalog:
    """The catalog as a pyiceberg client (needs `featurestream[iceberg]`)."""
    try:
        from pyiceberg.catalog import load_catalog as load
    except ImportError:
        reason = "pyiceberg is not installed: pip install 'featurestream[iceberg]'"
        raise ConfigError(catalog.source, "catalog", reason) from None
    properties: dict[str, Any] = pyiceberg_properties(catalog)
    return load(catalog.name, **properties)
