"""Debian's headless Chromium, for opening runbooks as a reader would."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=3000"]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    binary = chromium()
    assert binary, "chromium is not installed (make test installs it: scripts/ensure-chromium.sh)"
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)


def dom(page: Path) -> str:
    """The page's DOM after load, as Chromium serialises it."""
    result = _run(["--dump-dom", page.resolve().as_uri()])
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def screenshot(page: Path, png: Path, width: int = 1280, height: int = 4000) -> Path:
    result = _run([f"--screenshot={png}", f"--window-size={width},{height}", page.resolve().as_uri()])
    assert result.returncode == 0 and png.is_file() and png.stat().st_size > 10_000, result.stderr[-2000:]
    return png
