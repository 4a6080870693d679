"""The Glue Data Catalog table SageMaker registers for a Glue-format offline store.

CreateFeatureGroup registers `<Database>.<TableName>` of the group's DataCatalogConfig (unless
`DisableGlueTableCreation`): an external Parquet table at ResolvedOutputS3Uri with the features,
`write_time`, `api_invocation_time` and `is_deleted`, partitioned by the `year`, `month`, `day`,
`hour` folders of the Glue layout. Only against a Glue endpoint named by AWS_ENDPOINT_URL_GLUE
(moto's, on the stack's S3 port): the emulator never writes to AWS's own catalog.
"""

from __future__ import annotations

import os
from typing import Any

from featurestream.dev.feature_store.model import FeatureGroup
from featurestream.dev.feature_store.types import FRACTIONAL, INTEGRAL

ENDPOINT_ENV = "AWS_ENDPOINT_URL_GLUE"
_GLUE_TYPES = {INTEGRAL: "bigint", FRACTIONAL: "double"}
_PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}


def table_input(group: FeatureGroup) -> dict[str, Any]:
    """Glue's TableInput for the group's offline store."""
    columns = []
    for feature in group.features.values():
        scalar = _GLUE_TYPES.get(feature.type, "string")
        columns.append({"Name": feature.name, "Type": f"array<{scalar}>" if feature.collection else scalar})
    columns += [{"Name": "write_time", "Type": "timestamp"}, {"Name": "api_invocation_time", "Type": "timestamp"},
                {"Name": "is_deleted", "Type": "boolean"}]
    return {
        "Name": group.spec["OfflineStoreConfig"]["DataCatalogConfig"]["TableName"],
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
        "PartitionKeys": [{"Name": key, "Type": "string"} for key in ("year", "month", "day", "hour")],
        "StorageDescriptor": {"Columns": columns, "Location": group.resolved_output_uri(), **_PARQUET},
    }


class GlueTables:
    """Registers Glue-format groups' tables when a local Glue endpoint is configured."""

    def __init__(self, endpoint: str | None = None) -> None:
        """`endpoint` None: AWS_ENDPOINT_URL_GLUE; "" : never register."""
        self.endpoint = (endpoint if endpoint is not None else os.environ.get(ENDPOINT_ENV)) or None

    @property
    def enabled(self) -> bool:
        return self.endpoint is not None

    def register(self, group: FeatureGroup) -> None:
        catalog = group.spec["OfflineStoreConfig"].get("DataCatalogConfig")
        if not self.enabled or catalog is None:
            return
        import boto3

        glue = boto3.client("glue", endpoint_url=self.endpoint)
        try:
            glue.create_database(DatabaseInput={"Name": catalog["Database"]})
        except glue.exceptions.AlreadyExistsException:
            pass
        try:
            glue.create_table(DatabaseName=catalog["Database"], TableInput=table_input(group))
        except glue.exceptions.AlreadyExistsException:
            pass  # a DataCatalogConfig naming an existing table: SageMaker uses it as it is
