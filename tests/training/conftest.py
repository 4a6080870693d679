"""Fixtures of the training-set suite: one random scenario, its labels in the stack's PostgreSQL and
its feature groups as compacted Parquet (event_date partitions)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.training import data, pg


@dataclass
class Loaded:
    scenario: data.Scenario
    table: str
    paths: dict[str, str]
    root: Path

    def spec(self, **overrides: Any) -> dict[str, Any]:
        """A training-set config (as a dict) over this scenario, three groups, with overrides."""
        spec: dict[str, Any] = {
            "name": "test_set",
            "labels": {
                "jdbc": {"url": os.environ["FEATURESTREAM_JDBC_URL"]},
                "table": self.table,
                "timestamp_column": "label_time",
                "label_columns": ["is_fraud"],
                "columns": ["label_id", "card_id", "merchant", "label_time", "is_fraud", "amount"],
            },
            "feature_groups": [
                {"name": "card_activity", "path": self.paths["card_activity"], "keys": {"card_id": "card_id"},
                 "ttl": "2h", "date_partition_column": "event_date"},
                {"name": "card_profile", "path": self.paths["card_profile"], "keys": {"card_id": "card_id"},
                 "prefix": "profile_", "rename": {"limit": "credit_limit"}, "date_partition_column": "event_date"},
                {"name": "merchant_risk", "path": self.paths["merchant_risk"], "keys": {"merchant": "merchant_id"},
                 "date_partition_column": "event_date"},
            ],
            "output": {"path": str(self.root / "out")},
        }
        for key, value in overrides.items():
            spec[key] = value
        return spec


@pytest.fixture(scope="module")
def loaded(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    root = tmp_path_factory.mktemp("training")
    scenario = data.scenario()
    table = f"fs_test_labels_{os.getpid()}"
    pg.load_frame(table, pg.LABELS_DDL, scenario.labels)
    paths = {name: data.write_compacted(frame, root / "features" / name) for name, frame in scenario.groups.items()}
    yield Loaded(scenario, table, paths, root)
    pg.psql(f"DROP TABLE IF EXISTS {table}")
