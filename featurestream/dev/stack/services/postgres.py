"""PostgreSQL: a private cluster (initdb once, then the postmaster) on 127.0.0.1.

initdb and postgres refuse to run as root, so under root both run as the `postgres` account
(setuid in the child, as `runuser -u postgres` would). The superuser is reached only through a
Unix socket in a private folder (peer auth); TCP on 127.0.0.1 requires a SCRAM password. The
application role `featurestream` gets a password generated once and kept in a 0600 file.

Its folders live in the stack's state dir. When they cannot (the `postgres` account cannot reach
a state dir under a 0700 home; a socket path longer than Unix allows), they are created with
mkdtemp in /var/tmp or /tmp, never under a fixed name, and their path is kept in the state dir.
Every folder is taken over without following a symlink (O_NOFOLLOW, then fchown/fchmod on the open
descriptor), and one owned by another account is refused: this runs as root, and a shared temp
dir is anyone's to plant a link in.
"""

from __future__ import annotations

import getpass
import logging
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from featurestream.dev.stack import process
from featurestream.dev.stack.config import LOOPBACK, StackConfig
from featurestream.dev.stack.errors import PrerequisiteMissingError, ServiceStartError, StackError
from featurestream.dev.stack.services import postgres_install
from featurestream.dev.stack.services.base import Service

log = logging.getLogger(__name__)

DATABASE = "featurestream"
ROLE = "featurestream"
# Unix socket paths are limited to 107 bytes; leave room for "/.s.PGSQL.NNNNN".
MAX_SOCKET_DIR = 90
# Idempotent: psql's \\gexec runs each CREATE only when the SELECT finds it missing.
SETUP_SQL = """
SELECT 'CREATE ROLE featurestream LOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'featurestream') \\gexec
ALTER ROLE featurestream WITH LOGIN PASSWORD :'pw';
SELECT 'CREATE DATABASE featurestream OWNER featurestream'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'featurestream') \\gexec
"""
# Shared temp dirs for the folders that cannot live in the state dir: mkdtemp names only.
DATA_FALLBACK_ROOT = Path("/var/tmp")  # noqa: S108 - mkdtemp folders only, 0700, owned by postgres
SOCKET_FALLBACK_ROOT = Path("/tmp")  # noqa: S108 - mkdtemp folders only, 0700, owned by postgres


