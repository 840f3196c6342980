"""Helpers of the fault tests: run the driver in a child process, watch it, and check what it left.

Every process a test's run starts carries ``LWB_TEST_TAG=<uuid>`` in its environment (the run,
its watchdog, kernels, moto, PostgreSQL, the engine); the sandboxes carry the environment's
``--owner=`` on their command line. After a run, none of them may be left, the decoys (processes
that look like ours but are not) must all be alive, and ``latest`` must be valid.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    owners: set[str] = field(default_factory=set)

    @property
    def folder(self) -> Path | None:
        lines = self.stdout.strip().splitlines()
        return Path(lines[-1]) if lines else None


@dataclass
class Sandbox:
    """A test's own state folder, outputs folder and process tag."""

    root: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    def environ(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "WORKBOOK_STATE_DIR": str(self.state_dir), "WORKBOOK_OUTPUTS_DIR": str(self.outputs),
                "LWB_TEST_TAG": self.tag, "PYTHONPATH": str(REPO), **extra}

    def start(self, driver_args: list[str], command: list[str], **extra: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "tests.notebooks.driver", *driver_args, "--", *command],
                                cwd=self.root, env=self.environ(**extra), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def run(self, driver_args: list[str], command: list[str], on_line: Callable[[str], None] | None = None,
            timeout_s: float = 900, **extra: str) -> Outcome:
        """Run the driver to its end; ``on_line`` sees each progress line as it comes."""
        process = self.start(driver_args, command, **extra)
        owners: set[str] = set()
        watcher = threading.Thread(target=self._watch_owners, args=(process, owners), daemon=True)
        watcher.start()
        lines: list[str] = []

        def read() -> None:
            for line in process.stderr:
                lines.append(line)
                if on_line:
                    on_line(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        stdout = process.stdout.read()
        process.wait(timeout_s)
        reader.join(10)
        watcher.join(10)
        return Outcome(process.returncode, stdout, "".join(lines), owners)

    def _watch_owners(self, process: subprocess.Popen, owners: set[str]) -> None:
        """The local environments' owners, to find their sandboxes afterwards."""
        while process.poll() is None:
            try:
                owner = json.loads((self.state_dir / "state.json").read_text()).get("owner")
                if owner:
                    owners.add(owner)
            except (OSError, ValueError):
                pass
            time.sleep(0.1)

    def ours(self, owners: set[str] = frozenset()) -> list[str]:
        """Processes of this test's runs still alive: by tag in the environment, or by owner on the command line."""
        wanted = f"LWB_TEST_TAG={self.tag}".encode()
        marks = [f"--owner={o}".encode() for o in owners]
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if _zombie(entry):
                    continue
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                if wanted in (entry / "environ").read_bytes().split(b"\0") or any(m in cmdline for m in marks):
                    found.append(f"{entry.name}: {b' '.join(cmdline).decode(errors='replace')[:160]}")
            except OSError:
                continue
        return found

    def wait_until_none_left(self, owners: set[str] = frozenset(), timeout_s: float = 60) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while (left := self.ours(owners)) and time.monotonic() < deadline:
            time.sleep(0.25)
        return left


def _zombie(entry: Path) -> bool:
    return (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


class Decoys:
    """Processes that look like a run's but are not: they must outlive every test."""

    def __init__(self) -> None:
        looks_like_ours = 'exec -a "python -m workbook.local.engine --owner=lwb-decoy000000" sleep 1800'
        self.processes = [
            subprocess.Popen(["bash", "-c", looks_like_ours], start_new_session=True),
            subprocess.Popen(["sleep", "1800"], env={**os.environ, "WORKBOOK_RUN_ID": "someone-elses-run"},
                             start_new_session=True),
            subprocess.Popen(["sleep", "1800"]),
        ]

    def all_alive(self) -> bool:
        return all(p.poll() is None for p in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()


def latest_is_valid(base: Path) -> bool:
    """``latest`` is absent, or points at a finished run (ok or failed) with a runbook."""
    latest = base / "latest"
    if not latest.is_symlink():
        return not latest.exists()
    target = latest.resolve()
    try:
        status = json.loads((target / "summary.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return False
    return status in ("ok", "failed") and (target / "runbook.html").is_file() and not target.name.endswith(".partial")


def seed_latest(base: Path) -> Path:
    """A finished earlier run that ``latest`` points at (what an interrupted run must not move)."""
    folder = base / "20200101T000000Z"
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({"status": "ok"}))
    (folder / "runbook.html").write_text("<html>earlier</html>")
    (base / "latest").symlink_to(folder.name)
    return folder


def folders_of(base: Path) -> list[str]:
    return sorted(p.name for p in base.iterdir()) if base.is_dir() else []
