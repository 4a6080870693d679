"""The same build with the labels in MariaDB (Debian's server and Connector/J, when installed):
the JDBC path is shared with PostgreSQL, so the result must equal the same DuckDB oracle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from featurestream.io.jars import spark_jars
from tests.training import data, mariadb
from tests.training.conftest import Loaded
from tests.training.expected import ALL_GROUPS, output_columns
from tests.training.oracle import Oracle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not mariadb.available(), reason="no MariaDB server / Connector/J on this machine "
                       "(apt-get install mariadb-server libmariadb-java)"),
]
ROOT = Path(__file__).resolve().parents[2]
DDL = ("label_id BIGINT PRIMARY KEY, card_id VARCHAR(32), merchant BIGINT, label_time DATETIME(6), "
       "is_fraud INT, amount DOUBLE, updated_at DATETIME(6)")


def _literal(value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "NULL"
    if isinstance(value, pd.Timestamp):
        return f"'{value.tz_convert('UTC').strftime('%Y-%m-%d %H:%M:%S.%f')}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


@pytest.fixture(scope="module")
def maria(loaded: Loaded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[mariadb.MariaDb]:
    server = mariadb.start(tmp_path_factory.mktemp("mariadb"))
    try:
        labels = loaded.scenario.labels
        rows = ",\n".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in labels.itertuples(index=False))
        server.sql(f"USE featurestream; CREATE TABLE card_labels ({DDL});"
                   f"INSERT INTO card_labels ({', '.join(labels.columns)}) VALUES\n{rows};")
        yield server
    finally:
        server.stop()


def test_build_from_mariadb_equals_duckdb(loaded: Loaded, maria: mariadb.MariaDb, tmp_path: Path) -> None:
    spec = loaded.spec(output={"path": str(tmp_path / "set")})
    spec.pop("name")
    spec["labels"]["jdbc"] = {"url": maria.jdbc_url(), "password_env": "LABELS_DB_PASSWORD"}
    spec["labels"]["table"] = "card_labels"
    config = tmp_path / "maria_set.yaml"
    config.write_text(yaml.safe_dump(spec))
    # The profile adds Connector/J to the project's jars.
    profile = tmp_path / "maria_env.yaml"
    profile.write_text(yaml.safe_dump({
        "kind": "local", "kafka": {"bootstrap_servers": "127.0.0.1:1"},
        "checkpoint_root": str(tmp_path / "ck"), "dlq_path": str(tmp_path / "dlq"),
        "spark": {"master": "local[2]", "shuffle_partitions": 2,
                  "conf": {"spark.jars": ",".join([*spark_jars(), str(mariadb.DRIVER_JAR)])}},
    }))
    env = {**os.environ, "LABELS_DB_PASSWORD": maria.password, "PYSPARK_PYTHON": sys.executable}
    done = subprocess.run([str(Path(sys.executable).parent / "featurestream"), "training-set", "--config", str(config),
                           "--env", str(profile), "--no-progress"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((tmp_path / "set" / "manifest.json").read_text())
    assert manifest["inputs"]["labels"]["database"] == "mariadb"
    assert manifest["inputs"]["labels"]["partitioning"]["column"] == "label_id"
    assert maria.password not in done.stdout + done.stderr + json.dumps(manifest)

    ours = pd.read_parquet(tmp_path / "set" / "data")
    expected = Oracle(loaded.scenario.labels, loaded.scenario.groups).expected(ALL_GROUPS)
    columns = output_columns(ALL_GROUPS)
    pd.testing.assert_frame_equal(data.normalise(ours, columns), data.normalise(expected, columns))
