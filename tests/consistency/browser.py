"""Debian's Chromium, headless: load a page, return its DOM after scripts ran and its console lines."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def chromium() -> str:
    """The chromium binary; a skip without it, a failure under `make test` (FEATURESTREAM_CHROMIUM=required)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("FEATURESTREAM_CHROMIUM") == "required":
        pytest.fail("chromium is not installed (`make chromium` installs Debian's)")
    pytest.skip("chromium is not installed (`make chromium`; `make test` installs it)")


def _base(profile: Path) -> list[str]:
    # No sandbox: the suite may run as root in a container. No network: every host resolves to nothing.
    return [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=3000"]


def load(page: Path, profile: Path) -> tuple[str, list[str]]:
    """(the DOM after load, the console lines Chromium logged for the page)."""
    done = subprocess.run([*_base(profile), "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


def screenshot(page: Path, png: Path, profile: Path, size: str = "1200,1700") -> None:
    done = subprocess.run([*_base(profile), f"--screenshot={png}", f"--window-size={size}", "--hide-scrollbars",
                           page.as_uri()], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and png.is_file(), done.stderr[-2000:]
