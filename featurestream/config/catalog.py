"""The profile's `catalog:` section: the one Apache Iceberg catalog of the whole project.

Every Iceberg table the project writes or reads (the emulator's Iceberg offline stores, the raw
event archive, compacted output) is named in this catalog. Two kinds:

- `jdbc`: Iceberg's JDBC catalog in a PostgreSQL database (locally the stack's own); Spark's
  JdbcCatalog and pyiceberg's SqlCatalog keep their tables in the same two SQL tables, so both see
  each other's. Files through Hadoop (S3A for `s3://`) on the Spark side.
- `glue`: the AWS Glue Data Catalog (Athena, EMR, Glue jobs and Lake Formation see the tables);
  files through Iceberg's S3FileIO.

The catalog database's password never lives here: `password_env` names a variable and
`password_file` a (mounted) file that hold it, read when a job starts.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from featurestream.config.base import Frozen
from featurestream.config.credentials import env_var_name, refuse_credentials
from featurestream.config.locations import Location


class JdbcCatalogSpec(Frozen):
    """Where the JDBC catalog's tables live: a PostgreSQL database (RDS, or the local stack's)."""

    url: str = Field(min_length=6)
    user: str | None = None
    # The *name* of an environment variable holding the password (read at run time).
    password_env: str = "FEATURESTREAM_CATALOG_PASSWORD"  # noqa: S105 - a variable name, not a secret
    # A file holding the password (a mounted secret), read when the variable is not set.
    password_file: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        if not url.startswith("jdbc:postgresql://"):
            raise ValueError("must be a PostgreSQL JDBC URL, jdbc:postgresql://host:port/database "
                             "(the catalog pyiceberg shares with Spark)")
        return refuse_credentials(url, "(use password_env or password_file)")

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        return env_var_name(value)

    @field_validator("password_file", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


class GlueCatalogSpec(Frozen):
    """The AWS Glue Data Catalog of an account (default: the caller's) in a region."""

    catalog_id: str | None = Field(default=None, pattern=r"^[0-9]{12}$")
    # None = the profile's feature_store.region.
    region: str | None = None


class CatalogSpec(Frozen):
    type: Literal["jdbc", "glue"]
    # The Spark catalog name: tables are `<name>.<namespace>.<table>` in Spark SQL.
    name: str = Field(default="featurestream", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    # Where new tables go when they are created without a location (s3://bucket/prefix).
    warehouse: Location | None = None
    jdbc: JdbcCatalogSpec | None = None
    glue: GlueCatalogSpec = Field(default_factory=GlueCatalogSpec)

    @field_validator("warehouse", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        # `${VAR:-}` expands to "" when the variable is unset.
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _kind_has_its_settings(self) -> CatalogSpec:
        if self.type == "jdbc" and self.jdbc is None:
            raise ValueError("type jdbc needs catalog.jdbc (url, user, password_env or password_file)")
        if self.type == "jdbc" and self.warehouse is None:
            raise ValueError("type jdbc needs catalog.warehouse (s3://bucket/prefix)")
        if self.type == "glue" and self.jdbc is not None:
            raise ValueError("catalog.jdbc is only for type jdbc")
        return self


class ArchiveSpec(Frozen):
    """Where the raw event archive goes (a group opts in with `archive: true`): a namespace of the catalog."""

    namespace: str = Field(default="raw_events", pattern=r"^[a-z_][a-z0-9_]{0,63}$")
