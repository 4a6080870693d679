"""The profile's operations sections, the trigger interval and Kafka security options: every
mistake is one ConfigError naming the file and the field, found before Spark starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from featurestream.cli.commands.stream import prepare_profile, trigger_ms
from featurestream.config import load_profile
from featurestream.errors import ConfigError
from featurestream.ops.secrets import MSK_IAM_OPTIONS

BASE = {"kafka": {"bootstrap_servers": "127.0.0.1:19092"}, "checkpoint_root": "/tmp/cp", "dlq_path": "/tmp/dlq"}


def write(tmp_path: Path, **sections: object) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({**BASE, **sections}))
    return path


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURESTREAM_METRICS_PORT", "20001")
    profile = load_profile(write(tmp_path))
    assert (profile.metrics.enabled, profile.metrics.host, profile.metrics.port) == (True, "127.0.0.1", 20001)
    assert profile.lineage.transport == "file" and profile.shutdown.stop_file is None
    assert profile.security.kafka_secret_options == {} and not profile.security.kafka_msk_iam


@pytest.mark.parametrize(("sections", "field", "reason"), [
    ({"metrics": {"port": 70000}}, "metrics.port", "less than or equal to 65535"),
    ({"metrics": {"freshness_window": "ten minutes"}}, "metrics.freshness_window", "bad duration"),
    ({"lineage": {"transport": "http"}}, "lineage", "transport http needs url"),
    ({"lineage": {"transport": "kafka"}}, "lineage.transport", "'file', 'http' or 'none'"),
    ({"shutdown": {"timeout": "0s"}}, "shutdown.timeout", "greater than zero"),
    ({"shutdown": {"grace": "1m"}}, "shutdown.grace", "unknown key"),
    ({"security": {"kafka_secret_options": {"sasl.jaas.config": {"env": "A", "file": "/x"}}}},
     "security.kafka_secret_options.sasl.jaas.config", "exactly one of env or file"),
    ({"security": {"kafka_secret_options": {"sasl.jaas.config": {"env": "NOT A NAME"}}}},
     "security.kafka_secret_options.sasl.jaas.config.env", "should match pattern"),
])
def test_section_errors(tmp_path: Path, sections: dict[str, object], field: str, reason: str) -> None:
    path = write(tmp_path, **sections)
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert info.value.field == field
    assert reason in info.value.reason
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("text", "ms"), [
    ("5 seconds", 5000), ("1 second", 1000), ("500 milliseconds", 500), ("2 minutes", 120_000), ("10s", 10_000),
    ("250ms", 250),
])
def test_trigger_interval(text: str, ms: int) -> None:
    assert trigger_ms(text, "p.yaml") == ms


@pytest.mark.parametrize("text", ["soon", "5 parsecs", "0 seconds", "-1 seconds", ""])
def test_bad_trigger_interval(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        trigger_ms(text, "p.yaml")
    assert info.value.field == "spark.trigger_interval"


def test_secret_options_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "keystore_password"
    secret_file.write_text("k3ystore-pass\n")
    monkeypatch.setenv("TEST_KAFKA_JAAS", 'ScramLoginModule required username="u" password="s3cret-pw";')
    path = write(tmp_path, spark={"trigger_interval": "3s"}, kafka={**BASE["kafka"], "options": {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512"}},
        security={"kafka_secret_options": {"sasl.jaas.config": {"env": "TEST_KAFKA_JAAS"},
                                           "ssl.keystore.password": {"file": str(secret_file)}}})
    prepared = prepare_profile(load_profile(path), str(path))
    assert prepared.kafka.options == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.jaas.config": 'ScramLoginModule required username="u" password="s3cret-pw";',
        "ssl.keystore.password": "k3ystore-pass",
    }
    assert prepared.spark.trigger_interval == "3000 milliseconds"
    # Nothing of it was written back to the file.
    assert "s3cret" not in path.read_text()


def test_missing_secret_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_ABSENT_SECRET", raising=False)
    path = write(tmp_path, security={"kafka_secret_options": {"sasl.jaas.config": {"env": "TEST_ABSENT_SECRET"}}})
    with pytest.raises(ConfigError) as info:
        prepare_profile(load_profile(path), str(path))
    assert info.value.field == "security.kafka_secret_options.sasl.jaas.config"
    assert "TEST_ABSENT_SECRET is not set" in info.value.reason
    path = write(tmp_path, security={"kafka_secret_options": {"ssl.key.password": {"file": str(tmp_path / "nope")}}})
    with pytest.raises(ConfigError, match="cannot read the secret file"):
        prepare_profile(load_profile(path), str(path))


def test_msk_iam(tmp_path: Path) -> None:
    path = write(tmp_path, security={"kafka_msk_iam": True})
    prepared = prepare_profile(load_profile(path), str(path))
    assert prepared.kafka.options == MSK_IAM_OPTIONS
    conflicting = write(tmp_path, kafka={**BASE["kafka"], "options": {"security.protocol": "PLAINTEXT"}},
                        security={"kafka_msk_iam": True})
    with pytest.raises(ConfigError) as info:
        prepare_profile(load_profile(conflicting), str(conflicting))
    assert info.value.field == "kafka.options.security.protocol"


def test_secret_option_given_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_JAAS", "x" * 10)
    path = write(tmp_path, security={"kafka_msk_iam": True,
                                     "kafka_secret_options": {"sasl.jaas.config": {"env": "TEST_JAAS"}}})
    with pytest.raises(ConfigError, match="set it once"):
        prepare_profile(load_profile(path), str(path))


def test_inline_secret_still_refused(tmp_path: Path) -> None:
    path = write(tmp_path, kafka={**BASE["kafka"], "options": {"ssl.truststore.password": "inline"}})
    with pytest.raises(ConfigError, match="looks like a secret"):
        load_profile(path)