class PostgresService(Service):
    name = "postgres"
    stop_timeout = 30.0

    def __init__(self, config: StackConfig) -> None:
        super().__init__(config)
        self._bin: Path | None = None
        self._base_dir: Path | None = None
        self._socket_dir: Path | None = None

    # --- who runs it, and where its files are ---------------------------------------------
    @property
    def os_user(self) -> str | None:
        """The account the server runs as: `postgres` under root, else the caller (None)."""
        return "postgres" if os.geteuid() == 0 else None

    @property
    def superuser(self) -> str:
        return self.os_user or getpass.getuser()

    def _base(self) -> Path:
        """Where data and socket go: the state dir when the server's account can reach it.

        A state dir under a 0700 home is unreachable for `postgres`; then a private folder made
        by mkdtemp in /var/tmp holds them instead (its path kept in the state dir).
        """
        if self._base_dir is None:
            if self.os_user is None or _reachable_by(self.os_user, self.dir):
                self._base_dir = self.dir
            else:
                self._base_dir = self._kept_private_dir("data-root", DATA_FALLBACK_ROOT, "featurestream-postgres-")
                log.info("postgres: %s is not reachable by postgres; data in %s", self.dir, self._base_dir)
        return self._base_dir

    @property
    def data_dir(self) -> Path:
        return self._base() / "data"

    @property
    def socket_dir(self) -> Path:
        sock = self._base() / "run"
        if len(str(sock)) <= MAX_SOCKET_DIR:
            return sock
        if self._socket_dir is None:
            self._socket_dir = self._kept_private_dir("socket-root", SOCKET_FALLBACK_ROOT, "featurestream-pg-")
        return self._socket_dir

    def _kept_private_dir(self, name: str, root: Path, prefix: str) -> Path:
        """A private folder in a shared temp dir: the one recorded in `<state>/<name>` while it
        exists, else a new one made by mkdtemp (an unpredictable name) and recorded."""
        record = self.dir / name
        if record.is_file() and not record.is_symlink():
            kept = Path(record.read_text(encoding="utf-8").strip())
            if kept.parent == root and kept.name.startswith(prefix) and os.path.lexists(kept):
                self._private_dir(kept)  # refuses a symlink or another account's folder
                return kept
        self.dir.mkdir(parents=True, exist_ok=True)
        made = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
        self._private_dir(made)
        temp = record.with_name(f".{name}.tmp")
        temp.unlink(missing_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(f"{made}\n")
        os.replace(temp, record)
        return made

    @property
    def password_path(self) -> Path:
        return self.dir / "password"

    @property
    def pgpass_path(self) -> Path:
        return self.dir / "pgpass"

    def _pg(self, program: str) -> str:
        """Path of a PostgreSQL program; only `check_prerequisites` may install the package."""
        if self._bin is None:
            found = postgres_install.find_bin_dir()
            if found is None:
                raise PrerequisiteMissingError("postgres: PostgreSQL server binaries not found")
            self._bin = found
        return str(self._bin / program)

    # --- lifecycle ---------------------------------------------------------------------------
    def check_prerequisites(self) -> None:
        if self._bin is None:
            # Installs Debian's package when absent (logged to the service log).
            self._bin = postgres_install.bin_dir(self.log_path)
        if self.os_user is not None:
            try:
                pwd.getpwnam(self.os_user)
            except KeyError:
                raise PrerequisiteMissingError(
                    "postgres: running as root needs the `postgres` account (apt-get install postgresql)"
                ) from None

    def _private_dir(self, path: Path) -> None:
        """`path` as a 0700 folder of the server's account, without ever following a symlink.

        The folder is opened with O_NOFOLLOW and changed through that descriptor, so a link
        planted at `path` (or swapped in after a check) is never chowned or chmodded; a folder
        that another account owns is refused rather than taken over.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError as exc:
            raise ServiceStartError(f"postgres: {path} is a symlink or not a folder ({exc.strerror}); "
                                    "refusing to use it") from None
        try:
            found = os.fstat(fd)
            account = pwd.getpwnam(self.os_user) if self.os_user is not None else None
            allowed = {os.geteuid()} | ({account.pw_uid} if account is not None else set())
            if not stat.S_ISDIR(found.st_mode) or found.st_uid not in allowed:
                raise ServiceStartError(f"postgres: {path} belongs to uid {found.st_uid}, not to this stack; "
                                        "refusing to use it")
            if account is not None:
                os.fchown(fd, account.pw_uid, account.pw_gid)
            os.fchmod(fd, 0o700)
        finally:
            os.close(fd)

    def _run_as(self, cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # type: ignore[call-overload]
            cmd, user=self.os_user, group=self.os_user,
            extra_groups=[] if self.os_user else None, text=True, check=False, **kwargs,
        )

    def _initdb(self) -> None:
        if self._base() != self.dir:
            self._private_dir(self._base())  # checked before anything inside it is read or removed
        if (self.data_dir / "PG_VERSION").is_file():
            return
        if os.path.lexists(self.data_dir):
            # An initdb cut short leaves a half-written folder that initdb refuses to reuse.
            # rmtree refuses a symlink itself; the check says why.
            if self.data_dir.is_symlink():
                raise ServiceStartError(f"postgres: {self.data_dir} is a symlink; refusing to remove it")
            shutil.rmtree(self.data_dir)
        self._private_dir(self.data_dir)
        done = self._run_as(
            [
                self._pg("initdb"), "-D", str(self.data_dir), "-U", self.superuser,
                "--auth-local=peer", "--auth-host=scram-sha-256",
                "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions",
            ],
            capture_output=True, timeout=300,
        )
        with self.log_path.open("a") as out:
            out.write(done.stdout + done.stderr)
        if done.returncode != 0:
            raise ServiceStartError(f"postgres: initdb failed (exit {done.returncode}); see {self.log_path}")
        log.info("postgres: initialised %s", self.data_dir)

    def launch(self) -> process.PidRecord:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._initdb()
        self._private_dir(self.socket_dir)
        return process.spawn(
            [
                self._pg("postgres"), "-D", str(self.data_dir),
                "-c", f"listen_addresses={LOOPBACK}", "-p", str(self.port),
                "-k", str(self.socket_dir),
            ],
            log_path=self.log_path,
            pid_path=self.pid_path,
            cwd=self.data_dir,
            user=self.os_user,
        )

    def healthy(self) -> bool:
        if not process.port_open(self.port) or postgres_install.find_bin_dir() is None:
            return False
        ready = subprocess.run(
            [self._pg("pg_isready"), "-q", "-h", LOOPBACK, "-p", str(self.port), "-t", "2"],
            check=False, capture_output=True,
        )
        return ready.returncode == 0

    def password(self) -> str:
        """The application role's password: generated once, then read from its 0600 file."""
        if self.password_path.is_file():
            return self.password_path.read_text().strip()
        value = secrets.token_urlsafe(24)
        fd = os.open(self.password_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(value + "\n")
        return value

    def _write_pgpass(self, password: str) -> None:
        # token_urlsafe never yields ':' or '\\', the two characters .pgpass would need escaped.
        line = f"{LOOPBACK}:{self.port}:{DATABASE}:{ROLE}:{password}\n"
        fd = os.open(self.pgpass_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(line)

    def after_healthy(self) -> None:
        """Create the role and database if missing and (re)set the role's password."""
        password = self.password()
        self._write_pgpass(password)
        script = f"\\set pw '{password}'\n{SETUP_SQL}"
        # The password travels on stdin, never on a command line that `ps` would show.
        done = self._run_as(
            [
                self._pg("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                "-h", str(self.socket_dir), "-p", str(self.port), "-U", self.superuser, "-d", "postgres",
            ],
            input=script + "\n", capture_output=True, timeout=60,
        )
        if done.returncode != 0:
            raise ServiceStartError(f"postgres: creating role/database failed: {done.stderr.strip()[-400:]}")

    def stop(self, record: process.PidRecord) -> None:
        """`pg_ctl stop -m fast` (roll back sessions, checkpoint), then the generic stop by pid."""
        if process.is_running(record) and (self.data_dir / "postmaster.pid").is_file():
            try:
                self._run_as(
                    [self._pg("pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w",
                     "-t", str(int(self.stop_timeout))],
                    capture_output=True, timeout=self.stop_timeout + 10,
                )
            except (StackError, subprocess.TimeoutExpired) as exc:
                log.warning("postgres: pg_ctl stop failed (%s); stopping pid %s directly", exc, record.pid)
        process.stop(record, self.stop_timeout)

    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://{LOOPBACK}:{self.port}/{DATABASE}?user={ROLE}"

    def endpoint(self) -> str:
        return f"postgresql://{ROLE}@{LOOPBACK}:{self.port}/{DATABASE}"

    def env(self) -> dict[str, str]:
        return {
            "FEATURESTREAM_JDBC_URL": self.jdbc_url(),
            "FEATURESTREAM_JDBC_PASSWORD_FILE": str(self.password_path),
            "FEATURESTREAM_PGPASSFILE": str(self.pgpass_path),
        }


def _reachable_by(user: str, directory: Path) -> bool:
    """Can `user` traverse to `directory` (every ancestor searchable)?"""
    directory.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["test", "-x", str(directory)], user=user, group=user, extra_groups=[], check=False
    )
    return done.returncode == 0
