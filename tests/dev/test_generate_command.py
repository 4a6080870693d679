"""`featurestream generate` against the stack: --replay sends exactly what --save wrote, and
--labels creates and fills the labels table that conf/training_sets/card_fraud.yaml reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka import KafkaConsumer

from featurestream.config.training_set import load_training_set
from featurestream.training.labels import read_labels
from tests.training import pg

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "featurestream.cli", "generate", *args], cwd=ROOT,
                          env=dict(os.environ), capture_output=True, text=True, timeout=300, check=False)


def _feature_group(tmp_path: Path, topic: str) -> Path:
    """card_activity.yaml on a topic of its own (the file name is the group's name)."""
    data = yaml.safe_load((ROOT / "conf/feature_groups/card_activity.yaml").read_text())
    data["source"]["topic"] = topic
    path = tmp_path / f"{topic.replace('-', '_')}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _topic_values(topic: str, expected: int | None = None) -> list[dict[str, Any]]:
    """The topic's values: up to `expected`, or (None) all until 5 s pass without one."""
    consumer = KafkaConsumer(topic, bootstrap_servers=os.environ["FEATURESTREAM_KAFKA_BOOTSTRAP"],
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=20_000 if expected else 5_000)
    values = []
    for message in consumer:
        values.append(json.loads(message.value))
        if len(values) == expected:
            break
    consumer.close()
    return values


def _key(event: dict[str, Any]) -> str:
    return str(event["transaction_id"])


def test_replay_sends_what_save_wrote(stack_env: dict[str, str], tmp_path: Path) -> None:
    first, again = f"gen-save-{uuid.uuid4().hex[:8]}", f"gen-replay-{uuid.uuid4().hex[:8]}"
    saved = tmp_path / "events.jsonl"
    done = _generate("--feature-group", str(_feature_group(tmp_path, first)), "--events", "60", "--seed", "7",
                     "--save", str(saved))
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in saved.read_text().splitlines()]
    assert len(events) == 60

    done = _generate("--feature-group", str(_feature_group(tmp_path, again)), "--replay", str(saved))
    assert done.returncode == 0, done.stderr
    assert "sent 60 records (60 valid)" in done.stdout
    replayed = _topic_values(again, 60)
    assert sorted(replayed, key=_key) == sorted(events, key=_key) == sorted(_topic_values(first, 60), key=_key)


def test_replay_of_a_broken_file_is_a_config_error(tmp_path: Path) -> None:
    broken = tmp_path / "events.jsonl"
    broken.write_text('{"card_id": "c1"}\n[1, 2]\n')
    done = _generate("--feature-group", "conf/feature_groups/card_activity.yaml", "--replay", str(broken))
    assert done.returncode == 2
    assert done.stderr.strip() == f"featurestream: config error: {broken}: line 2: not a JSON object"


def _training_set(tmp_path: Path, table: str) -> Path:
    """The shipped card_fraud.yaml, with only the table renamed (so the test owns it)."""
    data = yaml.safe_load((ROOT / "conf/training_sets/card_fraud.yaml").read_text())
    data["labels"]["table"] = table
    path = tmp_path / "card_fraud.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_labels_fill_the_table_card_fraud_reads(stack_env: dict[str, str], spark: Any, tmp_path: Path) -> None:
    table = f"fs_gen_labels_{os.getpid()}"
    training_set = _training_set(tmp_path, table)
    saved = tmp_path / "events.jsonl"
    topic = f"gen-labels-{uuid.uuid4().hex[:8]}"
    group = _feature_group(tmp_path, topic)
    try:
        done = _generate("--feature-group", str(group), "--events", "400", "--seed", "3", "--save", str(saved),
                         "--labels", str(training_set))
        assert done.returncode == 0, done.stderr
        assert f"wrote 400 labels to {table}" in done.stdout
        # Labels again for the same events, sending nothing: upserted, still one label per payment.
        done = _generate("--feature-group", str(group), "--replay", str(saved), "--no-send",
                         "--labels", str(training_set))
        assert done.returncode == 0, done.stderr
        assert "sent" not in done.stdout and len(_topic_values(topic)) == 400

        events = {e["transaction_id"]: e for e in map(json.loads, saved.read_text().splitlines())}
        rows = pg.psql(f"COPY (SELECT transaction_id, card_id, amount, "
                       f"to_char(label_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), is_fraud "
                       f"FROM {table}) TO STDOUT WITH (FORMAT csv)").splitlines()
        assert len(rows) == len(events) == 400
        frauds = 0
        for row in rows:
            transaction, card, amount, label_time, is_fraud = row.split(",")
            event = events[transaction]
            assert (card, float(amount), label_time) == (event["card_id"], event["amount"], event["event_time"])
            frauds += int(is_fraud)
        assert 0 < frauds < 100  # 2 % (15 % above 150): some, not most

        # The shipped training set's labels spec reads it: timestamp, label and key columns all there.
        spec = load_training_set(training_set)
        labels = read_labels(spark, spec.labels, source=str(training_set))
        assert labels.rows == 400
        assert {"label_time", "is_fraud", "card_id", "updated_at"} <= set(labels.frame.columns)
        labels.unpersist()
    finally:
        pg.psql(f"DROP TABLE IF EXISTS {table}")


def test_labels_refuse_a_training_set_they_cannot_fill(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "conf/training_sets/card_fraud.yaml").read_text())
    data["labels"]["label_columns"] = ["chargeback"]
    path = tmp_path / "other_set.yaml"
    path.write_text(yaml.safe_dump(data))
    # Refused before anything is sent (no broker is needed to see it).
    done = _generate("--feature-group", "conf/feature_groups/card_activity.yaml", "--labels", str(path),
                     "--events", "1")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"featurestream: config error: {path}: labels: ['chargeback'] are not columns of "
                                  "conf/training_sets/card_labels.sql")
