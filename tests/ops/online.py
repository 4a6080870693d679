"""Read a feature group back with GetRecord and compare it with the DuckDB oracle of the engine."""

from __future__ import annotations

from typing import Any

import boto3

from featurestream.config.feature_group import FeatureGroupSpec
from tests.integration.oracle import expected_records


def compare_online(spec: FeatureGroupSpec, events: list[dict[str, Any]], endpoint: str | None = None,
                   ) -> tuple[int, list[str], list[tuple[str, dict[str, str], Any]]]:
    """(entities expected, entities missing online, entities with other values) for the 5m features."""
    windows = sorted({w // 1000 for f in spec.features for _, w in f.output_names() if w})
    expected = expected_records(events, tile_s=spec.windows.tile_ms // 1000, window_s=300, all_windows_s=windows)
    runtime = boto3.client("sagemaker-featurestore-runtime", endpoint_url=endpoint)
    missing: list[str] = []
    wrong: list[tuple[str, dict[str, str], Any]] = []
    for row in expected.itertuples():
        got = runtime.get_record(FeatureGroupName=spec.online_store.feature_group_name,
                                 RecordIdentifierValueAsString=row.card_id)
        values = {f["FeatureName"]: f["ValueAsString"] for f in got.get("Record", [])}
        if not values:
            missing.append(row.card_id)
            continue
        as_of = row.as_of.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        ok = (values.get(spec.event_time.field) == as_of
              and int(values.get("txn_count_5m", -1)) == row.txn_count
              and abs(float(values.get("amount_sum_5m", "nan")) - row.amount_sum) <= 1e-6 * max(1.0, row.amount_sum))
        if not ok:
            wrong.append((row.card_id, values, row))
    return len(expected), missing, wrong
