"""A private MariaDB server for one test module: Debian's `mariadbd` on 127.0.0.1 and a free port,
data in a temporary folder, an application user with a generated password; stopped by its PID."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

DRIVER_JAR = Path("/usr/share/java/mariadb-java-client.jar")


def server_binary() -> str | None:
    return shutil.which("mariadbd") or next(
        (str(p) for p in (Path("/usr/sbin/mariadbd"), Path("/usr/sbin/mysqld")) if p.is_file()), None)


def available() -> bool:
    return server_binary() is not None and DRIVER_JAR.is_file() and shutil.which("mariadb-install-db") is not None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class MariaDb:
    root: Path
    port: int
    password: str
    process: subprocess.Popen[bytes]

    @property
    def socket(self) -> str:
        return str(self.root / "mysqld.sock")

    def jdbc_url(self, database: str = "featurestream") -> str:
        return f"jdbc:mariadb://127.0.0.1:{self.port}/{database}?user=fs"

    def sql(self, statements: str, stdin_user: str = "root") -> str:
        done = subprocess.run(["mariadb", "--no-defaults", f"--socket={self.socket}", "-u", stdin_user, "--batch"],
                              input=statements, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"mariadb client failed: {done.stderr.strip()}")
        return done.stdout

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)


def start(root: Path) -> MariaDb:
    data = root / "data"
    data.mkdir(parents=True)
    user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}",
                    "--auth-root-authentication-method=socket", "--skip-test-db", *user],
                   capture_output=True, text=True, timeout=300, check=True)
    port = _free_port()
    log = (root / "mariadb.log").open("wb")
    process = subprocess.Popen(
        [str(server_binary()), "--no-defaults", f"--datadir={data}", f"--socket={root / 'mysqld.sock'}",
         f"--port={port}", "--bind-address=127.0.0.1", "--skip-name-resolve", f"--pid-file={root / 'mysqld.pid'}",
         *user], stdout=log, stderr=subprocess.STDOUT)
    server = MariaDb(root, port, secrets.token_urlsafe(18), process)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"mariadbd exited: {(root / 'mariadb.log').read_text()[-2000:]}")
        try:
            server.sql("SELECT 1;")
            break
        except RuntimeError:
            if time.monotonic() > deadline:
                server.stop()
                raise
            time.sleep(0.3)
    server.sql(
        "CREATE DATABASE featurestream;"
        f"CREATE USER 'fs'@'127.0.0.1' IDENTIFIED BY '{server.password}';"
        "GRANT ALL ON featurestream.* TO 'fs'@'127.0.0.1';"
    )
    return server
