"""The PostgreSQL service's private folders (issue 19, finding 7): as root, a link planted in a
shared temp dir, or in the state dir, must never be followed, chowned or chmodded, a folder in a
shared temp dir must never have a name that can be guessed in advance, and a folder of another
account is refused. No server is started: these are the steps `stack up postgres` runs first."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from featurestream.dev.stack.config import StackConfig
from featurestream.dev.stack.errors import ServiceStartError
from featurestream.dev.stack.services.postgres import PostgresService

AS_ROOT = os.geteuid() == 0


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A folder an attacker wants us to take over: 0755, ours, with a file in it."""
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / "keep").write_text("x")
    folder.chmod(0o755)
    return folder


def _untouched(folder: Path) -> bool:
    info = folder.stat()
    return stat.S_IMODE(info.st_mode) == 0o755 and info.st_uid == os.geteuid() and (folder / "keep").is_file()


def _server_uid() -> int:
    return pwd.getpwnam("postgres").pw_uid if AS_ROOT else os.geteuid()


@pytest.fixture
def long_state_dir() -> Iterator[Path]:
    """A state dir the server's account can reach, so long that `<state>/postgres/run` exceeds a
    Unix socket path: the socket folder then goes to /tmp."""
    top = Path(tempfile.mkdtemp(prefix="fs-pg-dirs-"))
    top.chmod(0o711)
    yield top / ("s" * 100)
    shutil.rmtree(top)


def _remove_kept(service: PostgresService, name: str) -> None:
    record = service.dir / name
    if record.is_file():
        kept = Path(record.read_text().strip())
        if kept.is_dir() and not kept.is_symlink():
            shutil.rmtree(kept)


def test_socket_folder_in_tmp_is_never_a_guessable_name(long_state_dir: Path, victim: Path) -> None:
    service = PostgresService(StackConfig(state_dir=long_state_dir, root=long_state_dir))
    # The name the service used before the fix, planted by another user as a link to the victim.
    digest = hashlib.sha256(str(service.dir).encode()).hexdigest()[:12]
    planted = Path("/tmp") / f"featurestream-pg-{digest}"
    planted.unlink(missing_ok=True)
    planted.symlink_to(victim)
    try:
        socket_dir = service.socket_dir
        service._private_dir(socket_dir)
        assert _untouched(victim)
        assert socket_dir != planted and socket_dir.parent == Path("/tmp") and not socket_dir.is_symlink()
        info = socket_dir.lstat()
        assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == _server_uid()
        # The next `stack up` (a new service object) finds the same folder again.
        assert PostgresService(service.config).socket_dir == socket_dir
    finally:
        planted.unlink(missing_ok=True)
        _remove_kept(service, "socket-root")


def test_a_recorded_folder_that_became_a_link_is_refused(long_state_dir: Path, victim: Path) -> None:
    """The temp folder was cleaned away and someone put a link at its recorded path."""
    service = PostgresService(StackConfig(state_dir=long_state_dir, root=long_state_dir))
    socket_dir = service.socket_dir
    socket_dir.rmdir()
    socket_dir.symlink_to(victim)
    try:
        with pytest.raises(ServiceStartError, match="symlink"):
            _ = PostgresService(service.config).socket_dir
        assert _untouched(victim)
    finally:
        socket_dir.unlink()


def test_a_link_in_the_state_dir_is_refused_not_followed(tmp_path: Path, victim: Path) -> None:
    service = PostgresService(StackConfig(state_dir=tmp_path / "state", root=tmp_path))
    service.dir.mkdir(parents=True)
    (service.dir / "run").symlink_to(victim)
    with pytest.raises(ServiceStartError, match="symlink"):
        service._private_dir(service.dir / "run")
    assert _untouched(victim)


@pytest.mark.skipif(not AS_ROOT, reason="the server runs as `postgres` (and data may leave the state dir) as root")
def test_data_folder_in_var_tmp_is_never_a_guessable_name(tmp_path: Path, victim: Path) -> None:
    # tmp_path's parents are 0700: `postgres` cannot reach it, so the data goes to /var/tmp.
    service = PostgresService(StackConfig(state_dir=tmp_path / "state", root=tmp_path))
    digest = hashlib.sha256(str(service.dir).encode()).hexdigest()[:12]
    planted = Path("/var/tmp") / f"featurestream-postgres-{digest}"
    planted.unlink(missing_ok=True)
    planted.symlink_to(victim)
    try:
        base = service._base()
        service._private_dir(base)
        assert _untouched(victim)
        assert base != planted and base.parent == Path("/var/tmp") and not base.is_symlink()
        assert base.stat().st_uid == _server_uid() and stat.S_IMODE(base.stat().st_mode) == 0o700
    finally:
        planted.unlink(missing_ok=True)
        _remove_kept(service, "data-root")


@pytest.mark.skipif(not AS_ROOT, reason="only root can plant a folder of another account")
def test_a_folder_of_another_account_is_refused(tmp_path: Path) -> None:
    service = PostgresService(StackConfig(state_dir=tmp_path / "state", root=tmp_path))
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o755)
    os.chown(foreign, 4242, 4242)
    with pytest.raises(ServiceStartError, match="uid 4242"):
        service._private_dir(foreign)
    assert foreign.stat().st_uid == 4242 and stat.S_IMODE(foreign.stat().st_mode) == 0o755
