"""The profile's `catalog:` section: what Spark and pyiceberg are given, and what is refused at load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from featurestream import iceberg
from featurestream.config import load_profile
from featurestream.errors import ConfigError


def _profile(tmp_path: Path, catalog: dict[str, object]) -> Path:
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump({"kafka": {"bootstrap_servers": "k:9092"}, "checkpoint_root": "cp",
                                    "dlq_path": "dlq", "catalog": catalog}))
    return path


def test_the_local_profile_is_a_jdbc_catalog_on_the_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURESTREAM_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("FEATURESTREAM_POSTGRES_PORT", "25432")
    monkeypatch.delenv("FEATURESTREAM_CATALOG_PASSWORD", raising=False)
    (tmp_path / "postgres").mkdir()
    (tmp_path / "postgres" / "password").write_text("s3cr3t\n")
    catalog = iceberg.from_profile(load_profile("local"))
    settings = iceberg.spark_settings(catalog)
    assert settings["spark.sql.catalog.featurestream"] == iceberg.SPARK_CATALOG
    assert settings["spark.sql.catalog.featurestream.catalog-impl"] == iceberg.JDBC_CATALOG
    assert settings["spark.sql.catalog.featurestream.uri"] == "jdbc:postgresql://127.0.0.1:25432/featurestream"
    assert settings["spark.sql.catalog.featurestream.jdbc.user"] == "featurestream"
    assert settings["spark.sql.catalog.featurestream.jdbc.password"] == "s3cr3t"
    assert settings["spark.sql.catalog.featurestream.warehouse"] == "s3://featurestream-offline/iceberg"
    assert settings["spark.hadoop.fs.s3.impl"] == iceberg.S3A_FILESYSTEM
    monkeypatch.setenv("FEATURESTREAM_CATALOG_PASSWORD", "from-env")  # the variable wins over the file
    props = iceberg.pyiceberg_properties(catalog)
    assert props["type"] == "sql"
    assert props["uri"] == "postgresql+psycopg2://featurestream:from-env@127.0.0.1:25432/featurestream"
    assert catalog.spark_table("ns", "t") == "featurestream.ns.t"


def test_the_aws_profile_is_the_glue_data_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "FEATURESTREAM_CHECKPOINT_ROOT", "FEATURESTREAM_DLQ_PATH"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("FEATURESTREAM_OFFLINE_S3_URI", "s3://bucket/offline")
    monkeypatch.setenv("FEATURESTREAM_FEATURE_STORE_ROLE_ARN", "arn:aws:iam::123456789012:role/r")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("FEATURESTREAM_ICEBERG_WAREHOUSE", "s3://bucket/iceberg")
    settings = iceberg.spark_settings(iceberg.from_profile(load_profile("aws")))
    assert settings["spark.sql.catalog.featurestream.catalog-impl"] == iceberg.GLUE_CATALOG
    assert settings["spark.sql.catalog.featurestream.io-impl"] == iceberg.S3_FILE_IO
    assert settings["spark.sql.catalog.featurestream.client.region"] == "eu-west-1"
    assert settings["spark.sql.catalog.featurestream.warehouse"] == "s3://bucket/iceberg"
    assert "spark.hadoop.fs.s3.impl" not in settings  # EMR's s3:// stays EMRFS


@pytest.mark.parametrize(("catalog", "field", "reason"), [
    ({"type": "hive"}, "catalog.type", "Input should be 'jdbc' or 'glue'"),
    ({"type": "jdbc", "warehouse": "s3://bkt/w"}, "catalog", "type jdbc needs catalog.jdbc"),
    ({"type": "jdbc", "warehouse": "s3://bkt/w", "jdbc": {"url": "jdbc:postgresql://h/db?password=x"}},
     "catalog.jdbc.url", "carries a password"),
    ({"type": "jdbc", "warehouse": "s3://../w", "jdbc": {"url": "jdbc:postgresql://h/db"}},
     "catalog.warehouse", "not a valid S3 URI"),
    ({"type": "glue", "glue": {"catalog_id": "abc"}}, "catalog.glue.catalog_id", "String should match"),
])
def test_a_bad_catalog_is_one_line_naming_file_and_field(tmp_path: Path, catalog: dict[str, object], field: str,
                                                         reason: str) -> None:
    path = _profile(tmp_path, catalog)
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    message = str(info.value)
    assert "\n" not in message and "x@" not in message
    assert message.startswith(f"{path}: {field}: ") and reason in message


def test_an_unreadable_password_file_is_a_config_error_before_spark(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEATURESTREAM_CATALOG_PASSWORD", raising=False)
    path = _profile(tmp_path, {"type": "jdbc", "warehouse": "s3://bkt/w",
                               "jdbc": {"url": "jdbc:postgresql://h/db", "password_file": str(tmp_path / "nope")}})
    catalog = iceberg.from_profile(load_profile(path), str(path))
    with pytest.raises(ConfigError, match=rf"^{path}: catalog.jdbc.password_file: cannot read the secret file"):
        iceberg.spark_settings(catalog)
    no_catalog = _profile(tmp_path, {"type": "glue"}).read_text().replace("catalog:\n  type: glue\n", "")
    path.write_text(no_catalog)
    with pytest.raises(ConfigError, match=rf"^{path}: catalog: this needs an Iceberg catalog"):
        iceberg.from_profile(load_profile(path), str(path))


def test_an_archived_group_without_a_catalog_stops_the_stream_before_spark(tmp_path: Path) -> None:
    from featurestream.cli.commands.stream import archive_catalog
    from featurestream.config import load_feature_group

    group = yaml.safe_load((Path(__file__).resolve().parents[2] / "conf/feature_groups/card_activity.yaml").read_text())
    group_file = tmp_path / "archived.yaml"
    group_file.write_text(yaml.safe_dump({**group, "archive": True}))
    spec = load_feature_group(group_file)
    path = _profile(tmp_path, {"type": "glue"})
    path.write_text(path.read_text().replace("catalog:\n  type: glue\n", "archive:\n  namespace: raw\n"))
    with pytest.raises(ConfigError, match=rf"^{path}: catalog: this needs an Iceberg catalog"):
        archive_catalog([spec], load_profile(path), str(path))
    assert archive_catalog([spec.model_copy(update={"archive": False})], load_profile(path), str(path)) is None
