"""Fault injection with real processes: run `workbook local ...`, watch its state file, find what it left.

"Ours" is judged from the outside, the way an operator would: a process whose command line
names the state folder, or carries an owner token the state file held (``--owner=<token>``,
PostgreSQL's ``cluster_name=<token>``). Decoys are innocent programs that must outlive every test.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from workbook.local import processes

REPO = Path(__file__).resolve().parents[3]
WORKBOOK = str(Path(sys.executable).with_name("workbook"))


def cli_env(state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    return {**env, "WORKBOOK_STATE_DIR": str(state_dir), **extra}


def workbook(state_dir: Path, *args: str, timeout_s: float = 300, input_text: str | None = None,
             **extra: str) -> subprocess.CompletedProcess:
    """Run the `workbook` console script against the environment of ``state_dir``."""
    return subprocess.run([WORKBOOK, *args], capture_output=True, text=True, env=cli_env(state_dir, **extra),
                          cwd=REPO, timeout=timeout_s, input=input_text)


class Watched:
    """A running `workbook local start`: its stderr lines as they come, and every state the file went through."""

    def __init__(self, state_dir: Path, *args: str, **extra: str) -> None:
        self.state_dir = state_dir
        self.process = subprocess.Popen([WORKBOOK, "local", "start", *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=cli_env(state_dir, **extra), cwd=REPO)
        self.lines: list[str] = []
        self.owners: set[str] = set()
        self.entries: dict[str, dict] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def state(self) -> dict:
        """The state file now (and remember its owner and every process it recorded)."""
        try:
            recorded = json.loads((self.state_dir / "state.json").read_text())
        except (OSError, ValueError):
            return {}
        if recorded.get("owner"):
            self.owners.add(recorded["owner"])
        for name in ("moto", "postgres", "engine"):
            if (recorded.get(name) or {}).get("start_ticks") is not None:
                self.entries[f"{name}:{recorded[name]['pid']}"] = recorded[name]
        return recorded

    def wait_for(self, condition, timeout_s: float = 240) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            recorded = self.state()
            if condition(recorded, "\n".join(self.lines)):
                return
            if self.process.poll() is not None:
                raise AssertionError(f"`workbook local start` ended first ({self.process.returncode}): {self.lines}")
            time.sleep(0.02)
        raise AssertionError(f"the phase never came: {self.lines}")

    def signal(self, sig: int) -> subprocess.CompletedProcess:
        self.state()
        self.process.send_signal(sig)
        self.process.wait(timeout=120)
        self._reader.join(timeout=10)   # it reads stderr to the end
        stdout = self.process.stdout.read()
        return subprocess.CompletedProcess(self.process.args, self.process.returncode, stdout, "\n".join(self.lines))


def ours(state_dir: Path, owners: set[str]) -> list[str]:
    """Live processes (not zombies) that name the state folder or carry one of the owner tokens."""
    found = []
    marks = {f"={owner}" for owner in owners}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        command = processes.command_line(int(entry.name))
        if not command or processes.is_zombie(int(entry.name)):
            continue
        if any(str(state_dir) in part for part in command) or any(part.endswith(mark) for part in command
                                                                   for mark in marks):
            found.append(f"{entry.name} {' '.join(command)[:160]}")
    return found


def still_ours(entries: dict[str, dict]) -> list[str]:
    """Recorded processes that are still alive and still the same process."""
    return [key for key, entry in entries.items() if processes.liveness(entry) is processes.Liveness.ALIVE]


def start_decoy() -> subprocess.Popen:
    """An innocent program in a session of its own (what a stale pid may name)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(900)"], start_new_session=True)


def end_decoy(decoy: subprocess.Popen) -> int | None:
    """End a decoy; returns what ``poll()`` said just before (None: it was still running)."""
    before = decoy.poll()
    if before is None:
        os.kill(decoy.pid, signal.SIGKILL)
    decoy.wait()
    return before


_START_SMALL = """
import json, sys
sys.path.insert(0, {helpers!r})
from infra import config
from local_helpers import FUNCTIONS_DIR, small_plan
from workbook.local import manager
recorded = manager.start("local", plan=small_plan(), settings=config.load("local"), code_paths=[str(FUNCTIONS_DIR)])
print(json.dumps(recorded))
"""


def start_small(state_dir: Path) -> dict:
    """Start an environment of the small test plan in a process of its own (as `workbook local start` would)."""
    script = _START_SMALL.format(helpers=str(Path(__file__).resolve().parent))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=cli_env(state_dir),
                            cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def state_of(state_dir: Path) -> dict:
    return json.loads((state_dir / "state.json").read_text())


def sandboxes(owner: str) -> list[int]:
    """The execution environments (runtime processes) carrying the owner token."""
    return [identity.pid for identity in processes.carrying(owner) if any("runtime.py" in part
                                                                           for part in identity.command)]


def kill_9(entry: dict) -> None:
    """SIGKILL a recorded process (proved to be the recorded one first) and wait until it is gone."""
    identity = processes.Identity.from_dict(entry)
    assert identity is not None and processes.send(identity, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while identity.check() is processes.Liveness.ALIVE and time.monotonic() < deadline:
        time.sleep(0.05)
