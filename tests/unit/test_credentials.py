"""Credentials in configs (issue 19, finding 6): a JDBC URL carrying a password in any form a
driver accepts, or a profile option carrying a secret inside its value (a JAAS string), is refused
at load with one line naming the file and the field, never echoing the secret; the one redaction
function masks every such form wherever a URL is printed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from featurestream.cli import main
from featurestream.cli.entrypoint import run_entry
from featurestream.config import load_profile
from featurestream.config.training_set import load_training_set
from featurestream.errors import ConfigError, FeatureStreamError

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Hunter2Secret"

# Every form a password can take in a JDBC URL of the databases people point us at.
JDBC_WITH_PASSWORD = [
    f"jdbc:mysql://admin:{SECRET}@db/labels",
    f"jdbc:mariadb://admin:{SECRET}@db:3306/labels",
    f"jdbc:postgresql://admin:{SECRET}@db:5432/labels",
    f"jdbc:postgresql://db:5432/labels?user=admin&password={SECRET}",
    f"jdbc:postgresql://db/labels?user=admin&sslpassword={SECRET}",
    f"jdbc:mysql://db/labels?user=admin&PASSWORD={SECRET}&useSSL=true",
    f"jdbc:mysql://(host=db,port=3306,user=admin,password={SECRET})/labels",
    f"jdbc:sqlserver://db:1433;databaseName=labels;user=admin;password={SECRET};encrypt=true",
    f"jdbc:oracle:thin:admin/{SECRET}@db:1521:orcl",
    f"jdbc:oracle:thin:admin/{SECRET}@//db:1521/labels",
]
JDBC_WITHOUT_PASSWORD = [
    "jdbc:postgresql://127.0.0.1:15432/featurestream?user=featurestream",
    "jdbc:mysql://admin@db/labels",
    "jdbc:sqlserver://db:1433;databaseName=labels;user=admin",
    "jdbc:oracle:thin:@//db:1521/labels",
]


def _training_set(tmp_path: Path, url: str) -> Path:
    data = yaml.safe_load((ROOT / "conf" / "training_sets" / "card_fraud.yaml").read_text())
    data["labels"]["jdbc"]["url"] = url
    path = tmp_path / "fraud.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("url", JDBC_WITH_PASSWORD)
def test_a_password_in_any_jdbc_url_form_is_refused(tmp_path: Path, url: str) -> None:
    path = _training_set(tmp_path, url)
    with pytest.raises(ConfigError) as caught:
        load_training_set(path)
    assert str(caught.value).startswith(f"{path}: labels.jdbc.url: carries a password"), caught.value
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("url", JDBC_WITH_PASSWORD)
def test_every_form_is_redacted(url: str) -> None:
    from featurestream.config.credentials import redact

    shown = redact(f"JDBC read from {url} failed: connection refused")
    assert SECRET not in shown and "***" in shown and shown.endswith(" failed: connection refused")
    assert "admin" in shown  # a user name is not a secret: the line stays useful


@pytest.mark.parametrize("url", JDBC_WITHOUT_PASSWORD)
def test_urls_without_a_password_load_and_print_unchanged(tmp_path: Path, url: str) -> None:
    from featurestream.config.credentials import redact

    assert load_training_set(_training_set(tmp_path, url)).labels.jdbc.url == url  # type: ignore[union-attr]
    assert redact(url) == url


@pytest.fixture
def root_handlers() -> Iterator[None]:
    """The command installs its JSON log handler on the root logger (on this test's stderr): undone after."""
    saved = list(logging.getLogger().handlers)
    yield
    logging.getLogger().handlers[:] = saved


@pytest.mark.usefixtures("root_handlers")
def test_the_command_exits_2_before_spark_and_never_shows_the_secret(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = _training_set(tmp_path, f"jdbc:postgresql://admin:{SECRET}@127.0.0.1:1/labels")
    assert main(["training-set", "--config", str(path)]) == 2
    captured = capsys.readouterr()
    assert [line for line in captured.err.splitlines() if line.startswith("featurestream:")] == [
        f"featurestream: config error: {path}: labels.jdbc.url: carries a password in the URL (user:password@host): "
        "secrets never go in the config (use password_env or password_file)"]
    assert SECRET not in captured.out + captured.err


def test_a_failure_line_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    def body() -> int:
        raise FeatureStreamError(f"JDBC read from jdbc:mysql://admin:{SECRET}@db/labels failed: timeout")

    assert run_entry(body, "training-set") == 1
    err = capsys.readouterr().err
    assert "featurestream: JDBC read from jdbc:mysql://admin:***@db/labels failed: timeout" in err.splitlines()
    assert SECRET not in err


def _profile(tmp_path: Path, **sections: Any) -> Path:
    data: dict[str, Any] = {"kafka": {"bootstrap_servers": "127.0.0.1:1"}, "checkpoint_root": "/tmp/cp",
                            "dlq_path": "/tmp/dlq", **sections}
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(("sections", "field"), [
    ({"kafka": {"bootstrap_servers": "b:9096", "options": {"sasl.jaas.config": (
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="svc" '
        f'password="{SECRET}";')}}}, "kafka.options"),
    ({"kafka": {"bootstrap_servers": "b:9096", "options": {"sasl.jaas.config": (
        'org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId="svc" '
        f'clientSecret="{SECRET}";')}}}, "kafka.options"),
    ({"spark": {"conf": {"spark.kafka.clusters.a.sasl.jaas.config": f'x required password="{SECRET}";'}}},
     "spark.conf"),
    ({"spark": {"conf": {"spark.hadoop.fs.s3a.secret.key": SECRET}}}, "spark.conf"),
    ({"lineage": {"transport": "http", "url": f"http://svc:{SECRET}@marquez:5000"}}, "lineage.url"),
    ({"feature_store": {"runtime_endpoint_url": f"https://svc:{SECRET}@proxy:8443"}},
     "feature_store.runtime_endpoint_url"),
])
def test_a_secret_inside_a_profile_value_is_refused(tmp_path: Path, sections: dict[str, Any], field: str) -> None:
    path = _profile(tmp_path, **sections)
    with pytest.raises(ConfigError) as caught:
        load_profile(path)
    assert str(caught.value).startswith(f"{path}: {field}: "), caught.value
    assert SECRET not in str(caught.value)


def test_a_jaas_config_without_secrets_stays_allowed(tmp_path: Path) -> None:
    iam = "software.amazon.msk.auth.iam.IAMLoginModule required;"
    profile = load_profile(_profile(tmp_path, kafka={"bootstrap_servers": "b:9098", "options": {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "AWS_MSK_IAM", "sasl.jaas.config": iam}}))
    assert profile.kafka.options["sasl.jaas.config"] == iam


def test_logging_follows_a_replaced_stderr_and_never_prints_the_handled_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Logging set up while sys.stderr was another (since closed) stream, as an in-process CLI call
    under a test runner leaves it: the failure line still reaches today's stderr. Before, logging
    printed "--- Logging error ---" with the traceback of the exception being handled, whose text
    (a JDBC URL with its password) had never been redacted."""
    import io
    import logging
    import sys

    from featurestream.logs import configure_json_logging

    before, replaced = sys.stderr, io.StringIO()
    sys.stderr = replaced
    try:
        configure_json_logging()
    finally:
        sys.stderr = before
        replaced.close()
    try:
        raise FeatureStreamError(f"jdbc:mysql://admin:{SECRET}@db/labels")
    except FeatureStreamError:
        logging.getLogger("featurestream.test").error("featurestream: the read failed")
    err = capsys.readouterr().err
    assert "the read failed" in err and "Logging error" not in err and SECRET not in err
