"""Scheduled reports: a crontab line and a systemd service and timer that run ``workbook run --env ENV``.

The job appends to ``outputs/<env>/schedule.log`` through ``workbook run --log``: the run writes
its own progress and result lines there, redacted, so no shell redirection copies raw output.

The cron expression is checked field by field (standard five-field crontab: numbers, names,
``*``, ranges, steps and lists; croniter expands it), and converted to systemd ``OnCalendar=``
lines with the same firings: cron fires when the day of month *or* the day of week matches
when both are restricted, systemd when both do, so such a cron becomes two ``OnCalendar=``
lines. The job carries every ``WORKBOOK_*`` variable the user set (folders made absolute).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from infra import config
from workbook.errors import BadInput
from workbook.report import folders

#: (name, lowest, highest, names accepted) of the five crontab fields, in order.
CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
_ELEMENT = re.compile(r"^(?:(?P<star>\*)|(?P<low>[0-9]+|[a-z]{3})(?:-(?P<high>[0-9]+|[a-z]{3}))?)(?:/(?P<step>[0-9]+))?$")
_SYSTEMD_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
#: Variables a run sets for its own kernels: never copied into a schedule.
_RUN_INTERNAL = frozenset({"WORKBOOK_RUN_ID", "WORKBOOK_RUN_LOCAL_OWNER", "WORKBOOK_REDACT_REGISTRY",
                           "WORKBOOK_ENV", "WORKBOOK_FUNCTION"})


def validate_cron(cron: str) -> list[str]:
    """The five fields of ``cron``, or :class:`BadInput` naming the field, the value and the fix."""
    fields = cron.split()
    if len(fields) != 5:
        raise BadInput(f"--cron {cron!r}: expected five crontab fields (minute hour day-of-month month day-of-week), "
                       f"got {len(fields)}; for example \"0 6 * * 1-5\"")
    for text, (name, low, high, names) in zip(fields, CRON_FIELDS, strict=True):
        for element in text.lower().split(","):
            _check_element(cron, name, text, element, low, high, names)
    from croniter import croniter  # noqa: PLC0415 - a dependency only the scheduler needs

    if not croniter.is_valid(" ".join(fields)):   # the oracle agrees, or we have missed a case
        raise BadInput(f"--cron {cron!r}: not a valid crontab expression")
    return fields


def _check_element(cron: str, name: str, text: str, element: str, low: int, high: int, names: tuple) -> None:
    where = f"--cron {cron!r}: {name} field {text!r}"
    found = _ELEMENT.match(element)
    if not found:
        allowed = f"{low}-{high}" + (f" or names ({names[0].title()}, {names[1].title()}, ...)" if names else "")
        raise BadInput(f"{where}: {element!r} is not *, a value, a range a-b or a step */n ({allowed})")

    def number(value: str) -> int:
        if value.isdigit():
            result = int(value)
        elif value in names:
            result = names.index(value) + (1 if name == "month" else 0)
        else:
            raise BadInput(f"{where}: {value!r} is not a {name} name" + (f" ({', '.join(n.title() for n in names)})"
                                                                       if names else f"; use {low}-{high}"))
        if not low <= result <= high:
            raise BadInput(f"{where}: {value} is out of range; {name} values are {low}-{high}")
        return result

    if found["low"] is not None:
        first = number(found["low"])
        if found["high"] is not None and number(found["high"]) < first:
            raise BadInput(f"{where}: range {element!r} runs backwards; write it low-high")
    if found["step"] is not None and int(found["step"]) < 1:
        raise BadInput(f"{where}: step /{found['step']} must be 1 or more")


def on_calendar(cron: str) -> list[str]:
    """systemd ``OnCalendar=`` values firing exactly when ``cron`` does (two when cron ORs the day fields)."""
    from croniter import croniter  # noqa: PLC0415

    fields = validate_cron(cron)
    expanded, _ = croniter.expand(" ".join(fields))
    minute, hour, dom, month, dow = (None if values == ["*"] else sorted({int(v) % 7 if i == 4 else int(v)
                                                                          for v in values})
                                     for i, values in enumerate(expanded))
    time = f"{_values(hour, 0, 23)}:{_values(minute, 0, 59)}:00"
    month_text = _values(month, 1, 12)
    if dom is not None and dow is not None:   # cron: either day matches; systemd: both must, so two lines
        return [f"*-{month_text}-{_values(dom, 1, 31)} {time}", f"{_days(dow)} *-{month_text}-* {time}"]
    days = f"{_days(dow)} " if dow is not None else ""
    return [f"{days}*-{month_text}-{_values(dom, 1, 31)} {time}"]


def _values(values: list[int] | None, low: int, high: int) -> str:
    """A systemd calendar component: ``*``, ``a/step`` when the values run to the end, else runs as ``a..b``."""
    if values is None or values == list(range(low, high + 1)):
        return "*"
    if len(values) >= 3:
        step = values[1] - values[0]
        if values == list(range(values[0], high + 1, step)) and step > 1:
            return f"{values[0]:02d}/{step}"
    return ",".join(f"{a:02d}" if a == b else f"{a:02d}..{b:02d}" for a, b in _runs(values))


def _days(values: list[int]) -> str:
    """Cron days (0 = Sunday) as systemd's, whose week runs Monday to Sunday (``Sun..Mon`` is no range)."""
    iso = sorted(value or 7 for value in values)
    return ",".join(_SYSTEMD_DAYS[a % 7] if a == b else f"{_SYSTEMD_DAYS[a % 7]}..{_SYSTEMD_DAYS[b % 7]}"
                    for a, b in _runs(iso))


