"""The `featurestream` command as a user meets it: help for every command and flag, --version, and
one line (never a traceback, unless --debug) for AWS credential, endpoint and Spark failures."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path

import pytest

from featurestream.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
FEATURE_GROUP = "conf/feature_groups/card_activity.yaml"
COMMANDS = ("feature-groups", "stream", "compact", "training-set", "generate", "stack")


def _run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "featurestream.cli", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=timeout, check=False)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _without_credentials(tmp_path: Path) -> dict[str, str]:
    """No credential anywhere botocore looks: variables, files, instance metadata."""
    empty = tmp_path / "empty"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_CONFIG_FILE": str(empty), "AWS_SHARED_CREDENTIALS_FILE": str(empty),
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1",
                # Should a credential turn up after all, the request still goes nowhere.
                "AWS_ENDPOINT_URL_SAGEMAKER": "http://127.0.0.1:9"})
    return env


def _with_credentials(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                "AWS_ENDPOINT_URL_SAGEMAKER": endpoint})
    return env


# --- help and version ---------------------------------------------------------------------------

def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                                                             argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, (*path, name))


def test_help_lists_every_command_with_a_description(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    for command in COMMANDS:
        line = next((line for line in shown.splitlines() if line.strip().startswith(command)), None)
        assert line is not None, (command, shown)
    assert "--version" in shown and "--debug" in shown


@pytest.mark.parametrize("path", [path for path, _ in _parsers(build_parser()[0]) if path])
def test_every_subcommand_describes_every_flag(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    parser = dict(_parsers(build_parser()[0]))[path]
    undocumented = [action.option_strings or action.dest for action in parser._actions
                    if not isinstance(action, argparse._HelpAction) and action.help != argparse.SUPPRESS
                    and not (action.help or "").strip()]
    assert undocumented == [], f"featurestream {' '.join(path)}: flags without help: {undocumented}"
    with pytest.raises(SystemExit) as done:
        main([*path, "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: featurestream {' '.join(path)}") and "--debug" in shown


def test_version_is_the_installed_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"featurestream {version('featurestream')}"


# --- one-line failures ----------------------------------------------------------------------------

def test_no_credentials_is_one_line_and_exit_1(tmp_path: Path) -> None:
    done = _run(["feature-groups", "plan", FEATURE_GROUP], _without_credentials(tmp_path))
    assert done.returncode == 1, done.stderr
    assert _lines(done.stderr) == [
        "featurestream: feature-groups plan: no AWS credentials found (set AWS_PROFILE or "
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with a role; locally: eval \"$(featurestream stack env)\")"]


def test_debug_shows_the_traceback_and_the_same_line(tmp_path: Path) -> None:
    for args in (["--debug", "feature-groups", "plan", FEATURE_GROUP], ["feature-groups", "plan", FEATURE_GROUP,
                                                                          "--debug"]):
        done = _run(args, _without_credentials(tmp_path))
        assert done.returncode == 1
        assert "Traceback (most recent call last)" in done.stderr and "NoCredentialsError" in done.stderr
        assert _lines(done.stderr)[-1].startswith("featurestream: feature-groups plan: no AWS credentials found")


def test_unreachable_endpoint_is_one_line_and_exit_1() -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    done = _run(["feature-groups", "plan", FEATURE_GROUP], _with_credentials("http://127.0.0.1:9"))
    assert done.returncode == 1, done.stderr
    assert _lines(done.stderr) == ["featurestream: feature-groups plan: cannot reach http://127.0.0.1:9/ "
                                   "(connection refused)"]


class _RefusingSageMaker(BaseHTTPRequestHandler):
    """A real HTTP endpoint answering every call as AWS answers an unknown access key."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"__type": "UnrecognizedClientException",
                           "message": "The security token included in the request is invalid."}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RefusingSageMaker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_refused_credentials_are_one_line_and_exit_1(refusing_endpoint: str) -> None:
    done = _run(["feature-groups", "describe", FEATURE_GROUP], _with_credentials(refusing_endpoint))
    assert done.returncode == 1, done.stderr
    [line] = _lines(done.stderr)
    assert line.startswith("featurestream: feature-groups describe: AWS refused the credentials for "
                           "DescribeFeatureGroup (UnrecognizedClientException: The security token"), line


def test_spark_that_cannot_start_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """No Java: Spark's launcher complains in its own words, then ours is the one line, no traceback."""
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "no-java"), "FEATURESTREAM_JDBC_PASSWORD_FILE": "/dev/null"}
    done = _run(["training-set", "--config", "conf/training_sets/card_fraud.yaml", "--no-progress"], env)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert _lines(done.stderr)[-1] == ("featurestream: training-set: Spark did not start: its Java process exited "
                                       "(is Java 17 installed, JAVA_HOME right?)")


# --- config errors: every mistake of the file at once ---------------------------------------------

def test_three_mistakes_are_three_lines_and_one_exit_2(tmp_path: Path) -> None:
    text = (ROOT / FEATURE_GROUP).read_text()
    assert "entity: {key: card_id" in text and "tile: 1m" in text and "agg: count" in text
    broken = (text.replace("entity: {key: card_id", "entty: {key: card_id")
              .replace("tile: 1m", "tile: 1 minute").replace("agg: count", "agg: median"))
    path = tmp_path / "cards.yaml"
    path.write_text(broken)
    done = _run(["stream", "--feature-group", str(path)], dict(os.environ))
    assert done.returncode == 2, done.stderr
    lines = _lines(done.stderr)
    assert len(lines) == 3, lines
    assert all(line.startswith(f"featurestream: config error: {path}: ") for line in lines)
    by_field = {line.split(": ")[3]: line for line in lines}
    assert set(by_field) == {"entty", "windows.tile", "features[0].agg"}
    # The misspelt required key is one mistake: a suggestion, not also "entity: Field required".
    assert by_field["entty"].endswith("unknown key (did you mean 'entity'?)")


def test_kafka_data_loss_is_recognised_in_both_of_sparks_shapes() -> None:
    """Spark's own message (failOnDataLoss named) and the Kafka client's exception let through."""
    from featurestream.cli.failures import kafka_data_loss

    spark = ("java.lang.IllegalStateException: Cannot fetch offset 100 (GroupId: spark-kafka-source-1-executor, "
             "TopicPartition: payments-0). Some data may have been lost ... set the source option "
             '"failOnDataLoss" to "false".')
    client = ("org.apache.kafka.clients.consumer.OffsetOutOfRangeException: Fetch position FetchPosition{offset=1054,"
              " offsetEpoch=Optional.empty, currentLeader=LeaderAndEpoch{leader=Optional[127.0.0.1:9092 (id: 1 rack: "
              "null)], epoch=0}} is out of range for partition payments-1")
    assert kafka_data_loss(spark) == "offset 100 of payments-0"
    assert kafka_data_loss(client) == "offset 1054 of payments-1"
    assert kafka_data_loss("java.lang.RuntimeException: something else") is None
