"""Scheduled reports: a crontab line and a systemd service and timer that run ``workbook run --env ENV``.

The job appends to ``outputs/<env>/schedule.log`` through ``workbook run --log``: the run writes
its own progress and result lines there, redacted, so no shell redirection copies raw output.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from infra import config
from workbook.errors import BadInput
from workbook.report import folders

_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z]+$")


def schedule_lines(env: str, cron: str, repo: Path | None = None) -> dict[str, str]:
    """A crontab line and a systemd service + timer pair that run ``workbook run --env ENV --log ...``.

    ``repo`` is the project folder (default: the one holding ``params/``, from here up). The
    command is the ``workbook`` beside the running interpreter; the log is ``schedule.log`` in the
    outputs folder the run itself will use.
    """
    fields = cron.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise BadInput(f"--cron {cron!r}: expected five crontab fields, like \"0 6 * * *\" (minute hour dom month dow)")
    config.load(env)
    repo = (repo or folders.project_folder()).resolve()
    workbook = Path(sys.executable).parent / "workbook"
    override = os.environ.get(folders.OUTPUTS_ENV)
    outputs = Path(override).resolve() if override else repo / "outputs"
    log = outputs / env / "schedule.log"
    run = f"{shlex.quote(str(workbook))} run --env {env} --log {shlex.quote(str(log))}"
    prefix = f"{folders.OUTPUTS_ENV}={shlex.quote(str(outputs))} " if override else ""
    command = f"cd {shlex.quote(str(repo))} && {prefix}{run} >/dev/null 2>&1"
    crontab = f"{cron} {command}  # lambda-workbook report {env}"
    on_calendar = _on_calendar(fields)
    environment = f"Environment={folders.OUTPUTS_ENV}={outputs}\n" if override else ""
    # KillMode=mixed: a stop sends SIGTERM to the run alone, which stops what it started and
    # finishes its folder; whatever is left gets SIGKILL after TimeoutStopSec.
    service = (f"[Unit]\nDescription=Lambda workbook report ({env})\n\n[Service]\nType=oneshot\n"
               f"WorkingDirectory={repo}\n{environment}ExecStart={run}\nKillMode=mixed\nTimeoutStopSec=120\n")
    timer = (f"[Unit]\nDescription=Lambda workbook report ({env}) on schedule\n\n[Timer]\nOnCalendar={on_calendar}\n"
             f"Persistent=true\n\n[Install]\nWantedBy=timers.target\n")
    return {"crontab": crontab, "service": service, "timer": timer}


def _on_calendar(fields: list[str]) -> str:
    minute, hour, dom, month, dow = fields

    def part(value: str) -> str:
        return "*" if value == "*" else value.replace("*/", "0/")

    days = "" if dow == "*" else f"{dow} "
    return f"{days}*-{part(month)}-{part(dom)} {part(hour)}:{part(minute)}:00"


def install_crontab(line: str) -> None:
    """Add ``line`` to the user's crontab, replacing an earlier entry for the same env."""
    marker = line.rsplit("#", 1)[1].strip()
    current = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    existing = current.stdout.splitlines() if current.returncode == 0 else []
    kept = [entry for entry in existing if not entry.endswith(marker)]
    subprocess.run(["crontab", "-"], input="\n".join(kept + [line]) + "\n", text=True, check=True)
