"""Training-set config: the example loads; every bad file fails with one line naming file and field,
before Spark starts (exit code 2 from the command); secrets are refused wherever they appear."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from featurestream.config.credentials import redact
from featurestream.config.training_set import load_training_set
from featurestream.connectors.rds import (
    MARIADB,
    MYSQL,
    POSTGRES,
    InvalidIdentifierError,
    Secret,
    dialect_for,
)
from featurestream.errors import ConfigError
from featurestream.training.manifest import build_manifest, to_json

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "conf" / "training_sets" / "card_fraud.yaml"


def _write(tmp_path: Path, mutate: Any) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    mutate(data)
    path = tmp_path / "fraud_set.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_example_loads_and_name_is_the_file_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEATURESTREAM_COMPACTED_URI", raising=False)
    spec = load_training_set(EXAMPLE)
    assert spec.name == "card_fraud"
    assert spec.labels.table == "card_labels" and spec.labels.start is None  # all labels unless asked
    assert spec.feature_groups[0].path == "s3://featurestream-offline/compacted/card-activity-v1/data"
    assert spec.feature_groups[0].ttl_ms == 7 * 86_400_000
    assert spec.export_history is not None and spec.export_history.safety_lag_ms == 60_000


def _set(path: str, value: Any) -> Any:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value
    return mutate


@pytest.mark.parametrize(("mutate", "field", "reason"), [
    (_set("labels.jdbc.password", "hunter2"), "labels.jdbc.password", "secrets never go in the config"),
    (_set("labels.jdbc.url", "jdbc:postgresql://db/x?user=a&password=b"), "labels.jdbc.url", "carries a password"),
    (_set("labels.jdbc.url", "postgresql://db/x"), "labels.jdbc.url", "must start with jdbc:"),
    (_set("labels.table", 'labels"; DROP TABLE x; --'), "labels.table", "not a valid table name"),
    (_set("labels.query", "SELECT 1"), "labels", "exactly one of table and query"),
    (_set("labels.timestamp_column", "label time"), "labels.timestamp_column", "not a valid column name"),
    (_set("labels.label_columns", ['is"fraud']), "labels.label_columns", "not a valid column name"),
    (_set("feature_groups.0.keys", {"card_id": "card-id"}), "feature_groups[0].keys", "not a valid column name"),
    (_set("feature_groups.0.ttl", "7 days"), "feature_groups[0].ttl", "bad duration"),
    (_set("feature_groups.0.colour", "red"), "feature_groups[0].colour", "unknown key"),
    (_set("output.split", {"validation_fraction": 0.2, "validation_start": "2026-01-01T00:00:00Z"}),
     "output.split", "exactly one of"),
    (_set("output.format", "json"), "output.format", "Input should be"),
    (_set("name", "other"), "name", "file name is the training set's name"),
])
def test_bad_files_fail_with_file_field_and_reason(tmp_path: Path, mutate: Any, field: str, reason: str) -> None:
    path = _write(tmp_path, mutate)
    with pytest.raises(ConfigError) as caught:
        load_training_set(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {field}: "), message
    assert reason in message
    assert "hunter2" not in message


def test_label_columns_may_have_any_quotable_name(tmp_path: Path) -> None:
    """The docs allow any label column name (`amount.usd`); it is quoted wherever it is used."""
    labels = {"label_columns": ["amount.usd", "merchant name"],
              "columns": ["label_time", "card_id", "amount.usd", "merchant name"]}
    spec = load_training_set(_write(tmp_path, lambda data: data["labels"].update(labels)))
    assert spec.labels.label_columns == ["amount.usd", "merchant name"]


def test_command_exits_2_before_spark_on_a_bad_file(tmp_path: Path) -> None:
    path = _write(tmp_path, _set("labels.jdbc.url", "jdbc:postgresql://db/x?password=hunter2"))
    done = subprocess.run([sys.executable, "-m", "featurestream.cli", "training-set", "--config", str(path)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(f"featurestream: config error: {path}: labels.jdbc.url")
    assert "hunter2" not in done.stderr + done.stdout
    missing = subprocess.run([sys.executable, "jobs/build_training_set.py", "--config", str(tmp_path / "nope.yaml")],
                             capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert missing.returncode == 2 and "file not found" in missing.stderr
    usage = subprocess.run([sys.executable, "jobs/build_training_set.py"], capture_output=True, text=True,
                           timeout=120, cwd=ROOT)
    assert usage.returncode == 2 and "--config" in usage.stderr


def test_identifiers_are_validated_and_quoted_per_dialect() -> None:
    assert POSTGRES.quote_table("public.card_labels") == '"public"."card_labels"'
    assert MYSQL.quote("label_time") == "`label_time`"
    # Column names as queries and Parquet give them are quoted: inside quotes they are literal.
    assert POSTGRES.quote("amount.usd") == '"amount.usd"' and MYSQL.quote("merchant name") == "`merchant name`"
    # What could end a quoted name is refused, never escaped.
    for bad in ('a"b', "a`b", "a\\b", "", "a\nb", "b\n", "x" * 64):
        with pytest.raises(InvalidIdentifierError):
            POSTGRES.quote(bad)
    # Table names stay plain identifiers (they are also used as literals in information_schema).
    for bad_table in ("db.t`; DROP TABLE t", "a b", "1abc", "a;b", "a.b.c", "t\n"):
        with pytest.raises(InvalidIdentifierError):
            MYSQL.quote_table(bad_table)
    assert dialect_for("jdbc:mariadb://h/db") is MARIADB and dialect_for("jdbc:mysql://h/db") is MYSQL
    with pytest.raises(ConfigError):
        dialect_for("jdbc:oracle:thin:@h:1521/x")


def test_secrets_never_show_and_urls_are_redacted() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret) and "hunter2" not in f"{secret}"
    assert secret.reveal() == "hunter2"
    assert redact("jdbc:postgresql://h:5432/db?user=app&sslpassword=x&ApiToken=y") == (
        "jdbc:postgresql://h:5432/db?user=app&sslpassword=***&ApiToken=***")


def test_the_manifest_records_the_config_without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19, finding 6: even a URL that reached the spec unvalidated is masked in the manifest."""
    monkeypatch.delenv("FEATURESTREAM_JDBC_URL", raising=False)
    spec = load_training_set(EXAMPLE)
    assert spec.labels.jdbc is not None
    jdbc = spec.labels.jdbc.model_copy(update={"url": "jdbc:mysql://admin:Hunter2Secret@db/labels"})
    leaky = spec.model_copy(update={"labels": spec.labels.model_copy(update={"jdbc": jdbc})})
    now = datetime.now(UTC)
    manifest = build_manifest(spec=leaky, source="fraud.yaml", started=now, finished=now, spark_info={}, labels={},
                              feature_groups=[], join={}, output={})
    assert "Hunter2Secret" not in to_json(manifest)
    assert manifest["config"]["labels"]["jdbc"]["url"] == "jdbc:mysql://admin:***@db/labels"
