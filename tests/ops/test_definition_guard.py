"""`featurestream stream` on a checkpoint written by another definition: exit 2 before any query
starts, one line naming the change, and neither the checkpoint nor the online store touched.

One real run (Kafka → Spark → the emulator) writes a checkpoint and online records; then each kind
of change is started on it in-process (the CLI's own `main`, so the exit code and the stderr line
are the user's). A checkpoint without a definition file is adopted (a log line says so).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from featurestream.cli import main
from featurestream.dev.generator import produce_kafka
from tests.engine.harness import encode, event

pytestmark = pytest.mark.integration

BASE = """
entity: {key: card_id, type: string}
event_time: {field: event_time}
source:
  type: kafka
  topic: TOPIC
  format: json
  schema: {transaction_id: string, card_id: string, merchant_id: string, amount: double, event_time: timestamp}
transforms:
  - filter: "amount > 0"
  - dedupe: {key: transaction_id, within: 5m}
windows: {tile: 1m, allowed_lateness: 2m}
features:
  - {name: n, agg: count, windows: [5m]}
  - {name: total, agg: sum, column: amount, windows: [10m]}
online_store: {feature_group_name: FGNAME, ttl: 7d}
"""
# (what the YAML says instead, the line the job must print)
CHANGES = [
    (("tile: 1m", "tile: 5m"), "windows.tile: 1m -> 5m"),
    (("windows: [5m]}", "windows: [15m]}"), "features.n.windows: [5m] -> [15m]"),
    (('filter: "amount > 0"', 'filter: "amount > 1"'), "transforms[0].filter: amount > 0 -> amount > 1"),
    (("within: 5m", "within: 10m"), "transforms[1].dedupe.within: 5m -> 10m"),
    (("agg: sum", "agg: max"), "features.total.agg: sum -> max"),
    (("windows: [10m]}\n", "windows: [10m]}\n  - {name: hi, agg: max, column: amount, windows: [5m]}\n"),
     "features.hi: added"),
]
CARDS = ("card-a", "card-b", "card-c")


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "guarded.yaml"  # the file name is the group's name: every variant shares the checkpoint
    path.write_text(text)
    return path


def _profile(tmp_path: Path, stack_env: dict[str, str]) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(json.dumps({
        "kind": "local",
        "kafka": {"bootstrap_servers": stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"]},
        "feature_store": {"offline_store_s3_uri": "s3://featurestream-offline/guard"},
        "spark": {"master": "local[2]", "shuffle_partitions": 2},
        "checkpoint_root": str(tmp_path / "checkpoints"),
        "dlq_path": str(tmp_path / "dlq"),
        "metrics": {"enabled": False},
        "lineage": {"transport": "none"},
    }))
    return path


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _online(name: str) -> dict[str, Any]:
    runtime = boto3.client("sagemaker-featurestore-runtime")
    return {card: runtime.get_record(FeatureGroupName=name, RecordIdentifierValueAsString=card).get("Record")
            for card in CARDS}


def _stream(group: Path, profile: Path) -> int:
    return main(["stream", "--feature-group", str(group), "--env", str(profile), "--available-now"])


def test_a_changed_definition_stops_before_spark_processes_anything(
        stack_env: dict[str, str], spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suffix = uuid.uuid4().hex[:8]
    name = f"guard-{suffix}"
    base = BASE.replace("TOPIC", f"guard-{suffix}").replace("FGNAME", name)
    group = _write(tmp_path / "base", base)
    profile = _profile(tmp_path, stack_env)
    assert main(["feature-groups", "apply", str(group), "--env", str(profile)]) == 0
    start = (int(time.time()) // 60 - 30) * 60_000
    events = [event(card, start + i * 17_000, 2.5 + i, "m-1") for i, card in enumerate(CARDS * 4)]
    produce_kafka([encode(e) for e in events], stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"], f"guard-{suffix}")
    assert _stream(group, profile) == 0
    checkpoint = tmp_path / "checkpoints" / "guarded"
    stored = json.loads((checkpoint / "definition.json").read_text())
    assert stored["fingerprint"].startswith("sha256:")
    before, online = _snapshot(checkpoint), _online(name)
    assert all(online.values())
    capsys.readouterr()

    for (old, new), line in CHANGES:
        assert old in base
        changed = _write(tmp_path / line.split(":")[0].replace("[", "_").replace("]", ""), base.replace(old, new))
        assert _stream(changed, profile) == 2, line
        err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("featurestream:")]
        assert len(err) == 1, err
        assert err[0].startswith(f"featurestream: config error: {changed}: definition: the checkpoint"), err[0]
        assert line in err[0] and "new version" in err[0] and "new folder" in err[0], err[0]
        assert _snapshot(checkpoint) == before, line
    assert _online(name) == online

    # The plan names the kind of change: a new window needs a new version, a new feature does not.
    assert main(["feature-groups", "plan", str(_write(tmp_path / "plan-tile", base.replace("tile: 1m", "tile: 5m"))),
                 "--env", str(profile)]) == 1
    out = capsys.readouterr().out
    assert "needs a new version" in out and "windows.tile: 1m -> 5m" in out and f"{name}-v2" in out
    added = base.replace(*CHANGES[-1][0])
    assert main(["feature-groups", "plan", str(_write(tmp_path / "plan-add", added)), "--env", str(profile)]) == 0
    out = capsys.readouterr().out
    assert "only new features" in out and "features.hi: added" in out and "5m after the first event" in out

    # A checkpoint from before fingerprints: adopted, and said so.
    (checkpoint / "definition.json").unlink()
    assert _stream(group, profile) == 0
    assert "definition_adopted" in capsys.readouterr().err
    assert json.loads((checkpoint / "definition.json").read_text())["fingerprint"] == stored["fingerprint"]
