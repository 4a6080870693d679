"""A private local stack for tests/dev/stack: own state dir, own free ports, stopped at the end.

It never touches a stack another engineer runs on the default ports or in ./.state.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from featurestream.dev.stack import manager
from featurestream.dev.stack.config import DEFAULT_PORTS, StackConfig, port_env_var
from featurestream.dev.stack.services import SERVICE_NAMES

# The emulator is written in parallel in featurestream/dev/feature_store; until its entry point
# exists the stack tests cover the other four services.
TESTED_SERVICES = list(SERVICE_NAMES)


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out as free right now (all held open at once, so distinct)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def private_environ(state_dir: Path) -> dict[str, str]:
    """The environment variables that move a stack to `state_dir` and to free ports."""
    env = {"FEATURESTREAM_STATE_DIR": str(state_dir), "AWS_REGION": "us-east-1"}
    for name, port in zip(DEFAULT_PORTS, free_ports(len(DEFAULT_PORTS)), strict=True):
        env[port_env_var(name)] = str(port)
    return env


def make_state_dir() -> Path:
    # World-traversable, so the `postgres` account can reach its data folder inside it.
    path = Path(tempfile.mkdtemp(prefix="featurestream-stack-test-"))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def stack_config() -> Iterator[StackConfig]:
    """Settings of the private stack, read through the same env variables a user would set."""
    state = make_state_dir()
    config = StackConfig.from_env({**os.environ, **private_environ(state / "state")})
    yield config
    # Stop anything still running (a test that failed half-way), then drop the state.
    manager.down(config=config)
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def running_stack(stack_config: StackConfig) -> dict[str, int | None]:
    """The services up; maps each service name to its pid."""
    rows = manager.up(TESTED_SERVICES, config=stack_config)
    return {row.name: row.pid for row in rows}


@pytest.fixture(scope="session")
def stack_exports(stack_config: StackConfig, running_stack: dict[str, int | None]) -> dict[str, str]:
    return manager.env(stack_config)
