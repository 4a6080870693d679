"""Fast checks of the stack's bookkeeping: port settings, pid files, stale and recycled pids."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from featurestream.dev.stack import manager, process
from featurestream.dev.stack.config import StackConfig, ports_from_env
from featurestream.dev.stack.errors import PortInUseError, StackConfigError


def test_ports_come_from_the_environment() -> None:
    ports = ports_from_env({"FEATURESTREAM_FEATURE_STORE_PORT": "28081", "FEATURESTREAM_KAFKA_PORT": "29999"})
    assert ports["feature-store"] == 28081
    assert ports["kafka"] == 29999
    assert ports["s3"] == 15000


@pytest.mark.parametrize("raw", ["abc", "0", "70000"])
def test_bad_port_is_a_config_error_naming_the_variable(raw: str) -> None:
    with pytest.raises(StackConfigError, match="FEATURESTREAM_S3_PORT"):
        ports_from_env({"FEATURESTREAM_S3_PORT": raw})


def test_two_services_on_one_port_are_rejected() -> None:
    with pytest.raises(StackConfigError, match="same port"):
        ports_from_env({"FEATURESTREAM_S3_PORT": "19092"})


def test_unknown_service_is_a_config_error(tmp_path: Path) -> None:
    config = StackConfig(state_dir=tmp_path, root=tmp_path)
    with pytest.raises(StackConfigError, match="unknown service"):
        manager.status(["redis"], config=config)


def test_pid_file_round_trip_and_liveness() -> None:
    me = process.record_for(os.getpid())
    assert me is not None and process.is_running(me)
    # Same pid, another start time: a recycled pid must not count as ours.
    assert not process.is_running(process.PidRecord(me.pid, me.start_ticks + 1))


def test_down_never_signals_a_recycled_pid(tmp_path: Path) -> None:
    """A pid file naming a live process with another start time is stale: removed, not killed."""
    config = StackConfig(state_dir=tmp_path, root=tmp_path)
    me = process.record_for(os.getpid())
    assert me is not None
    pid_file = tmp_path / "s3" / "s3.pid"
    process.write_pid_file(pid_file, process.PidRecord(me.pid, me.start_ticks - 1))
    rows = manager.down(["s3"], config=config)
    assert rows[0].pid is None
    assert not pid_file.exists()  # and this test process is still alive to assert it


def test_stale_pid_file_is_cleaned_by_status(tmp_path: Path) -> None:
    config = StackConfig(state_dir=tmp_path, root=tmp_path)
    pid_file = tmp_path / "kinesis" / "kinesis.pid"
    process.write_pid_file(pid_file, process.PidRecord(2**22 + 7, 1))  # beyond pid_max: never alive
    assert manager.status(["kinesis"], config=config)[0].pid is None
    assert not pid_file.exists()


def test_port_taken_by_a_stranger_is_reported(tmp_path: Path) -> None:
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        port = stranger.getsockname()[1]
        ports = {**StackConfig(state_dir=tmp_path, root=tmp_path).ports, "s3": port}
        config = StackConfig(state_dir=tmp_path, root=Path.cwd(), ports=ports)
        with pytest.raises(PortInUseError, match=f"port {port}"):
            manager.up(["s3"], config=config)
    assert not (tmp_path / "s3" / "s3.pid").exists()


def test_env_lines_are_shell_exports(tmp_path: Path) -> None:
    config = StackConfig(state_dir=tmp_path / "odd dir", root=tmp_path)
    text = manager.format_env(manager.env(config))
    assert all(line.startswith("export ") for line in text.splitlines())
    assert f"export FEATURESTREAM_STATE_DIR='{tmp_path / 'odd dir'}'" in text.splitlines()


def test_the_pushgateway_is_optional(tmp_path: Path) -> None:
    """Started only when named; its endpoint is exported only while it runs."""
    config = StackConfig(state_dir=tmp_path, root=Path.cwd())
    assert "pushgateway" not in [s.name for s in manager.status(config=config)]
    assert "FEATURESTREAM_PUSHGATEWAY_URL" not in manager.env(config)
    [row] = manager.status(["pushgateway"], config)
    assert (row.name, row.port, row.healthy) == ("pushgateway", 19091, False)
