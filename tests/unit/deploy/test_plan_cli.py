"""`workbook plan`: JSON and table output, and clear errors before any work."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from workbook import cli


def test_plan_json_shape(capsys):
    assert cli.main(["plan", "--env", "staging", "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert set(plan) == {"resources", "outputs"}
    assert all(set(r) >= {"type", "name", "inputs"} for r in plan["resources"])
    assert plan["outputs"]["taskQueueUrl"].startswith("https://sqs.us-east-1.amazonaws.com/")


def test_plan_table(capsys):
    assert cli.main(["plan", "--env", "dev"]) == 0
    out = capsys.readouterr().out
    assert "aws:lambda/function:Function" in out
    assert "Offline plan for dev" in out and "nothing was deployed" in out


def test_unknown_env_is_a_clear_error(capsys):
    assert cli.main(["plan", "--env", "qa"]) == 2
    err = capsys.readouterr().err
    assert "params/qa.yaml" in err and "known environments" in err


def test_bad_format_is_rejected():
    with pytest.raises(SystemExit) as info:
        cli.main(["plan", "--env", "dev", "--format", "xml"])
    assert info.value.code == 2


def test_console_script_runs_without_pulumi_cli_or_aws():
    result = subprocess.run([sys.executable, "-m", "workbook.cli", "plan", "--env", "prod", "--format", "json"],
                            capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["resources"]) > 100
