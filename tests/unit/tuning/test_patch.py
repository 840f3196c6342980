"""The params patch keeps each params file as written: comments, key order, quoting and style survive.

The oracle is the file itself: a patch that changes one value must leave every other line of every
``params/*.yaml`` byte for byte as it was, and the patched file must load with the params schema.
"""
from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest
import yaml

from infra import config
from workbook.tuning import patch as patching

REPO = Path(__file__).resolve().parents[3]
PARAMS = sorted((REPO / "params").glob("*.yaml"))


@pytest.fixture
def params_dir(tmp_path):
    for path in PARAMS:
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def _changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:2] in ("- ", "+ ")]


@pytest.mark.parametrize("path", PARAMS, ids=lambda p: p.stem)
def test_a_round_trip_without_changes_is_byte_identical(path):
    # GIVEN a params file WHEN ruamel.yaml loads and dumps it as the patch does THEN nothing differs
    yaml_rt = patching._yaml()
    import io

    out = io.StringIO()
    yaml_rt.dump(yaml_rt.load(path.read_text()), out)
    assert out.getvalue() == path.read_text()


@pytest.mark.parametrize("path", PARAMS, ids=lambda p: p.stem)
def test_one_change_touches_one_line_and_keeps_every_comment(params_dir, path):
    env = path.stem
    settings = config.load(env, params_dir)
    current = settings.function("api-processor").memory_mb
    patch = patching.params_patch(env, {"api-processor": {"memory_mb": current + 64}}, params_dir=params_dir)
    changed = _changed_lines(patch.before, patch.after)
    # exactly one line is added or rewritten: the memory value
    assert [line for line in changed if line.startswith("+ ")] and all("memory_mb" in line or "api-processor" in line
                                                                         for line in changed), changed
    comments_before = [line for line in patch.before.splitlines() if "#" in line]
    comments_after = [line for line in patch.after.splitlines() if "#" in line]
    assert [c.split("#", 1)[1] for c in comments_before] == [c.split("#", 1)[1] for c in comments_after]
    # key order of every mapping is unchanged, and the result is valid params
    assert list(yaml.safe_load(patch.before)) == list(yaml.safe_load(patch.after))
    assert config.from_mapping(yaml.safe_load(patch.after)).function("api-processor").memory_mb == current + 64


def test_quoted_values_keep_their_quotes(params_dir):
    text = (params_dir / "local.yaml").read_text()
    quoted = [line for line in text.splitlines() if '"' in line]
    assert quoted, "local.yaml has quoted values (the schedule expression, the backend URL)"
    patch = patching.params_patch("local", {"scheduler": {"timeout_s": 120}}, params_dir=params_dir)
    assert [line for line in patch.after.splitlines() if '"' in line] == quoted


def test_a_visibility_change_keeps_its_ratio_comment_true(params_dir):
    patch = patching.params_patch("prod", queues={"task_queue": {"visibility_timeout_s": 2400}}, params_dir=params_dir)
    assert "visibility_timeout_s: 2400        # 6 x data-processor's 400 s" in patch.after


def test_apply_is_atomic_and_refuses_a_file_changed_since(params_dir):
    patch = patching.params_patch("dev", {"scheduler": {"memory_mb": 256}}, params_dir=params_dir)
    patch.apply()
    assert config.load("dev", params_dir).function("scheduler").memory_mb == 256
    assert not list(params_dir.glob(".dev.yaml.*")), "no temporary file is left behind"
    stale = patching.params_patch("dev", {"scheduler": {"memory_mb": 512}}, params_dir=params_dir)
    (params_dir / "dev.yaml").write_text(stale.before + "# edited by hand\n")
    with pytest.raises(patching.TuningError, match="changed since the patch was made"):
        stale.apply()
    assert (params_dir / "dev.yaml").read_text().endswith("# edited by hand\n")   # nothing lost


def test_a_malformed_file_is_a_clear_error_and_stays_untouched(params_dir):
    (params_dir / "dev.yaml").write_text("functions: {api-processor: [unclosed\n")
    with pytest.raises(patching.TuningInputError, match="not valid YAML"):
        patching.params_patch("dev", {"scheduler": {"memory_mb": 256}}, params_dir=params_dir)
    assert (params_dir / "dev.yaml").read_text() == "functions: {api-processor: [unclosed\n"
