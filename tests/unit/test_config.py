"""Config validation: every bad file fails with one line naming the file, the field and the reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from featurestream.config import load_feature_group, load_profile
from featurestream.durations import format_duration, parse_duration_ms
from featurestream.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "conf" / "feature_groups" / "card_activity.yaml"


def _write(tmp_path: Path, mutate, name: str = "cards") -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    mutate(data)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_example_loads_and_name_is_the_file_name() -> None:
    spec = load_feature_group(EXAMPLE)
    assert spec.name == "card_activity"
    assert [n for f in spec.features for n, _ in f.output_names()] == ["txn_count_5m", "amount_sum_5m"]


def test_profiles_load_with_env_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEATURESTREAM_KAFKA_BOOTSTRAP", raising=False)
    assert load_profile("local").kafka.bootstrap_servers == "127.0.0.1:19092"
    monkeypatch.setenv("FEATURESTREAM_KAFKA_BOOTSTRAP", "broker:9092")
    assert load_profile(ROOT / "featurestream/config/profiles/local.yaml").kafka.bootstrap_servers == "broker:9092"


@pytest.mark.parametrize(
    ("mutate", "field", "reason"),
    [
        (lambda d: d.update(colour="blue"), "colour", "unknown key"),
        (lambda d: d["entity"].update(kee="x"), "entity.kee", "unknown key"),
        (lambda d: d["windows"].update(tile="5 minutes"), "windows.tile", "bad duration"),
        (lambda d: d["features"][0].update(windows=["90s"]), "features", "not a multiple of windows.tile"),
        (lambda d: d["features"][1].update(column="amt"), "features[1].column", "not a column"),
        (lambda d: d["features"][0].update(agg="median"), "features[0].agg", "Input should be"),
        (lambda d: d["features"][1].pop("column"), "features[1]", "needs a column"),
        (lambda d: d["source"]["schema"].update(amount="money"), "source.schema", "unknown type"),
        (lambda d: d["entity"].update(key="card"), "entity.key", "not a column of source.schema"),
        (lambda d: d["features"][0].update(windows="5m"), "features[0].windows", "valid list"),
        (lambda d: d["online_store"].update(feature_group_name="bad_name!"), "online_store.feature_group_name",
         "not a valid SageMaker feature group name"),
    ],
)
def test_bad_feature_group_names_file_field_and_reason(tmp_path: Path, mutate, field: str, reason: str) -> None:
    path = _write(tmp_path, mutate)
    with pytest.raises(ConfigError) as caught:
        load_feature_group(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    assert field in message and reason in message, message
    assert "\n" not in message


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found"):
        load_feature_group(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("entity: {key: [\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: line \d+: not valid YAML"):
        load_feature_group(broken)


def test_profile_rejects_inline_secrets_and_unset_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.yaml"
    tail = "checkpoint_root: c\ndlq_path: d\n"
    path.write_text("kafka: {bootstrap_servers: x, options: {sasl.password: hunter2}}\n" + tail)
    with pytest.raises(ConfigError, match=r"p.yaml: kafka.options: .*looks like a secret"):
        load_profile(path)
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    path.write_text("kafka: {bootstrap_servers: '${NOT_SET_ANYWHERE}'}\n" + tail)
    with pytest.raises(ConfigError, match=r"p.yaml: kafka.bootstrap_servers: environment variable NOT_SET_ANYWHERE"):
        load_profile(path)
    path.write_text("kafka: {bootstrap_servers: x}\nspark: {shuffle_partitions: many}\n" + tail)
    with pytest.raises(ConfigError, match=r"p.yaml: spark.shuffle_partitions: Input should be a valid integer"):
        load_profile(path)


@pytest.mark.parametrize("text", ["5", "5 min", "-1m", "0s", "1.5h", ""])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration_ms(text)


def test_durations_round_trip() -> None:
    assert parse_duration_ms("500ms") == 500
    assert parse_duration_ms("24h") == 86_400_000
    assert format_duration(parse_duration_ms("60m")) == "1h"
    assert format_duration(90_000) == "90s"


@pytest.mark.parametrize("args_tail", [[], ["--available-now"]])
def test_stream_job_exits_2_before_spark_on_bad_config(tmp_path: Path, args_tail: list[str]) -> None:
    path = _write(tmp_path, lambda d: d.update(colour="blue"))
    result = subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "stream_features.py"), "--feature-group", str(path), *args_tail],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"featurestream: config error: {path}: colour: unknown key"]


def test_cli_missing_file_exits_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "featurestream.cli", "stream", "--feature-group", str(tmp_path / "x.yaml")],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"featurestream: config error: {tmp_path / 'x.yaml'}: file not found"