def _runs(values: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def carried_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Every ``WORKBOOK_*`` variable the user set (folders absolute), for the scheduled job."""
    environ = dict(os.environ if environ is None else environ)
    carried = {}
    for name in sorted(environ):
        if not name.startswith("WORKBOOK_") or name in _RUN_INTERNAL:
            continue
        value = environ[name]
        if name.endswith("_DIR") and value:
            value = str(Path(value).expanduser().resolve())
        carried[name] = value
    return carried


def _systemd_quote(value: str) -> str:
    """A value for a unit file line: double-quoted, with specifiers (%) and escapes kept literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def schedule_lines(env: str, cron: str, repo: Path | None = None) -> dict[str, str]:
    """A crontab line and a systemd service + timer pair that run ``workbook run --env ENV --log ...``.

    ``repo`` is the project folder (default: the one holding ``params/``, from here up). The
    command is the ``workbook`` beside the running interpreter; the log is ``schedule.log`` in the
    outputs folder the run itself will use.
    """
    calendars = on_calendar(cron)
    fields = cron.split()
    config.load(env)
    repo = (repo or folders.project_folder()).resolve()
    workbook = Path(sys.executable).parent / "workbook"
    carried = carried_environment()
    override = carried.get(folders.OUTPUTS_ENV)
    outputs = Path(override) if override else repo / "outputs"
    log = outputs / env / "schedule.log"
    run = f"{shlex.quote(str(workbook))} run --env {env} --log {shlex.quote(str(log))}"
    prefix = "".join(f"{name}={shlex.quote(value)} " for name, value in carried.items())
    command = f"cd {shlex.quote(str(repo))} && {prefix}{run} >/dev/null 2>&1"
    # In a crontab line an unescaped % ends the command (the rest becomes its standard input).
    crontab = f"{' '.join(fields)} {command.replace('%', chr(92) + '%')}  # lambda-workbook report {env}"
    environment = "".join(f"Environment={_systemd_quote(f'{name}={value}')}\n" for name, value in carried.items())
    # KillMode=mixed: a stop sends SIGTERM to the run alone, which stops what it started and
    # finishes its folder; whatever is left gets SIGKILL after TimeoutStopSec.
    service = (f"[Unit]\nDescription=Lambda workbook report ({env})\n\n[Service]\nType=oneshot\n"
               f"WorkingDirectory={_systemd_quote(str(repo))}\n{environment}ExecStart={run.replace('%', '%%')}\n"
               f"KillMode=mixed\nTimeoutStopSec=120\n")
    timer = (f"[Unit]\nDescription=Lambda workbook report ({env}) on schedule\n\n[Timer]\n"
             + "".join(f"OnCalendar={calendar}\n" for calendar in calendars)
             + "Persistent=true\n\n[Install]\nWantedBy=timers.target\n")
    return {"crontab": crontab, "service": service, "timer": timer}


def install_crontab(line: str) -> None:
    """Add ``line`` to the user's crontab, replacing an earlier entry for the same env."""
    marker = line.rsplit("#", 1)[1].strip()
    if shutil.which("crontab") is None:
        raise BadInput("crontab is not installed on this machine (Debian: apt-get install cron); "
                       "or install the systemd service and timer printed above instead of --install")
    current = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    existing = current.stdout.splitlines() if current.returncode == 0 else []
    kept = [entry for entry in existing if not entry.endswith(marker)]
    subprocess.run(["crontab", "-"], input="\n".join(kept + [line]) + "\n", text=True, check=True)
