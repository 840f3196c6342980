"""The interactive tuning session as a user runs it: a real JupyterLab on loopback, driven by headless Chromium.

Playwright drives Debian's chromium (found on PATH; no browser is downloaded). JupyterLab serves a
temporary copy of ``notebooks/`` with ``WORKBOOK_PARAMS_DIR``, ``WORKBOOK_STATE_DIR`` and
``WORKBOOK_OUTPUTS_DIR`` pointing at temporary folders, and is stopped at the end with every kernel
and the local environment its session started. The oracles: the page the browser renders (no error
or stderr output, a projection that changes, a confirmation that stays), and the params file on disk.

Set ``LWB_UPDATE_SCREENSHOT=1`` to copy the session's screenshot to ``docs/interactive-tuning.png``.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest
import yaml
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from infra import config
from tests.notebooks.browser import FLAGS, chromium
from tests.notebooks.lab import REPO, make_folders, narrow_the_tuning, start_local, stop_local

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

RUN_ALL_TIMEOUT_MS = 900_000
SCREENSHOT = REPO / "docs" / "interactive-tuning.png"


def free_port() -> int:
    """A loopback port nothing listens on now (bound and released: the server binds it next, port_retries=0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on loopback with a token, over temporary folders; stopped with everything it started."""
    folders = make_folders(tmp_path)
    narrow_the_tuning(folders.notebooks / "05-tuning.ipynb")
    jupyter = tmp_path / "jupyter"
    for name in ("runtime", "settings", "workspaces"):
        (jupyter / name).mkdir(parents=True)
    notification = jupyter / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)   # no "get notified about Jupyter news?" toast over the screenshots
    (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    token = secrets.token_hex(16)
    env = folders.env | {"JUPYTER_RUNTIME_DIR": str(jupyter / "runtime")}
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={folders.notebooks}", f"--LabApp.user_settings_dir={jupyter / 'settings'}",
               f"--LabApp.workspaces_dir={jupyter / 'workspaces'}"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    server, log = None, (tmp_path / "lab.log").open("w")
    try:
        # 20 s of the session's own local environment's traffic, as a user has before tuning
        started = start_local(folders)
        assert started.returncode == 0, started.stderr[-2000:]
        sent = subprocess.run([sys.executable, "-m", "workbook.cli", "local", "traffic", "--profile", "mixed",
                               "--duration", "20s"], env=folders.env, cwd=folders.root, capture_output=True,
                              text=True, timeout=300)
        assert sent.returncode == 0, sent.stderr[-2000:]
        port = free_port()    # checked free just before the server binds it (port_retries=0: it fails, never drifts)
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([*command, f"--ServerApp.port={port}"], env=env, cwd=folders.notebooks, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5):
                    break
            except OSError:
                assert server.poll() is None, (tmp_path / "lab.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "JupyterLab did not answer in 120 s"
                time.sleep(0.5)
        yield {"url": url, "token": token, "folders": folders, "tmp": tmp_path, "server": server}
    finally:
        started = []
        if server is not None:
            started = psutil.Process(server.pid).children(recursive=True) if server.poll() is None else []
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()
        stop_local(folders)
        _, alive = psutil.wait_procs(started, timeout=30)
        for process in alive:
            process.kill()
        assert not alive, f"left behind by JupyterLab: {[p.pid for p in alive]}"


def wait_for_idle(page, timeout_ms: int) -> None:
    """Until every code cell has run: no prompt shows ``[*]`` and the last one has its number."""
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim());
            return prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p));
        }""", timeout=timeout_ms, polling=1000)


def run_all(page, attempts: int = 3) -> None:
    """Run > Run All Cells from the menu bar, with the notebook focused; until the first cell has started."""
    started = """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                     .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"""
    for _ in range(attempts):
        page.locator(".jp-Notebook .jp-Cell").first.click()
        page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-item:not(.lm-mod-disabled)", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function(started, timeout=20_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError("Run All Cells did not start any cell")


def projection_text(page) -> str:
    return page.locator(".lwb-projection").inner_text()


