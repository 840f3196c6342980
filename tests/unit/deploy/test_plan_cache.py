"""Plans kept on disk between processes: the same plan back, and a new one whenever an input changes."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from infra import config
from workbook.deploy import plan as planning


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(planning.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(planning, "_CACHE", {})
    return tmp_path / "cache" / "plans"


def test_a_kept_plan_is_the_plan_and_is_private(cache):
    # GIVEN a plan made once (and kept)
    first = planning.offline_plan("dev")
    (kept,) = cache.glob("*.json")
    assert kept.stat().st_mode & 0o077 == 0
    # WHEN another process asks for the same environment and params (no plan in its memory)
    planning._CACHE.clear()
    again = planning.offline_plan("dev")
    # THEN it reads the same plan: every resource, the outputs and the foundation's
    assert again.to_dict() == json.loads(json.dumps(first.to_dict()))
    assert again.foundation_outputs == json.loads(json.dumps(first.foundation_outputs))


def test_the_key_changes_with_params_sources_and_sdk(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "infra").mkdir(parents=True)
    (project / "handlers").mkdir()
    (project / "infra" / "compute.py").write_text("MEMORY = 512\n")
    (project / "handlers" / "api_processor.py").write_text("def handler(e, c): return 1\n")
    monkeypatch.setattr(planning, "_PROJECT", project)
    base = planning.plan_key(("dev", "{}"))
    assert planning.plan_key(("dev", "{}")) == base
    assert planning.plan_key(("dev", '{"x": 1}')) != base
    assert planning.plan_key(("prod", "{}")) != base
    (project / "infra" / "compute.py").write_text("MEMORY = 1024\n")
    changed_infra = planning.plan_key(("dev", "{}"))
    assert changed_infra != base
    (project / "handlers" / "api_processor.py").write_text("def handler(e, c): return 2\n")
    assert planning.plan_key(("dev", "{}")) not in (base, changed_infra)
    monkeypatch.setattr(planning.importlib.metadata, "version", lambda name: "9.9.9")
    assert planning.plan_key(("dev", "{}")) not in (base, changed_infra)


def test_an_unreadable_kept_plan_is_planned_again(cache):
    settings = config.load("dev")
    key = (settings.env, json.dumps(settings.params.model_dump(mode="json"), sort_keys=True))
    cache.mkdir(parents=True)
    (cache / f"{planning.plan_key(key)}.json").write_text('{"env": "dev", "resources": [')   # cut short
    plan = planning.offline_plan("dev")
    assert plan.resources and json.loads((cache / f"{planning.plan_key(key)}.json").read_text())["resources"]


def test_a_second_process_reads_the_plan_instead_of_planning(cache):
    # GIVEN the plan kept by this process; WHEN a new process plans, with the SDK's mocks made to fail
    planning.offline_plan("dev")
    script = ("import pulumi.runtime, sys\n"
              "pulumi.runtime.set_mocks = lambda *a, **k: sys.exit('planned again')\n"
              "from workbook.deploy.plan import offline_plan\n"
              "print(len(offline_plan('dev').resources))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env={**os.environ, planning.CACHE_ENV: str(cache.parent)})
    # THEN it read the kept one
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == len(planning.offline_plan("dev").resources)
