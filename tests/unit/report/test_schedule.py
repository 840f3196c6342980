"""workbook schedule: crons checked field by field, OnCalendar= checked by systemd, the user's variables kept.

The oracles: croniter (the cron expression's next firings) and ``systemd-analyze calendar``
(Debian's systemd; ``scripts/ensure-systemd-analyze.sh`` installs it for ``make test``), which must
accept every ``OnCalendar=`` the workbook writes and list the same firings.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess

import pytest
from croniter import croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra import config
from workbook import cli
from workbook.errors import BadInput
from workbook.report import schedule

BASE = dt.datetime(2026, 12, 7, 21, 17, 30, tzinfo=dt.UTC)   # a Monday; half a minute past
ITERATIONS = 12
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None,
    reason="systemd-analyze is not installed (scripts/ensure-systemd-analyze.sh installs Debian's systemd as root)")


def systemd_firings(calendars: list[str], count: int) -> list[dt.datetime]:
    """The first ``count`` elapses after BASE of the union of ``calendars``, as systemd computes them."""
    firings: set[dt.datetime] = set()
    for calendar in calendars:
        done = subprocess.run([SYSTEMD_ANALYZE, "calendar", f"--iterations={count}",
                               f"--base-time={BASE:%Y-%m-%d %H:%M:%S} UTC", calendar],
                              capture_output=True, text=True, env={**os.environ, "TZ": "UTC"}, timeout=60)
        assert done.returncode == 0, f"systemd-analyze rejects OnCalendar={calendar}: {done.stderr.strip()}"
        for stamp in re.findall(r"(?:Next elapse|Iter\. #\d+): \w{3} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", done.stdout):
            firings.add(dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC))
    return sorted(firings)[:count]


def cron_firings(cron: str, count: int) -> list[dt.datetime]:
    iterator = croniter(cron, BASE)
    return [iterator.get_next(dt.datetime) for _ in range(count)]


@pytest.mark.parametrize("cron, expected", [
    ("0 6 * * 1-5", ["Mon..Fri *-*-* 06:00:00"]),
    ("0 6 * * *", ["*-*-* 06:00:00"]),
    ("*/15 * * * *", ["*-*-* *:00/15:00"]),
    ("30 2 * jan-mar sun", ["Sun *-01..03-* 02:30:00"]),
    ("5 4 * * 7", ["Sun *-*-* 04:05:00"]),
    ("5 4 * * 0-1,6", ["Mon,Sat..Sun *-*-* 04:05:00"]),   # systemd's week starts on Monday
    # cron fires on the 1st OR on Mondays; systemd needs both to match, so two lines
    ("0 6 1 * 1", ["*-*-01 06:00:00", "Mon *-*-* 06:00:00"]),
])
def test_on_calendar_spells_each_cron_as_systemd_does(cron, expected):
    assert schedule.on_calendar(cron) == expected


CRONS = ["0 6 * * 1-5", "0 6 * * *", "*/15 * * * *", "30 2 * jan-mar sun", "5 4 * * 7", "0 6 1 * 1",
         "0 9-17/2 * * mon-fri", "0 0 */2 * *", "15,45 8,20 * * 0,6", "0 12 29 2 *", "59 23 31 * *",
         "0 6 */3 * 5", "1-5 0 * * *", "0 0 1 */4 *", "0 6 13 * fri", "*/7 */5 * * *", "0 4 8-14 * 2"]


@needs_systemd
@pytest.mark.parametrize("cron", CRONS)
def test_systemd_fires_when_croniter_says_the_cron_fires(cron):
    assert systemd_firings(schedule.on_calendar(cron), ITERATIONS) == cron_firings(cron, ITERATIONS)


def _field(low: int, high: int):
    value = st.integers(low, high)
    return st.one_of(
        st.just("*"),
        value.map(str),
        st.tuples(value, value).map(lambda ab: f"{min(ab)}-{max(ab)}"),
        st.integers(2, max(2, high // 2)).map(lambda step: f"*/{step}"),
        st.tuples(value, value, st.integers(1, 9)).map(lambda abs_: f"{min(abs_[:2])}-{max(abs_[:2])}/{abs_[2]}"),
        st.lists(value, min_size=2, max_size=4, unique=True).map(lambda vs: ",".join(map(str, vs))),
    )


@needs_systemd
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(_field(0, 59), _field(0, 23), _field(1, 28), _field(1, 12), _field(0, 7)).map(" ".join))
def test_generated_crons_fire_alike_under_systemd_and_croniter(cron):
    assert systemd_firings(schedule.on_calendar(cron), 6) == cron_firings(cron, 6)


@pytest.mark.parametrize("cron, says", [
    ("61 * * * *", "minute field '61': 61 is out of range; minute values are 0-59"),
    ("a b c d e", "minute field 'a': 'a' is not"),
    ("0 24 * * *", "hour field '24'"),
    ("0 6 0 * *", "day of month field '0'"),
    ("0 6 * 13 *", "month field '13'"),
    ("0 6 * * 8", "day of week field '8'"),
    ("0 6 * * 5-1", "runs backwards"),
    ("*/0 * * * *", "step /0 must be 1 or more"),
    ("0 6 L * *", "day of month field 'L'"),
    ("0 6 * * foo", "'foo' is not a day of week name"),
    ("0 6 * *", "expected five crontab fields"),
    ("@daily", "expected five crontab fields"),
])
def test_bad_crons_are_refused_naming_the_field(cron, says):
    with pytest.raises(BadInput, match=re.escape(says)):
        schedule.validate_cron(cron)


def test_the_cli_refuses_a_bad_cron_in_one_line_with_exit_2(capsys):
    assert cli.main(["schedule", "--env", "dev", "--cron", "61 * * * *"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "minute field '61'" in err and "Traceback" not in err


def test_install_without_crontab_says_what_to_do_instead(capsys, monkeypatch, tmp_path):
    # GIVEN a machine without crontab on PATH
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cli.main(["schedule", "--env", "dev", "--cron", "0 6 * * 1-5", "--install"]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.err.count("\n") == 1
    assert "crontab is not installed" in captured.err and "systemd service and timer" in captured.err
    assert "OnCalendar=Mon..Fri *-*-* 06:00:00" in captured.out


def test_the_job_keeps_every_workbook_variable_the_user_set(monkeypatch, tmp_path):
    # GIVEN the user's own folders, one relative, one with a % (special in crontab lines and unit files)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my params").mkdir()
    shutil.copy(config.params_path("dev"), tmp_path / "my params" / "dev.yaml")
    monkeypatch.setenv("WORKBOOK_PARAMS_DIR", "my params")
    monkeypatch.setenv("WORKBOOK_OUTPUTS_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("WORKBOOK_STATE_DIR", str(tmp_path / "state 100%"))
    monkeypatch.setenv("WORKBOOK_RUN_ID", "a-run-of-my-own")   # a run's internal marker: never carried
    lines = schedule.schedule_lines("dev", "0 6 * * *", repo=tmp_path)
    params_dir = str(tmp_path / "my params")
    assert f"WORKBOOK_PARAMS_DIR='{params_dir}'" in lines["crontab"]
    assert f"WORKBOOK_OUTPUTS_DIR={tmp_path / 'out'}" in lines["crontab"]
    assert "state 100\\%" in lines["crontab"] and "WORKBOOK_RUN_ID" not in lines["crontab"]
    assert f'Environment="WORKBOOK_PARAMS_DIR={params_dir}"' in lines["service"]
    assert f'Environment="WORKBOOK_STATE_DIR={tmp_path}/state 100%%"' in lines["service"]
    assert "WORKBOOK_RUN_ID" not in lines["service"]


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX shell to run the crontab command")
def test_the_crontab_command_sets_the_variables_it_names(monkeypatch, tmp_path):
    # WHEN the crontab line's command (its % unescaped, as cron does) runs, with `env` in place of the workbook
    (tmp_path / "p 1").mkdir()
    shutil.copy(config.params_path("dev"), tmp_path / "p 1" / "dev.yaml")
    monkeypatch.setenv("WORKBOOK_PARAMS_DIR", str(tmp_path / "p 1"))
    line = schedule.schedule_lines("dev", "0 6 * * *", repo=tmp_path)["crontab"]
    command = line.split(" ", 5)[5].rsplit("  #", 1)[0].replace("\\%", "%")
    probe = re.sub(r"\S*workbook run .*", "env", command)
    done = subprocess.run(["sh", "-c", probe], capture_output=True, text=True, check=True)
    assert f"WORKBOOK_PARAMS_DIR={tmp_path / 'p 1'}" in done.stdout.splitlines()
