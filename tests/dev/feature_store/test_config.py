"""Emulator flags and their FEATURESTREAM_FS_* environment defaults; the /health route."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from featurestream.dev.feature_store.config import ConfigError, parse_args

pytestmark = pytest.mark.feature_store


def test_flags_default_from_environment() -> None:
    env = {
        "FEATURESTREAM_FS_PORT": "18181",
        "FEATURESTREAM_FS_LATENCY_MS": "12.5",
        "FEATURESTREAM_FS_THROTTLE_RATE": "0.25",
        "FEATURESTREAM_FS_RECORD_WRITE_LIMIT": "3",
        "FEATURESTREAM_FS_SEED": "9",
        "FEATURESTREAM_FS_OFFLINE_LOCAL_DIR": "/tmp/offline",
        "AWS_REGION": "eu-west-1",
    }
    config = parse_args(["--state-dir", "/tmp/s", "--error-rate", "0.5"], env)
    assert config.port == 18181
    assert config.state_dir == Path("/tmp/s")
    assert config.offline_local_dir == Path("/tmp/offline")
    assert config.region == "eu-west-1"
    assert config.account_id == "123456789012"
    assert config.faults.latency_ms == 12.5
    assert config.faults.throttle_rate == 0.25
    assert config.faults.error_rate == 0.5
    assert config.faults.record_write_limit == 3
    assert config.faults.seed == 9
    # A flag beats its variable.
    assert parse_args(["--seed", "1"], env).faults.seed == 1


def test_defaults() -> None:
    config = parse_args([], {})
    assert (config.host, config.port, config.flush_interval_s) == ("127.0.0.1", 18080, 5.0)
    assert config.region == "us-east-1"
    assert config.faults.record_write_limit is None
    assert (config.request_timeout_s, config.idle_timeout_s, config.workers) == (30.0, 120.0, 32)
    assert parse_args([], {"FEATURESTREAM_FEATURE_STORE_PORT": "19999"}).port == 19999
    assert parse_args([], {"FEATURESTREAM_FS_REQUEST_TIMEOUT_S": "2.5"}).request_timeout_s == 2.5


@pytest.mark.parametrize("argv", [["--throttle-rate", "1.5"], ["--error-rate", "-0.1"],
                                  ["--flush-interval-s", "0"], ["--record-write-limit", "0"],
                                  ["--request-timeout-s", "0"], ["--idle-timeout-s", "-1"], ["--workers", "0"]])
def test_invalid_values(argv: list[str]) -> None:
    with pytest.raises(ConfigError):
        parse_args(argv, {})


def test_health_route(emulator: Any) -> None:
    with urllib.request.urlopen(emulator.url + "/health") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/json"
        body = json.loads(resp.read())
    assert body["status"] == "ok"
    assert {"feature_groups", "offline_queued_rows", "faults_injected", "offline_quarantined_rows",
            "offline_quarantine", "offline_blocked", "threads", "http"} <= set(body)
