"""Scheduled reports: a crontab line and a systemd service and timer that run ``workbook run --env ENV``."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from infra import config
from workbook.errors import BadInput

_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z]+$")


def schedule_lines(env: str, cron: str, repo: Path | None = None) -> dict[str, str]:
    """A crontab line and a systemd service + timer pair that run ``workbook run --env ENV``."""
    fields = cron.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise BadInput(f"--cron {cron!r}: expected five crontab fields, like \"0 6 * * *\" (minute hour dom month dow)")
    config.load(env)
    repo = (repo or config.REPO_ROOT).resolve()
    workbook = repo / ".venv" / "bin" / "workbook"
    log = repo / "outputs" / env / "schedule.log"
    command = f"cd {repo} && {workbook} run --env {env} >> {log} 2>&1"
    crontab = f"{cron} {command}  # lambda-workbook report {env}"
    on_calendar = _on_calendar(fields)
    service = (f"[Unit]\nDescription=Lambda workbook report ({env})\n\n[Service]\nType=oneshot\n"
               f"WorkingDirectory={repo}\nExecStart={workbook} run --env {env}\n")
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