def set_slider(page, css: str, value: int) -> None:
    """Type a value into an ipywidgets slider's readout, as a user does, and commit it with Enter."""
    readout = page.locator(f"{css} .widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(str(value))
    page.keyboard.press("Enter")


def test_tuning_session_in_jupyterlab(lab):
    binary = chromium()
    assert binary, "chromium is not installed (make test installs it: scripts/ensure-chromium.sh)"
    shots = lab["tmp"] / "screenshots"
    shots.mkdir()
    params_file = lab["folders"].params / "local.yaml"
    checkout_params = (REPO / "params" / "local.yaml").read_text()
    configured_mb = config.load("local", lab["folders"].params).function("file-processor").memory_mb
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(lab["tmp"] / "chromium-profile"), executable_path=binary, headless=True,
            args=[flag for flag in FLAGS if flag != "--headless" and not flag.startswith("--virtual-time")],
            viewport={"width": 1400, "height": 1000})
        try:
            page = context.new_page()
            # GIVEN 05-tuning open in JupyterLab, its kernel started
            page.goto(f"{lab['url']}/lab/tree/05-tuning.ipynb?token={lab['token']}")
            page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=120_000)
            page.get_by_text(re.compile(r"Python 3 \(workbook\) \| Idle")).wait_for(timeout=120_000)
            # WHEN the user runs every cell (Run > Run All Cells) and waits for the kernel to finish
            run_all(page)
            wait_for_idle(page, RUN_ALL_TIMEOUT_MS)
            page.wait_for_selector(".lwb-projection table", timeout=60_000)
            page.screenshot(path=str(shots / "01-run-all.png"), full_page=True)
            # THEN no cell shows an error or anything on stderr
            stderr = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            assert stderr.count() == 0, stderr.all_inner_texts()[:3]
            assert page.locator(".jp-OutputArea-output .jp-RenderedText[data-mime-type='application/vnd.jupyter.error'], "
                                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']").count() == 0
            # AND the tuning cell showed its progress as a bar, ending with the invocations it took
            bar = page.locator(".lwb-progress")
            bar.scroll_into_view_if_needed()
            assert bar.count() == 1 and re.search(r"Power tuning file-processor: done, \d+ invocations", bar.text_content())

            # WHEN the user scrolls to the controls, picks the file processor and moves the memory control
            page.locator(".lwb-controls").scroll_into_view_if_needed()
            page.locator(".lwb-function select").select_option("file-processor")
            page.wait_for_timeout(1500)
            before = projection_text(page)
            shown = int(page.locator(".lwb-memory .widget-readout").text_content().replace(",", ""))
            target = next(mb for mb in (512, 1024, 1536) if mb not in (shown, configured_mb))
            set_slider(page, ".lwb-memory", target)
            page.wait_for_function("(old) => document.querySelector('.lwb-projection').innerText !== old", arg=before,
                                   timeout=30_000)
            after = projection_text(page)
            # THEN the projection changed with it
            assert after != before
            controls = page.locator(".lwb-controls")
            controls.scroll_into_view_if_needed()
            controls.screenshot(path=str(shots / "02-memory-moved.png"))

            # WHEN the choice breaks the params schema (data processor, timeout 400 s: the queue's visibility forbids it)
            page.locator(".lwb-function select").select_option("data-processor")
            page.wait_for_timeout(1500)
            set_slider(page, ".lwb-timeout", 400)
            # THEN the schema's one-line message shows before Apply, and Apply is disabled
            verdict = page.locator(".lwb-verdict")
            verdict.wait_for(timeout=30_000)
            assert "visibility_timeout_s" in verdict.inner_text(), verdict.inner_text()
            assert page.locator(".lwb-apply").is_disabled()
            assert "rejected" in projection_text(page)
            controls.screenshot(path=str(shots / "03-rejected.png"))

            # WHEN the user goes back to the file processor at the new size and presses Apply
            page.locator(".lwb-function select").select_option("file-processor")
            page.wait_for_timeout(1500)
            set_slider(page, ".lwb-memory", target)
            page.wait_for_function("() => !document.querySelector('.lwb-apply').disabled", timeout=30_000)
            page.locator(".lwb-apply").click()
            applied = page.locator(".lwb-applied")
            applied.wait_for(timeout=120_000)
            page.locator(".lwb-result table").wait_for(timeout=300_000)
            # THEN the patch landed in WORKBOOK_PARAMS_DIR (the checkout's params untouched), and the preview
            # lists the function's MemorySize change property by property
            written = yaml.safe_load(params_file.read_text())
            assert written["functions"]["file-processor"]["memory_mb"] == target
            assert (REPO / "params" / "local.yaml").read_text() == checkout_params
            preview = page.locator(".lwb-result").inner_text()
            assert re.search(rf"memorySize\s+{configured_mb}\s+{target}", preview), preview[:2000]
            # WHEN another control moves
            set_slider(page, ".lwb-timeout", 120)
            page.wait_for_timeout(3000)
            # THEN the confirmation and the diff are still there
            assert applied.is_visible()
            assert "local.yaml" in applied.inner_text()
            controls.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "04-applied.png"))
            controls.screenshot(path=str(shots / "05-controls.png"))
        finally:
            context.close()
    for png in shots.iterdir():
        assert png.stat().st_size > 10_000, png
    if os.environ.get("LWB_UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shots / "05-controls.png", SCREENSHOT)
