"""The interactive controls: the schema's verdict before Apply, a confirmation that stays, the plan diff as preview.

Oracles: the params schema itself (``infra.config``: its own message for the combination), the
offline plan of the patched params (what the stack would hold), and the params file on disk.
"""
from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml
from ipywidgets import widgets

from infra import config
from tests.unit.tuning.test_recommend import reports
from workbook.deploy.plan import offline_plan
from workbook.report import interactive
from workbook.tuning import recommend


@pytest.fixture
def params_dir(tmp_path, monkeypatch):
    """A copy of params/ that ``config`` reads and the patch writes (as WORKBOOK_PARAMS_DIR does)."""
    folder = tmp_path / "params"
    shutil.copytree(config.REPO_ROOT / "params", folder)
    monkeypatch.setenv("WORKBOOK_PARAMS_DIR", str(folder))
    return folder


def test_a_timeout_the_queue_forbids_is_refused_with_the_schemas_own_message(params_dir):
    # GIVEN the data processor and the choice: a 400 s timeout
    settings = config.load("local")
    raw = yaml.safe_load((params_dir / "local.yaml").read_text())
    raw.setdefault("functions", {}).setdefault("data-processor", {})["timeout_s"] = 400
    with pytest.raises(config.ParamsError) as oracle:
        config.from_mapping(raw, source="params/local.yaml (patched)")
    # WHEN the controls check it
    chosen = interactive.candidate(settings, "data-processor", settings.function("data-processor").memory_mb, 400,
                                   settings.function("data-processor").architecture)
    # THEN it is refused, with the schema's first line (naming the file, the field and the fix), and no patch
    assert not chosen.valid and chosen.patch is None
    assert chosen.problem.split(": ", 1)[1] == str(oracle.value).splitlines()[0].split(": ", 1)[1]
    assert "visibility_timeout_s" in chosen.problem and "\n" not in chosen.problem


def test_an_unchanged_choice_is_no_change_and_a_changed_one_patches_only_what_differs(params_dir):
    settings = config.load("local")
    fn = settings.function("file-processor")
    same = interactive.candidate(settings, "file-processor", fn.memory_mb, fn.timeout_s, fn.architecture)
    assert same.valid and same.changes == {} and same.patch is None
    smaller = interactive.candidate(settings, "file-processor", 512, fn.timeout_s, fn.architecture)
    assert smaller.changes == {"memory_mb": 512}
    assert "+" in smaller.patch.diff and "memory_mb: 512" in smaller.patch.diff


def test_plan_changes_lists_each_property_that_the_patch_changes(params_dir):
    # GIVEN a patch of the file processor to 512 MB
    settings = config.load("local")
    chosen = interactive.candidate(settings, "file-processor", 512, settings.function("file-processor").timeout_s,
                                   settings.function("file-processor").architecture)
    after = interactive.settings_after(chosen.patch)
    # WHEN the plans before and after are diffed
    changes = interactive.plan_changes(offline_plan("local", settings), offline_plan("local", after))
    # THEN the function's memorySize is there, old and new, as the plan's own inputs say
    function = offline_plan("local", after).of_type("aws:lambda/function:Function")
    name = next(r["name"] for r in function if r["inputs"].get("name") == settings.function_name("file-processor"))
    row = changes[(changes["resource"] == name) & (changes["property"] == "memorySize")]
    assert row[["before", "after"]].values.tolist() == [[str(settings.function("file-processor").memory_mb), "512"]], \
        changes.to_dict(orient="records")
    assert set(changes["resource"]) <= {r["name"] for r in offline_plan("local", after).resources}


def test_the_confirmation_stays_when_a_control_moves_and_the_patch_lands(params_dir, monkeypatch):
    # GIVEN the controls for the file processor, the preview stubbed to a known table (the plan has its own test)
    settings = config.load("local")
    data = reports("file-processor", 50, 400, settings.function("file-processor").memory_mb, 300)
    recs = recommend.recommend(settings, data, ["file-processor"])
    monkeypatch.setattr(interactive, "preview", lambda s, p: ("1 property would change.", pd.DataFrame(
        [{"resource": "fp", "type": "t", "property": "memorySize", "before": "2048", "after": "512"}])))
    panel = interactive.Controls(settings, {}, data, recs)
    panel.function.value = "file-processor"
    # WHEN memory moves, Apply is pressed, then the timeout moves
    panel.memory.value = 512
    projected_at_512 = panel.current
    panel.on_apply()
    cleared = []
    panel.result.clear_output = lambda *a, **k: cleared.append(1)   # only an Apply may clear the result
    panel.timeout.value = 120
    panel.memory.value = 1024
    # THEN the patch is in the params copy, and the confirmation was not cleared by the moves
    assert projected_at_512.valid and projected_at_512.changes == {"memory_mb": 512}
    assert yaml.safe_load((params_dir / "local.yaml").read_text())["functions"]["file-processor"]["memory_mb"] == 512
    assert cleared == [] and panel.applied.startswith("Applied to ") and "memory_mb = 512" in panel.applied
    assert panel.settings.function("file-processor").memory_mb == 512
    assert panel.current.changes == {"memory_mb": 1024, "timeout_s": 120} and not panel.apply.disabled
    assert isinstance(panel.view, widgets.VBox)


def test_an_invalid_choice_disables_apply_and_says_rejected(params_dir):
    settings = config.load("local")
    data = reports("data-processor", 50, 400, 512, 100)
    recs = recommend.recommend(settings, data, ["data-processor"])
    panel = interactive.Controls(settings, {}, data, recs)
    panel.function.value = "data-processor"
    panel.timeout.value = 400
    assert panel.apply.disabled and "visibility_timeout_s" in panel.verdict.value
    panel.timeout.value = settings.function("data-processor").timeout_s
    assert panel.verdict.value == ""


def test_an_arm64_projection_says_it_assumes_the_measured_architectures_speed():
    settings = config.load("local")
    data = reports("api-processor", 120, 100, 512, 300)
    x86 = interactive.project(settings, "api-processor", 512, 30, "x86_64", data)
    arm = interactive.project(settings, "api-processor", 512, 30, "arm64", data)
    assert x86["speed"] == "measured on x86_64"
    assert arm["speed"] == "assumes x86_64 speed: arm64 not measured"
    assert arm["duration_ms"] == x86["duration_ms"] and arm["monthly_usd"] < x86["monthly_usd"]
