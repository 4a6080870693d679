"""The README's Operations sequence, run as written: from a folder outside the checkout, with a
scrubbed environment (no PYSPARK_PYTHON, SPARK_LOCAL_IP or PYTHONPATH; the venv not on PATH, so
`python3` is the system's, as for a user who did not activate it), on a private state folder and
private ports. Then every generated card's online record against the DuckDB oracle.

It fails if the CLI leaves Spark's Python workers to `python3` from PATH (ModuleNotFoundError in
every Python task), or if `--env local` is looked up only under the current folder.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from featurestream.config import load_feature_group
from tests.ops.online import compare_online

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MARK = "<!-- operations-sequence"
# The system's folders only: bash, java, runuser, initdb, node, and a python3 without our packages.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PORTS = ("KAFKA", "KAFKA_CONTROLLER", "KINESIS", "KINESIS_TLS", "S3", "POSTGRES", "FEATURE_STORE")


def readme_block() -> list[str]:
    """The shell lines of the README's marked block (a comment after a command is kept: bash drops it)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(re.escape(MARK) + r".*?-->\s*```bash\n(.*?)```", text, re.DOTALL)
    assert match, f"README.md has no {MARK} --> block"
    return [line for line in match.group(1).splitlines() if line.strip()]


def as_outside_the_checkout(line: str) -> str:
    """The README's paths are relative to the checkout: made absolute, nothing else changed."""
    line = re.sub(r"(?<![\w/])\.venv/bin/", f"{ROOT}/.venv/bin/", line)
    return re.sub(r"(?<![\w/])conf/", f"{ROOT}/conf/", line)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def scrubbed_env(state: Path) -> dict[str, str]:
    env = {"HOME": os.environ.get("HOME", str(state)), "PATH": SYSTEM_PATH, "LANG": "C.UTF-8",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
           "FEATURESTREAM_STATE_DIR": str(state), "FEATURESTREAM_METRICS_PORT": "0"}
    # JAVA_HOME as the user has it; SPARK_LOCAL_DIRS is the test run's scratch (scripts/with-spark-scratch).
    env.update({k: os.environ[k] for k in ("JAVA_HOME", "SPARK_LOCAL_DIRS") if k in os.environ})
    env.update({f"FEATURESTREAM_{name}_PORT": str(port) for name, port in zip(PORTS, free_ports(len(PORTS)),
                                                                              strict=True)})
    return env


def test_the_readme_operations_sequence_from_another_folder(tmp_path: Path) -> None:
    lines = readme_block()
    assert lines[0].startswith(".venv/bin/featurestream stack up") and "stack down" in lines[-1]
    assert any("stream --feature-group" in line and "--available-now" in line for line in lines)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = scrubbed_env(tmp_path / "state")
    script = "set -euo pipefail\n" + "\n".join(as_outside_the_checkout(line) for line in lines[:-1]) + "\n"
    started = time.monotonic()
    try:
        run = subprocess.run(["/bin/bash", "-c", script], cwd=work, env=env, capture_output=True, text=True,
                             timeout=600, check=False)
        took = time.monotonic() - started
        assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-6000:]}"
        events = [json.loads(line) for line in (work / "events.jsonl").read_text().splitlines()]
        spec = load_feature_group(ROOT / "conf" / "feature_groups" / "card_activity.yaml")
        expected, missing, wrong = compare_online(spec, events,
                                                  endpoint=f"http://127.0.0.1:{env['FEATURESTREAM_FEATURE_STORE_PORT']}")
        assert expected > 50 and missing == [] and wrong == [], (expected, missing[:3], wrong[:2])
        print(f"README sequence: {len(events)} events, {expected} online records, {took:.0f}s")
    finally:
        down = subprocess.run(["/bin/bash", "-c", as_outside_the_checkout(lines[-1])], cwd=work, env=env,
                              capture_output=True, text=True, timeout=180, check=False)
    assert down.returncode == 0, down.stdout + down.stderr
