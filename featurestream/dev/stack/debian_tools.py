"""Programs from Debian packages, unpacked into the project's build folder instead of installed.

`apt-get download` fetches the package from Debian's archive and `dpkg-deb -x` unpacks it under
`build/tools/debian/<package>/`: no maintainer scripts run, so no system account is created and no
daemon is started (Debian's prometheus-pushgateway would start one on :9091 where the init system
lets it), nothing outside the checkout changes, and no root is needed beyond `apt-get update` on a
machine whose package lists are empty. A program already on PATH (or in /usr/bin) is used as it is.

    python -m featurestream.dev.stack.debian_tools prometheus promtool   # prints the path
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from featurestream.dev.stack import paths
from featurestream.dev.stack.errors import PrerequisiteMissingError


def unpacked_dir(package: str, root: Path | None = None) -> Path:
    return (root or paths.project_root()) / "build" / "tools" / "debian" / package


def find(program: str, package: str, root: Path | None = None) -> Path | None:
    """PATH, then Debian's /usr/bin, then a copy unpacked earlier."""
    for candidate in (shutil.which(program), f"/usr/bin/{program}",
                      unpacked_dir(package, root) / "usr" / "bin" / program):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def _run(cmd: list[str], log_path: Path, cwd: Path | None = None) -> bool:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        out.write(f"\n=== featurestream: {' '.join(cmd)}\n".encode())
        out.flush()
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        return subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env, check=False).returncode == 0


def unpack(package: str, log_path: Path, root: Path | None = None) -> Path:
    """Download `package` from Debian's archive and unpack it; returns the folder it went to."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise PrerequisiteMissingError(f"{package}: needs Debian's apt-get and dpkg-deb (or install {package})")
    target = unpacked_dir(package, root)
    with tempfile.TemporaryDirectory(prefix=f"featurestream-{package}-") as tmp:
        where = Path(tmp)
        downloaded = _run(["apt-get", "download", package], log_path, cwd=where)
        if not downloaded and os.geteuid() == 0:
            # A fresh machine has no package lists yet.
            _run(["apt-get", "update"], log_path)
            downloaded = _run(["apt-get", "download", package], log_path, cwd=where)
        debs = sorted(where.glob(f"{package}_*.deb"))
        if not downloaded or not debs:
            raise PrerequisiteMissingError(f"{package}: `apt-get download {package}` failed; see {log_path}")
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)  # dpkg-deb makes the last folder only
        if not _run(["dpkg-deb", "-x", str(debs[-1]), str(staging)], log_path):
            raise PrerequisiteMissingError(f"{package}: unpacking {debs[-1].name} failed; see {log_path}")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)  # all or nothing: a half-unpacked folder is never found
    return target


def program(program: str, package: str, log_path: Path, root: Path | None = None) -> Path:
    """The path of `program`, unpacking `package` first when this machine has none."""
    found = find(program, package, root)
    if found is not None:
        return found
    unpack(package, log_path, root)
    found = find(program, package, root)
    if found is None:
        raise PrerequisiteMissingError(f"{package}: unpacked, yet no {program} in it; see {log_path}")
    return found


def main(argv: list[str] | None = None) -> int:
    package, name = (argv if argv is not None else sys.argv[1:])[:2]
    try:
        print(program(name, package, unpacked_dir(package).with_suffix(".log")))
    except PrerequisiteMissingError as exc:
        print(f"featurestream: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
