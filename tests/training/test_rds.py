"""The JDBC reader against the stack's PostgreSQL: partitioned reads with discovered column and
bounds, time predicates in the SQL the database runs, table or query, secrets from env or file and
never in messages or plans."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from featurestream.config.training_set import JdbcSpec, PartitioningSpec
from featurestream.connectors.rds import JdbcReader, JdbcReadError, JdbcRelation, TimePredicate
from featurestream.errors import ConfigError
from tests.training import pg
from tests.training.conftest import Loaded

pytestmark = pytest.mark.integration
CUT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _spec(**extra: Any) -> JdbcSpec:
    return JdbcSpec(url=pg.jdbc_url(), **extra)


def _explain(frame: Any) -> str:
    return str(frame._jdf.queryExecution().executedPlan().toString())


def test_table_read_discovers_primary_key_partitions_and_pushes_time_down(spark: Any, loaded: Loaded) -> None:
    reader = JdbcReader(spark, _spec())
    relation = JdbcRelation(table=loaded.table, predicates=(TimePredicate("label_time", ">=", CUT),))
    read = reader.read(relation, PartitioningSpec(rows_per_partition=60), time_column="label_time")
    labels = loaded.scenario.labels
    expected = labels[labels["label_time"] >= CUT]
    partitioning = read.lineage["partitioning"]
    assert partitioning["column"] == "label_id"
    assert partitioning["lower_bound"] == str(expected["label_id"].min())
    assert partitioning["upper_bound"] == str(expected["label_id"].max())
    assert partitioning["row_count_at_read"] == len(expected)
    assert read.frame.rdd.getNumPartitions() == partitioning["num_partitions"] == -(-len(expected) // 60)
    assert sorted(r["label_id"] for r in read.frame.select("label_id").collect()) == sorted(expected["label_id"])
    # The predicate is inside the relation the database runs, not a Spark-side filter.
    plan = _explain(read.frame)
    assert "TIMESTAMP '2026-03-02 12:00:00.000000'" in plan and "fs_src" in plan
    assert read.lineage["predicates"] == ['"label_time" >= TIMESTAMP \'2026-03-02 12:00:00.000000\'']


def test_query_read_partitions_on_the_time_column(spark: Any, loaded: Loaded) -> None:
    reader = JdbcReader(spark, _spec())
    query = f"SELECT label_id, card_id, label_time, is_fraud FROM {loaded.table} WHERE is_fraud = 1"
    relation = JdbcRelation(query=query, predicates=(TimePredicate("label_time", "<", CUT),))
    read = reader.read(relation, PartitioningSpec(num_partitions=3), time_column="label_time")
    labels = loaded.scenario.labels
    expected = labels[(labels["is_fraud"] == 1) & (labels["label_time"] < CUT)]
    assert read.lineage["partitioning"]["column"] == "label_time"
    assert read.frame.rdd.getNumPartitions() == 3
    rows = read.frame.collect()
    assert sorted(r["label_id"] for r in rows) == sorted(expected["label_id"])
    # Timestamps arrive as the same instants (sessions in UTC on both sides).
    micros = read.frame.selectExpr("label_id", "unix_micros(label_time) AS t").collect()
    got = {r["label_id"]: r["t"] for r in micros}
    assert got == {i: t.value // 1000 for i, t in zip(expected["label_id"], expected["label_time"], strict=True)}


def test_password_from_env_or_file_never_in_messages(spark: Any, loaded: Loaded, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    secret = pg.password()
    relation = JdbcRelation(table=loaded.table)
    # From a variable named in the config, with no file around.
    monkeypatch.delenv("FEATURESTREAM_JDBC_PASSWORD_FILE")
    monkeypatch.setenv("LABELS_DB_PASSWORD", secret)
    caplog.set_level(logging.DEBUG)
    read = JdbcReader(spark, _spec(password_env="LABELS_DB_PASSWORD")).read(relation, PartitioningSpec(),
                                                                            time_column="label_time")
    assert read.frame.count() == len(loaded.scenario.labels)
    assert secret not in _explain(read.frame) and secret not in str(read.lineage) and secret not in caplog.text
    # From a secret file named in the config (trailing newline ignored).
    monkeypatch.delenv("LABELS_DB_PASSWORD")
    (tmp_path / "pw").write_text(secret + "\n")
    read = JdbcReader(spark, _spec(password_file=str(tmp_path / "pw"))).read(relation, PartitioningSpec(),
                                                                             time_column="label_time")
    assert read.frame.count() == len(loaded.scenario.labels)
    # A wrong one fails as a named error whose message holds neither password.
    (tmp_path / "pw").write_text("not-" + secret)
    with pytest.raises(JdbcReadError) as caught:
        JdbcReader(spark, _spec(password_file=str(tmp_path / "pw"))).read(relation, PartitioningSpec(),
                                                                          time_column="label_time")
    assert "password authentication failed" in str(caught.value)
    assert secret not in str(caught.value) and "not-" + secret not in str(caught.value)
    with pytest.raises(ConfigError, match="password_file: cannot read the secret file"):
        JdbcReader(spark, _spec(password_file=str(tmp_path / "missing")))
