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


# Every table's right edge against its output area's and the page's, as laid out at the reader's width.
_TABLE_EDGES = """() => [...document.querySelectorAll('table')].map(t => {
  const area = t.closest('.jp-OutputArea-output, .jp-RenderedHTMLCommon, .jp-Cell') || document.body;
  return {right: t.getBoundingClientRect().right, area: area.getBoundingClientRect().right,
          page: document.documentElement.clientWidth, scrolls: area.scrollWidth > area.clientWidth + 1,
          headers: [...t.querySelectorAll('th')].slice(0, 4).map(h => h.innerText.trim()).join(' / ')};
})"""


def wide_tables(page: Path, width: int = 1400) -> list[str]:
    """The tables of ``page`` that do not fit at ``width`` px (the reader would scroll inside a section)."""
    from playwright.sync_api import sync_playwright

    binary = chromium()
    assert binary, "chromium is not installed (make test installs it: scripts/ensure-chromium.sh)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=binary, args=["--no-sandbox", "--disable-gpu"])
        try:
            view = browser.new_page(viewport={"width": width, "height": 1000})
            view.goto(page.resolve().as_uri())
            edges = view.evaluate(_TABLE_EDGES)
        finally:
            browser.close()
    return [f"{e['headers']}: right edge {e['right']:.0f} px, area {e['area']:.0f} px, page {e['page']} px"
            for e in edges if e["right"] > min(e["area"], e["page"]) + 0.5 or e["scrolls"]]
