"""`make demo`'s code path serves the job's metrics while it runs: the demo (a subprocess, as
`make demo` runs it) prints the endpoint's URL, and scraping it mid-run shows the metrics of
docs/operations.md with values from this run: input rows, batch durations, DLQ rows, records
written online, write latency, freshness, the engine's aggregated events. At the end it reads the
group's offline rows back from S3 (> 0) and finds no ERROR line in the emulator's log."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from urllib.request import urlopen

import pytest

from tests.ops.job import ROOT, job_env

pytestmark = pytest.mark.integration


def _value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"{re.escape(name)}(?:{{(.*)}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


def test_demo_prints_its_metrics_url_and_serves_metrics_while_streaming(stack_env: dict[str, str]) -> None:
    env = job_env({"FEATURESTREAM_METRICS_PORT": "0"})
    proc = subprocess.Popen([sys.executable, "-m", "featurestream.dev.demo", "--seconds", "20"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    best, scrapes = "", 0
    seen = ""  # every scrape: a gauge set by one batch may be gone from the best one under load
    try:
        deadline = time.monotonic() + 600
        url = None
        while proc.poll() is None and time.monotonic() < deadline:
            url = url or next((line.split("metrics: ", 1)[1].strip() for line in list(lines)
                               if line.startswith("metrics: ")), None)
            if url:
                try:
                    text = urlopen(url, timeout=5).read().decode()
                except OSError:
                    break  # the demo closed its endpoint: it is done streaming
                scrapes += 1
                seen += "\n" + text
                if _value(text, "featurestream_write_records_total", outcome="written") >= _value(
                        best, "featurestream_write_records_total", outcome="written"):
                    best = text
            time.sleep(1.0)
        rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    reader.join(timeout=10)
    output = "".join(lines)
    assert rc == 0, output[-3000:]
    assert url is not None and url.startswith("http://127.0.0.1:") and url.endswith("/metrics"), output[-3000:]
    assert scrapes >= 3, output[-3000:]
    # Issue 19's acceptance: the offline store filled (read back from S3), no ERROR in the emulator's log.
    offline = re.search(r"^offline store: (\d+) rows read back from s3://featurestream-offline/", output, re.M)
    assert offline is not None and int(offline.group(1)) > 0, output[-3000:]
    assert re.search(r"^emulator log \(.*\): 0 ERROR lines during the demo$", output, re.M), output[-3000:]
    assert _value(best, "featurestream_input_rows_total") > 0
    assert _value(best, "featurestream_batch_duration_seconds_count") > 0
    assert _value(best, "featurestream_write_records_total", outcome="written") > 0
    assert _value(best, "featurestream_aggregated_events_total") > 0
    # The demo mixes 1% malformed records into the stream: the DLQ query counts them.
    assert _value(best, "featurestream_events_total", outcome="dlq") > 0
    for name in ("featurestream_freshness_seconds_bucket", "featurestream_write_latency_seconds",
                 "featurestream_watermark_lag_seconds", "featurestream_state_rows",
                 "featurestream_write_throttles_total", "featurestream_write_retries_total"):
        assert f"\n{name}" in seen, name
