"""Iceberg offline stores: `TableFormat: Iceberg` groups replicate into a table of the project's catalog.

As SageMaker does, CreateFeatureGroup creates the table `<Database>.<TableName>` of the group's
DataCatalogConfig (default `sagemaker_featurestore.<name>_<epoch>`) at the group's offline-store
location, `ResolvedOutputS3Uri` without its `/data` (so data files land under ResolvedOutputS3Uri
and metadata under `metadata/`). Columns: the features (Integral → long, Fractional → double,
String → string, collections → list), then `write_time` and `api_invocation_time` (timestamptz)
and `is_deleted`, the columns SageMaker adds. Partitioned by day of `write_time`: the event-time
feature is a String or Fractional column, which no Iceberg transform can partition by.

Exactly once: a flush appends its planned queue prefix (featurestream.dev.feature_store.store:
plan_flushes) in one Iceberg commit that also records the prefix's last queue sequence number,
as the table property and in the snapshot summary (`featurestream.emulator.flushed-seq`). A flush
replayed after a crash first reads that property: a prefix already committed is not appended
again, one that never committed is appended then. Files written by a flush that died before its
commit belong to no snapshot: readers never see them.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from featurestream.dev.feature_store.errors import InvalidInput
from featurestream.dev.feature_store.model import FeatureGroup
from featurestream.dev.feature_store.types import FRACTIONAL, INTEGRAL

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

log = logging.getLogger(__name__)

FLUSHED_SEQ = "featurestream.emulator.flushed-seq"
# A test-only crash point (env FEATURESTREAM_FS_CRASH_POINT): the process SIGKILLs itself there.
CRASH_POINTS = ("iceberg-before-commit", "iceberg-after-commit")
_ARROW_TYPES = {INTEGRAL: pa.int64(), FRACTIONAL: pa.float64()}
_TIMESTAMP = pa.timestamp("us", tz="UTC")


def is_iceberg(group: FeatureGroup) -> bool:
    offline = group.spec.get("OfflineStoreConfig")
    return offline is not None and offline.get("TableFormat") == "Iceberg"


def table_identifier(group: FeatureGroup) -> tuple[str, str]:
    catalog = group.spec["OfflineStoreConfig"]["DataCatalogConfig"]
    return str(catalog["Database"]), str(catalog["TableName"])


def table_location(group: FeatureGroup) -> str:
    resolved = group.resolved_output_uri()
    assert resolved is not None  # an Iceberg group has an offline store
    return resolved.removesuffix("/data")


def arrow_schema(group: FeatureGroup) -> pa.Schema:
    fields = []
    for feature in group.features.values():
        scalar = _ARROW_TYPES.get(feature.type, pa.string())
        fields.append(pa.field(feature.name, pa.list_(scalar) if feature.collection else scalar))
    fields += [pa.field("write_time", _TIMESTAMP), pa.field("api_invocation_time", _TIMESTAMP),
               pa.field("is_deleted", pa.bool_())]
    return pa.schema(fields)


def arrow_rows(group: FeatureGroup, rows: list[tuple[Any, dict[str, Any]]], write_time: float) -> pa.Table:
    """(OfflineRow, typed values) pairs as one Arrow table of the group's Iceberg schema."""
    schema = arrow_schema(group)
    columns: dict[str, list[Any]] = {name: [typed[name] for _, typed in rows] for name in group.features}
    columns["write_time"] = [_micros(write_time)] * len(rows)
    columns["api_invocation_time"] = [_micros(r.api_invocation_time) for r, _ in rows]
    columns["is_deleted"] = [r.is_deleted for r, _ in rows]
    return pa.table({f.name: pa.array(columns[f.name], type=f.type) for f in schema}, schema=schema)


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


class IcebergTables:
    """The emulator's side of the catalog: create a group's table, append a flush exactly once."""

    def __init__(self, catalog_factory: Callable[[], Catalog] | None, crash_point: str | None = None) -> None:
        self._factory = catalog_factory
        self._catalog: Catalog | None = None
        self._lock = threading.Lock()
        self.crash_point = crash_point

    @property
    def enabled(self) -> bool:
        return self._factory is not None

    def catalog(self) -> Catalog:
        with self._lock:
            if self._catalog is None:
                if self._factory is None:
                    raise InvalidInput("OfflineStoreConfig.TableFormat Iceberg needs an Iceberg catalog: start the "
                                       "emulator with --catalog-profile (featurestream stack up gives it the local "
                                       "profile's).")
                self._catalog = self._factory()
            return self._catalog

    def create(self, group: FeatureGroup) -> None:
        """The group's table (CreateFeatureGroup); one left by a create that failed later is reused."""
        from pyiceberg.exceptions import TableAlreadyExistsError
        from pyiceberg.transforms import DayTransform

        catalog = self.catalog()
        namespace, name = table_identifier(group)
        catalog.create_namespace_if_not_exists(namespace)
        try:
            tx = catalog.create_table_transaction((namespace, name), schema=arrow_schema(group),
                                                  location=table_location(group))
            with tx.update_spec() as spec:
                spec.add_field("write_time", DayTransform(), "write_time_day")
            tx.commit_transaction()
        except TableAlreadyExistsError:
            existing = catalog.load_table((namespace, name))
            if existing.location().rstrip("/") != table_location(group):
                raise InvalidInput(f"The table {namespace}.{name} of DataCatalogConfig already exists "
                                   f"at {existing.location()}.") from None
        log.info("offline: Iceberg table %s.%s at %s", namespace, name, table_location(group))

    def append(self, group: FeatureGroup, seq_hi: int, rows: pa.Table) -> int:
        """Append one flush (queue rows up to `seq_hi`) once; the rows written now (0 if committed before)."""
        table = self.catalog().load_table(table_identifier(group))
        done = int(table.properties.get(FLUSHED_SEQ, "-1"))
        if seq_hi <= done:
            log.info("offline: %s: flush up to %d was committed before a restart; not appended again",
                     group.name, seq_hi)
            return 0
        table = self._evolve(table, rows.schema)
        marker = {FLUSHED_SEQ: str(seq_hi)}
        tx = table.transaction()
        if rows.num_rows:
            tx.append(rows, snapshot_properties=marker)
        tx.set_properties(marker)
        self._maybe_crash("iceberg-before-commit")
        tx.commit_transaction()
        self._maybe_crash("iceberg-after-commit")
        return rows.num_rows

    def _evolve(self, table: Table, schema: pa.Schema) -> Table:
        """Columns added by UpdateFeatureGroup (FeatureAdditions) are added to the table first."""
        known = {f.name for f in table.schema().fields}
        if all(name in known for name in schema.names):
            return table
        with table.update_schema() as update:
            update.union_by_name(schema)
        return table.refresh()

    def _maybe_crash(self, point: str) -> None:
        if self.crash_point == point:
            log.warning("offline: crash point %s reached: SIGKILL", point)
            os.kill(os.getpid(), signal.SIGKILL)
