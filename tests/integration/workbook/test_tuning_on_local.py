"""Power tuning on the local sandbox with each function's sample event: every payload is valid."""
from __future__ import annotations

import os

import pytest

from infra import config, specs
from workbook.tuning import recommend
from workbook.tuning.payloads import sample_event


@pytest.fixture(scope="module")
def local_env(tmp_path_factory):
    previous = os.environ.get("WORKBOOK_STATE_DIR")
    os.environ["WORKBOOK_STATE_DIR"] = str(tmp_path_factory.mktemp("tuning-state"))
    from workbook import aws
    from workbook.local import manager

    manager.start("local")
    manager.activate()
    yield config.load("local")
    manager.stop()
    if previous is None:
        os.environ.pop("WORKBOOK_STATE_DIR", None)
    else:
        os.environ["WORKBOOK_STATE_DIR"] = previous
    aws.reset_clients()


@pytest.mark.parametrize("key", specs.FUNCTION_KEYS)
def test_sample_event_runs_without_errors_at_every_size(local_env, key):
    tuned = recommend.power_tune(local_env, key, [256, 1024], 2, adaptive=False, payload=sample_event(local_env, key))
    table = tuned.analysis.table
    current = local_env.function(key).memory_mb
    assert list(table["memory_mb"]) == sorted({256, 1024, current})      # the current size is measured too
    assert table["errors"].sum() == 0, table
    assert (table["average_duration_ms"] > 0).all()


def test_cpu_bound_file_processing_gets_faster_with_memory(local_env):
    tuned = recommend.power_tune(local_env, "file-processor", [256, 1769], 4, adaptive=False,
                                 payload=sample_event(local_env, "file-processor"))
    durations = tuned.analysis.table.set_index("memory_mb")["average_duration_ms"]
    assert durations[1769] < durations[256] / 2


def test_tune_cli_uses_the_sample_event_and_keeps_timeouts_on_thin_data(local_env, capsys):
    from workbook import cli

    code = cli.main(["tune", "--env", "local", "--function", "auth-handler", "--power-values", "256,512", "--num", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "strategy chooses" in out and "timeout: insufficient-data" in out and "the rule needs 2,995" in out
    lines = [line for line in out.splitlines() if line.strip().startswith(("256", "512"))]
    assert len(lines) == 2 and all(line.split()[2] == "0" for line in lines)   # no errors at either size


def test_file_processor_is_tuned_with_an_object_of_max_object_mb(local_env):
    # GIVEN the file processor's tuning payloads: its usual image and one of uploads.max_object_mb
    tuned = recommend.power_tune(local_env, "file-processor", [256, 512, 1024], 3)
    run = tuned.run
    invocations = run.invocations
    largest = invocations[invocations["payload"] == run.largest_payload["index"]]
    # THEN the largest object was processed without error, its peak set the floor, and nothing under it was measured
    assert len(largest) >= 1 and largest["error"].isna().all()
    limit_mb = local_env.params.uploads.max_object_mb
    assert run.largest_payload["peak_mb"] > limit_mb            # the decoded image is at least as large as the file
    assert run.floor.value >= run.largest_payload["peak_mb"] * 1.3 and "largest payload" in run.floor.reason
    assert invocations["memory_mb"].min() >= run.floor.value
    assert tuned.decision.floor.value >= run.floor.value and tuned.decision.recommended_mb >= run.floor.value
