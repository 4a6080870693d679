"""Every class of feature-group config error ends as one `<file>: <field>: <reason>` line (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from featurestream.config import load_feature_group
from featurestream.engine.transforms import check_with_spark
from featurestream.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "conf" / "feature_groups" / "card_risk.yaml"
AVRO_SCHEMA = {"type": "record", "name": "Payment", "fields": [
    {"name": "card_id", "type": "string"},
    {"name": "amount", "type": ["null", "double"]},
    {"name": "merchant_id", "type": ["null", "string"]},
    {"name": "transaction_id", "type": "string"},
    {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
]}


def _write(tmp_path: Path, mutate: Callable[[dict[str, Any]], object]) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    mutate(data)
    path = tmp_path / "cards.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


_BAD_AVSC = Path(tempfile.gettempdir()) / f"featurestream-bad-{os.getpid()}.avsc"


def _avro(d: dict[str, Any], **source: Any) -> None:
    if source.get("avro_schema_file") == str(_BAD_AVSC):
        _BAD_AVSC.write_text("{not json")
    d["source"] = {"type": "kafka", "topic": "payments", "format": "avro", **source}


CASES = [
    # unknown keys, anywhere
    (lambda d: d.update(owner="me"), "owner", "unknown key"),
    (lambda d: d["source"].update(partitions=3), "source.partitions", "unknown key"),
    (lambda d: d["online_store"].update(name="x"), "online_store.name", "unknown key"),
    (lambda d: d["windows"].update(hop="1m"), "windows.hop", "unknown key"),
    (lambda d: d["features"][0].update(colour="red"), "features[0].colour", "unknown key"),
    (lambda d: d["transforms"].insert(0, {"filter": "amount > 0", "cast": {"amount": "int"}}), "transforms[0]",
     "a step is a mapping with one key"),
    (lambda d: d["transforms"].insert(0, {"explode": "x"}), "transforms[0]", "a step is a mapping with one key"),
    # bad durations
    (lambda d: d["windows"].update(tile="5 minutes"), "windows.tile", "bad duration '5 minutes'"),
    (lambda d: d["windows"].update(allowed_lateness="soon"), "windows.allowed_lateness", "bad duration"),
    (lambda d: d["features"][0].update(windows=["5m", "1 hour"]), "features[0].windows", "bad duration"),
    (lambda d: d["transforms"][-1]["dedupe"].update(within="0s"), "within", "must be greater than zero"),
    (lambda d: d["online_store"].update(ttl="forever"), "online_store.ttl", "bad duration"),
    # windows that are not multiples of the tile
    (lambda d: d["features"][1].update(windows=["150s"]), "features[1].windows", "not a multiple of windows.tile"),
    (lambda d: d["windows"].update(tile="7m"), "features[0].windows", "not a multiple of windows.tile 7m"),
    # columns missing from the schema (after the transforms)
    (lambda d: d["features"][1].update(column="amt"), "features[1].column", "not a column of source.schema"),
    (lambda d: d["transforms"].insert(0, {"drop": ["amount"]}), "features[1].column", "not a column"),
    (lambda d: d["transforms"].insert(0, {"rename": {"amount": "value"}}), "features[1].column", "not a column"),
    (lambda d: d["transforms"].insert(0, {"cast": {"amt": "int"}}), "transforms[0]", "column 'amt' does not exist"),
    (lambda d: d["transforms"].insert(0, {"fill_nulls": {"amt": 0}}), "transforms[0]", "does not exist"),
    (lambda d: d["transforms"][-1]["dedupe"].update(key="txn"), "transforms[2]", "column 'txn' does not exist"),
    (lambda d: d["entity"].update(key="card"), "entity.key", "not a column of source.schema"),
    (lambda d: d["event_time"].update(field="when"), "event_time.field", "not a column of source.schema"),
    (lambda d: d["source"]["schema"].update(amount="money"), "source.schema", "column 'amount': unknown type 'money'"),
    (lambda d: d["source"].update(format="xml"), "source.format", "Input should be 'json' or 'avro'"),
    (lambda d: d["transforms"].insert(0, {"drop": ["event_time"]}), "transforms[0]",
     "entity key or event time and cannot change"),
    # types that do not fit the aggregation, steps in the wrong place
    (lambda d: d["features"].append({"name": "s", "agg": "sum", "column": "currency", "windows": ["5m"]}),
     "features[9].column", "is string, not a number"),
    (lambda d: d["features"].append({"name": "l", "agg": "last", "column": "amount_cents"}),
     "features[9].column", "derived: add a cast step"),
    (lambda d: d["features"].append({"name": "m", "agg": "mean", "column": "amount"}), "features[9]",
     "needs windows"),
    (lambda d: d["features"].append({"name": "c", "agg": "count", "column": "amount", "windows": ["5m"]}),
     "features[9]", "takes no column"),
    (lambda d: d["transforms"].insert(0, {"dedupe": {"key": "transaction_id", "within": "1m"}}), "transforms[0]",
     "dedupe must be the last step"),
    (lambda d: d["transforms"].insert(0, {"cast": {"amount": "money"}}), "transforms[0]", "unknown type 'money'"),
    (lambda d: d["features"].append({"name": "txn_count", "agg": "count", "windows": ["1h"]}), "features[9]",
     "'txn_count_1h' is defined twice"),
    # sketch parameters
    (lambda d: d["features"][7].pop("percentiles"), "features[7]", "approx_percentile needs percentiles"),
    (lambda d: d["features"][7].update(percentiles=[0.5, 1.5]), "features[7].percentiles", "1.5 is not in [0, 1]"),
    (lambda d: d["features"][7].update(percentiles=[0.5, 0.50]), "features[7].percentiles", "listed twice"),
    (lambda d: d["features"][7].update(column="currency"), "features[7].column", "is string, not a number"),
    (lambda d: d["features"][8].update(sketch_size=100), "features[8].sketch_size", "100 is not a power of 2"),
    (lambda d: d["features"][8].pop("k"), "features[8]", "top_k needs k"),
    (lambda d: d["features"][0].update(k=3), "features[0]", "k belongs to top_k, not to count"),
    (lambda d: d["features"][5].update(lg_k=30), "features[5].lg_k", "less than or equal to 21"),
    (lambda d: d["features"][0].update(buckets=4), "features[0]", "buckets belongs to the sketches"),
    (lambda d: d["features"][8].update(buckets=0), "features[8].buckets", "greater than or equal to 1"),
    # Avro sources
    (lambda d: _avro(d), "source", "exactly one of avro_schema or avro_schema_file"),
    (lambda d: _avro(d, avro_schema="{not json"), "source", "not valid JSON"),
    (lambda d: _avro(d, avro_schema_file="nowhere.avsc"), "source", "'nowhere.avsc' not found"),
    (lambda d: _avro(d, avro_schema_file=str(_BAD_AVSC)), "source", "the Avro schema is not valid JSON"),
    (lambda d: _avro(d, avro_schema={"type": "record", "name": "P", "fields": [{"name": "x", "type": "fixed"}]}),
     "source", "unsupported type 'fixed'"),
    (lambda d: _avro(d, avro_schema=AVRO_SCHEMA, schema={"card_id": "string"}), "source",
     "takes its columns from avro_schema"),
    (lambda d: d["source"].update(avro_schema=AVRO_SCHEMA), "source", "need format: avro"),
]


@pytest.mark.parametrize(("mutate", "field", "reason"), CASES)
def test_config_error_names_file_field_and_reason(tmp_path: Path, mutate, field: str, reason: str) -> None:
    path = _write(tmp_path, mutate)
    with pytest.raises(ConfigError) as caught:
        load_feature_group(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    assert field in message and reason in message, message
    assert "\n" not in message


def test_avro_schema_inline_or_from_a_file_gives_the_columns(tmp_path: Path) -> None:
    schema_file = tmp_path / "payment.avsc"
    schema_file.write_text(json.dumps(AVRO_SCHEMA))
    for source in ({"avro_schema": AVRO_SCHEMA}, {"avro_schema": json.dumps(AVRO_SCHEMA)},
                   {"avro_schema_file": str(schema_file)}):
        spec = load_feature_group(_write(tmp_path, lambda d, s=source: (
            _avro(d, **s), d["features"].pop(5), d["transforms"].pop(1), d.update(features=d["features"][:5]))))
        assert spec.source.schema_ == {"card_id": "string", "amount": "double", "merchant_id": "string",
                                       "transaction_id": "string", "event_time": "timestamp"}


@pytest.mark.parametrize(("step", "field"), [
    ({"filter": "amount >> 0 )"}, "transforms[0]"),
    ({"derive": {"x": "amount +* 2"}}, "transforms[0]"),
    ({"filter": "no_such_column > 1"}, "transforms[0]"),
    ({"derive": {"x": "unknown_function(amount)"}}, "transforms[0]"),
])
def test_sql_that_spark_cannot_parse_or_resolve_is_a_config_error(spark, tmp_path: Path, step, field: str) -> None:
    path = _write(tmp_path, lambda d: d["transforms"].insert(0, step))
    spec = load_feature_group(path)
    with pytest.raises(ConfigError) as caught:
        check_with_spark(spec, spark, str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: {field}: Spark rejects this step: "), message
    assert "\n" not in message


def test_a_derived_column_of_the_wrong_type_is_found_by_spark(spark, tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: (d["transforms"].insert(0, {"derive": {"label": "concat(currency, '!')"}}),
                                       d["features"].append({"name": "x", "agg": "max", "column": "label",
                                                             "windows": ["5m"]})))
    with pytest.raises(ConfigError, match=r"features\[9\]\.column: 'label' is string, not a number"):
        check_with_spark(load_feature_group(path), spark, str(path))


@pytest.mark.parametrize("entry", [["-m", "featurestream.cli", "stream"], [str(ROOT / "jobs" / "stream_features.py")]])
def test_a_bad_config_stops_the_job_before_spark_with_exit_2(tmp_path: Path, entry: list[str]) -> None:
    """One line on stderr naming file, field and reason; no Spark session (it would take seconds)."""
    path = _write(tmp_path, lambda d: d["windows"].update(tile="5 minutes"))
    done = subprocess.run([sys.executable, *entry, "--feature-group", str(path), "--env", "local"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert done.returncode == 2, done
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [f"featurestream: config error: {path}: windows.tile: bad duration '5 minutes': "
                     "expected a whole number and a unit, e.g. 500ms, 30s, 5m, 1h, 7d"], done.stderr
