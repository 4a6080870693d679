"""Finding PostgreSQL's server binaries, installing Debian's package when they are absent."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from featurestream.dev.stack.errors import PrerequisiteMissingError

log = logging.getLogger(__name__)

DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
# Debian's package would otherwise create and start a cluster of its own on 5432 (on localhost,
# IPv4 and IPv6): the stack needs only the binaries.
CREATECLUSTER_CONF = Path("/etc/postgresql-common/createcluster.conf")


def _version_key(path: Path) -> tuple[int, ...]:
    digits = path.parent.name.split(".")
    return tuple(int(d) for d in digits if d.isdigit())


def find_bin_dir() -> Path | None:
    """The folder holding initdb/postgres/pg_ctl: PATH first, then Debian's newest version."""
    on_path = shutil.which("initdb")
    if on_path:
        real = Path(on_path).resolve().parent
        if (real / "postgres").is_file():
            return real
    candidates = sorted(Path("/").glob(DEBIAN_BIN_GLOB.lstrip("/")), key=_version_key)
    for candidate in reversed(candidates):
        if (candidate / "initdb").is_file() and (candidate / "postgres").is_file():
            return candidate
    return None


def install(log_path: Path) -> Path:
    """`apt-get install -y postgresql` (root only), logged to `log_path`; returns the bin dir."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PrerequisiteMissingError(
            "postgres: initdb not found on PATH nor in /usr/lib/postgresql/*/bin; "
            "install PostgreSQL (Debian: apt-get install -y postgresql)"
        )
    log.warning("postgres: initdb not found; installing Debian's postgresql (log: %s)", log_path)
    if not CREATECLUSTER_CONF.exists():
        CREATECLUSTER_CONF.parent.mkdir(parents=True, exist_ok=True)
        CREATECLUSTER_CONF.write_text("create_main_cluster = false\n")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        out.write(b"\n=== featurestream stack: initdb missing, running apt-get install -y postgresql\n")
        out.flush()
        for cmd in (
            ["apt-get", "update"],
            ["apt-get", "install", "-y", "-o", "Dpkg::Options::=--force-confold", "postgresql"],
        ):
            done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
            if done.returncode != 0:
                raise PrerequisiteMissingError(f"postgres: `{' '.join(cmd)}` failed; see {log_path}")
    found = find_bin_dir()
    if found is None:
        raise PrerequisiteMissingError(f"postgres: installed, yet no initdb found; see {log_path}")
    return found


def bin_dir(log_path: Path) -> Path:
    """The server binaries, installing them first when this machine has none."""
    return find_bin_dir() or install(log_path)
