"""workbook.tuning: the power-tuning analysis, the runner, the AWS invoker, the model and the params patch."""
from __future__ import annotations

import base64
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infra.config import ParamsError
from workbook import tuning
from workbook.tuning import InvocationResult

REPO = Path(__file__).resolve().parents[3]


# ---------------------------------------------------------------------------------------------
# The reference analysis.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "durations, discard, expected",
    [  # the cases of aws-lambda-power-tuning's own test suite for computeAverageDuration
        ([1, 2, 3, 4, 2000], 0.2, 3),
        ([1, 2, 3, 4, 2000], 0.4, 3),
        ([1, 2, 3, 4, 2000], 0.0, 402),
        ([1], 0.4, 1),
        ([], 0.2, 0),
    ],
)
def test_trimmed_mean_matches_the_tool(durations, discard, expected):
    assert tuning.trimmed_mean(durations, discard) == expected


def test_cost_strategy_picks_the_cheapest_and_breaks_ties_on_speed():
    # GIVEN 128 MB at 100 ms and 256 MB at 50 ms cost the same (ceil(ms) x memory)
    durations = {128: [100.0] * 5, 256: [50.0] * 5, 512: [30.0] * 5}
    # WHEN analysed with the cost strategy
    result = tuning.analyze(durations, "cost")
    # THEN the tie goes to the faster one, as in the tool
    assert result.memory_mb == 256
    assert result.table.loc[result.table.memory_mb == 128, "average_cost_usd"].item() == pytest.approx(100 * 2.1e-9)


def test_speed_and_balanced_strategies():
    durations = {128: [400.0] * 5, 256: [190.0] * 5, 1024: [60.0] * 5, 3008: [55.0] * 5}
    assert tuning.analyze(durations, "speed").memory_mb == 3008
    # balanced with weight 1 is pure cost, weight 0 pure speed
    assert tuning.analyze(durations, "balanced", balanced_weight=1.0).memory_mb == tuning.analyze(durations, "cost").memory_mb
    assert tuning.analyze(durations, "balanced", balanced_weight=0.0).memory_mb == 3008
    # clamped like the tool: 7 -> 1
    assert tuning.analyze(durations, "balanced", balanced_weight=7).balanced_weight == 1.0


def test_values_without_durations_are_left_out_and_errors_reported():
    result = tuning.analyze({128: [], 256: [10, 11, 12, 13, 14]}, errors_by_memory={128: 5})
    assert result.memory_mb == 256
    row = result.table.set_index("memory_mb").loc[128]
    assert row["errors"] == 5 and row["invocations"] == 5


def test_no_data_at_all_is_a_clear_error():
    with pytest.raises(tuning.TuningError, match="no durations"):
        tuning.analyze({128: [], 256: []})


def test_request_charge_is_reported_beside_the_tools_cost():
    result = tuning.analyze({128: [10.0] * 5, 256: [5.0] * 5})
    row = result.table.iloc[0]
    assert row["cost_with_requests_usd"] == pytest.approx(row["average_cost_usd"] + 0.2e-6)
    assert {"p95_duration_ms", "errors", "request_cost_usd"} <= set(result.table.columns)


# A transcription of the documented algorithm in JavaScript, run with node, so the float
# arithmetic and the sort semantics are the reference's own (skipped without node).
_JS_ORACLE = r"""
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const trimmed = (ds, d) => { if (!ds.length) return 0; const k = parseInt(ds.length * d, 10);
  const n = ds.length - 2 * k; return ds.slice().sort((a, b) => a - b).slice(k, k > 0 ? -k : ds.length).reduce((a, b) => a + b, 0) / n; };
const price = (base, v, dur) => Math.ceil(dur) * base * (v / 128);
const stats = input.values.map(v => { const avg = trimmed(input.durations[String(v)], input.discard);
  return { power: v, duration: avg, cost: price(input.base, v, avg) }; }).filter(s => s.duration);
const w = input.weight;
let out;
if (input.strategy === 'cost') out = stats.sort((a, b) => a.cost === b.cost ? a.duration - b.duration : a.cost - b.cost)[0];
else if (input.strategy === 'speed') out = stats.sort((a, b) => a.duration === b.duration ? a.cost - b.cost : a.duration - b.duration)[0];
else { const mc = Math.max(...stats.map(x => x.cost)); const md = Math.max(...stats.map(x => x.duration));
  const val = x => w * x.cost / mc + (1 - w) * x.duration / md; out = stats.sort((a, b) => val(a) - val(b))[0]; }
process.stdout.write(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the JavaScript cross-check needs it")
@pytest.mark.parametrize("strategy, weight", [("cost", 0.5), ("speed", 0.5), ("balanced", 0.5), ("balanced", 0.2), ("balanced", 0.8)])
def test_same_choice_as_the_javascript_reference_on_random_durations(strategy, weight):
    rng = np.random.default_rng(42)
    values = [128, 256, 512, 1024, 1536, 3008]
    for trial in range(15):
        base = rng.uniform(20, 400)
        durations = {
            v: [float(round(max(1.0, rng.normal(base * 1769 / min(v, 1769) / 10 + 3, 4)), 2)) for _ in range(int(rng.integers(5, 30)))]
            for v in values
        }
        payload = {"values": values, "durations": {str(k): v for k, v in durations.items()}, "discard": 0.2,
                   "base": 2.1e-9, "strategy": strategy, "weight": weight}
        js = json.loads(subprocess.run(["node", "-e", _JS_ORACLE], input=json.dumps(payload), capture_output=True,
                                       text=True, check=True).stdout)
        ours = tuning.analyze(durations, strategy, weight, 0.2)
        assert ours.memory_mb == js["power"], (trial, durations)
        assert ours.average_duration_ms == js["duration"]
        assert ours.average_cost_usd == js["cost"]


def test_weighted_payloads_are_spread_like_the_tool():
    payloads = tuning.generate_payloads(10, [{"payload": "a", "weight": 3}, {"payload": "b", "weight": 7}])
    assert payloads == ["a"] * 3 + ["b"] * 7
    assert tuning.generate_payloads(3, {"x": 1}) == [{"x": 1}] * 3
    with pytest.raises(tuning.TuningError, match="increase num"):
        tuning.generate_payloads(1, [{"payload": "a", "weight": 1}, {"payload": "b", "weight": 1}])


# ---------------------------------------------------------------------------------------------
# The runner, against a fake invoker.
# ---------------------------------------------------------------------------------------------
class FakeInvoker:
    """A CPU-share model of a function: fixed 5 ms + 2,000 ms of CPU at one vCPU."""

    def __init__(self, fail_at: int | None = None, noise: float = 0.0, seed: int = 0, wait_ms: float = 0.0):
        self.wait_ms = wait_ms
        self.memory = None
        self.calls: list[tuple] = []
        self.cleaned = 0
        self.fail_at = fail_at
        self.rng = np.random.default_rng(seed)
        self.noise = noise

    def set_memory(self, memory_mb):
        self.memory = memory_mb
        self.calls.append(("set_memory", memory_mb))

    def invoke(self, payload):
        self.calls.append(("invoke", payload))
        if self.fail_at is not None and self.memory == self.fail_at:
            return InvocationResult(1.0, 1.0, None, 60.0, "Unhandled")
        duration = (5 + self.wait_ms + 200 * 1769 / min(self.memory, 1769)
                    + (self.rng.normal(0, self.noise) if self.noise else 0))
        return InvocationResult(duration, math.ceil(duration), None, 60.0, None)

    def cleanup(self):
        self.cleaned += 1


def test_runner_measures_every_value_and_always_cleans_up():
    invoker = FakeInvoker(fail_at=256)
    assert isinstance(invoker, tuning.Invoker)
    run = tuning.run_power_tuning(invoker, [128, 256, 512], num=5, payload={"k": 1})
    assert invoker.cleaned == 1
    assert len(run.invocations) == 15
    assert run.analysis.table.set_index("memory_mb").loc[256, "errors"] == 5
    assert run.memory_mb == 128  # cost: a fixed part makes the smallest CPU-bound size cheapest


def test_runner_cleans_up_when_an_invocation_raises():
    class Exploding(FakeInvoker):
        def invoke(self, payload):
            raise RuntimeError("boom")

    invoker = Exploding()
    with pytest.raises(RuntimeError, match="boom"):
        tuning.run_power_tuning(invoker, [128], num=2)
    assert invoker.cleaned == 1


def test_only_cold_starts_sets_memory_before_each_invocation_and_parallel_runs():
    invoker = FakeInvoker()
    tuning.run_power_tuning(invoker, [128, 256], num=3, only_cold_starts=True)
    assert [c[0] for c in invoker.calls].count("set_memory") == 6
    invoker = FakeInvoker()
    run = tuning.run_power_tuning(invoker, [128, 256], num=4, parallel=True)
    assert len(run.invocations) == 8


def test_runner_rejects_bad_parameters():
    with pytest.raises(tuning.TuningError, match="outside"):
        tuning.run_power_tuning(FakeInvoker(), [64], num=1)
    with pytest.raises(tuning.TuningError, match="num"):
        tuning.run_power_tuning(FakeInvoker(), [128], num=0)


# ---------------------------------------------------------------------------------------------
# The model and adaptive tuning.
# ---------------------------------------------------------------------------------------------
def test_model_recovers_a_cpu_share_curve_and_predicts_unmeasured_values():
    rng = np.random.default_rng(1)
    measured = {m: list(5 + 200 * 1769 / min(m, 1769) + rng.normal(0, 1, 10)) for m in (128, 512, 3008)}
    model = tuning.fit_duration_model(measured)
    assert model.cap_mb == 1769
    assert model.predict(1024) == pytest.approx(5 + 200 * 1769 / 1024, rel=0.02)
    low, high = model.interval([1024])
    assert low[0] < model.predict(1024) < high[0]
    rec = tuning.recommend_from_model(measured, [128, 256, 512, 1024, 1536, 3008], bootstrap=50)
    assert rec.memory_mb == 128 and 0 <= rec.confidence <= 1


def test_model_needs_two_values():
    with pytest.raises(tuning.TuningError, match="two memory values"):
        tuning.fit_duration_model({128: [1, 2, 3]})


def test_adaptive_tuning_agrees_with_a_full_sweep_using_fewer_invocations():
    values = [128, 256, 512, 1024, 1536, 3008]
    full = tuning.run_power_tuning(FakeInvoker(noise=3, seed=2), values, num=50)
    adaptive = tuning.adaptive_power_tuning(FakeInvoker(noise=3, seed=3), values)
    assert adaptive.memory_mb == full.memory_mb
    assert adaptive.invocations_used <= 100


# ---------------------------------------------------------------------------------------------
# Recommendations.
# ---------------------------------------------------------------------------------------------
def test_memory_from_usage_goes_above_1792_and_handles_out_of_memory():
    reports = pd.DataFrame({"max_memory_used_mb": [2500, 2600, 2700], "memory_size_mb": [3008] * 3,
                            "status": ["ok", "ok", "ok"]})
    rec = tuning.recommend_memory_from_usage(reports, headroom_pct=20)
    assert rec.memory_mb == 3264  # 2700 x 1.2 = 3240, rounded up to 64 MB
    oom = pd.DataFrame({"max_memory_used_mb": [128, 128], "memory_size_mb": [128, 128], "status": ["out_of_memory", "ok"]})
    assert tuning.recommend_memory_from_usage(oom).memory_mb >= 192
    with pytest.raises(tuning.TuningError, match="no REPORT"):
        tuning.recommend_memory_from_usage(pd.DataFrame({"max_memory_used_mb": []}))


def test_architecture_recommendation():
    rec = tuning.recommend_architecture([100] * 20, [105] * 20, 1024)
    assert rec.architecture == "arm64" and rec.arm64_cost_usd < rec.x86_cost_usd
    slow = tuning.recommend_architecture([100] * 20, [150] * 20, 1024)
    assert slow.architecture == "x86_64"


def test_timeout_recommendation_caps_by_trigger_and_keeps_visibility_6x():
    from infra import config

    settings = config.load("prod")
    # GIVEN enough durations for the bound: 3,000 API calls of 50 s would need far more than the 30 s limit
    api = tuning.recommend_timeout([50_000] * 3000, "api-processor", settings=settings)
    assert api.timeout_s == 30 and "30 s" in api.reason
    # AND 3,000 data-processor durations up to 400 s: capped by Lambda's 900 s, visibility kept at 6x
    data = tuning.recommend_timeout(list(np.linspace(1000, 400_000, 3000)), "data-processor", settings=settings)
    assert data.timeout_s <= 900 and data.status.value == "recommend"
    assert data.queue == "task_queue" and data.visibility_timeout_s == 6 * data.timeout_s
    # ten durations are too few for a p99.9 bound: the current timeout is kept, and the reason says how many more
    small = tuning.recommend_timeout([100] * 10, "data-processor", settings=settings)
    assert not small.changed and small.timeout_s == settings.function("data-processor").timeout_s
    assert small.status.value == "insufficient-data" and small.visibility_timeout_s is None
    assert "2,985 more invocations" in small.needed and "too few" in small.reason
    # no durations at all: insufficient-data too, never an exception
    empty = tuning.recommend_timeout([], "scheduler", settings=settings)
    assert empty.status.value == "insufficient-data" and not empty.changed


# ---------------------------------------------------------------------------------------------
# The params patch.
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def params_dir(tmp_path):
    for env in ("local", "dev", "prod"):
        shutil.copy(REPO / "params" / f"{env}.yaml", tmp_path / f"{env}.yaml")
    return tmp_path


def test_patch_edits_block_and_flow_styles_and_keeps_comments(params_dir):
    patch = tuning.params_patch(
        "prod", {"api-processor": {"memory_mb": 768}, "scheduler": {"timeout_s": 120}},
        {"task_queue": {"visibility_timeout_s": 2400}}, params_dir=params_dir,
    )
    assert "+    memory_mb: 768" in patch.diff
    assert patch.diff.startswith(f"--- a/{str(params_dir / 'prod.yaml').lstrip('/')}\n")   # as git names it, no a//
    assert "+  scheduler:\n+    timeout_s: 120" in patch.diff   # a new entry in its siblings' block style
    assert "# 6 x data-processor's 400 s" in patch.after
    assert patch.after.startswith("# Production")
    before = (params_dir / "prod.yaml").read_text()
    assert before == patch.before  # not applied until asked
    patch.apply()
    from infra import config

    settings = config.load("prod", params_dir)
    assert settings.function("api-processor").memory_mb == 768
    assert settings.function("scheduler").timeout_s == 120
    assert settings.params.task_queue.visibility_timeout_s == 2400


def test_patch_of_a_flow_mapping(params_dir):
    patch = tuning.params_patch("dev", {"api-processor": {"memory_mb": 640, "architecture": "arm64"}}, params_dir=params_dir)
    assert "+  api-processor: {timeout_s: 60, reserved_concurrency: 5, memory_mb: 640, architecture: arm64}" in patch.diff


def test_invalid_patch_is_refused_before_writing(params_dir):
    with pytest.raises(ParamsError, match="memory_mb"):
        tuning.params_patch("local", {"api-processor": {"memory_mb": 99_999}}, params_dir=params_dir)
    with pytest.raises(tuning.TuningError, match="patchable"):
        tuning.params_patch("local", {"api-processor": {"reserved_concurrency": 3}}, params_dir=params_dir)


def test_patch_refuses_a_file_changed_since(params_dir):
    patch = tuning.params_patch("local", {"scheduler": {"memory_mb": 256}}, params_dir=params_dir)
    (params_dir / "local.yaml").write_text(patch.before + "# edited\n")
    with pytest.raises(tuning.TuningError, match="changed since"):
        patch.apply()


# ---------------------------------------------------------------------------------------------
# The AWS invoker, against a stubbed Lambda client.
# ---------------------------------------------------------------------------------------------
class FakeLambda:
    """Records calls; answers like Lambda (enough for the invoker)."""

    class exceptions:
        class ResourceNotFoundException(Exception):
            pass

    def __init__(self, fail_invoke: bool = False):
        self.calls: list[tuple[str, dict]] = []
        self.version = 0
        self.aliases: dict[str, str] = {}
        self.fail_invoke = fail_invoke

    def _log(self, name, kwargs):
        self.calls.append((name, kwargs))

    def get_function_configuration(self, **kw):
        self._log("get_function_configuration", kw)
        return {"MemorySize": 512, "Description": "orig", "Architectures": ["arm64"]}

    def update_function_configuration(self, **kw):
        self._log("update_function_configuration", kw)
        return {}

    def get_waiter(self, name):
        assert name == "function_updated_v2"
        outer = self

        class W:
            def wait(self, **kw):
                outer._log("wait", kw)

        return W()

    def publish_version(self, **kw):
        self._log("publish_version", kw)
        self.version += 1
        return {"Version": str(self.version)}

    def update_alias(self, **kw):
        self._log("update_alias", kw)
        if kw["Name"] not in self.aliases:
            raise self.exceptions.ResourceNotFoundException()
        self.aliases[kw["Name"]] = kw["FunctionVersion"]

    def create_alias(self, **kw):
        self._log("create_alias", kw)
        self.aliases[kw["Name"]] = kw["FunctionVersion"]

    def invoke(self, **kw):
        self._log("invoke", kw)
        if self.fail_invoke:
            raise RuntimeError("network down")
        tail = ("START RequestId: r1 Version: 1\nEND RequestId: r1\n"
                "REPORT RequestId: r1\tDuration: 12.30 ms\tBilled Duration: 13 ms\tMemory Size: 256 MB\t"
                "Max Memory Used: 70 MB\tInit Duration: 150.00 ms\t\n")
        return {"StatusCode": 200, "LogResult": base64.b64encode(tail.encode()).decode()}

    def delete_alias(self, **kw):
        self._log("delete_alias", kw)

    def delete_function(self, **kw):
        self._log("delete_function", kw)


def test_aws_invoker_publishes_aliases_reads_the_tail_and_cleans_up():
    client = FakeLambda()
    invoker = tuning.AwsLambdaInvoker("fn", client=client)
    run = tuning.run_power_tuning(invoker, [256, 512], num=2)
    names = [c[0] for c in client.calls]
    assert names.count("publish_version") == 2
    invokes = [c[1] for c in client.calls if c[0] == "invoke"]
    assert {i["Qualifier"] for i in invokes} == {"RAM256", "RAM512"} and all(i["LogType"] == "Tail" for i in invokes)
    assert run.invocations["billed_duration_ms"].tolist() == [13.0] * 4
    assert run.invocations["init_duration_ms"].tolist() == [150.0] * 4
    deleted_aliases = {c[1]["Name"] for c in client.calls if c[0] == "delete_alias"}
    deleted_versions = {c[1]["Qualifier"] for c in client.calls if c[0] == "delete_function"}
    assert deleted_aliases == {"RAM256", "RAM512"} and deleted_versions == {"1", "2"}
    restore = [c[1] for c in client.calls if c[0] == "update_function_configuration"][-1]
    assert restore == {"FunctionName": "fn", "MemorySize": 512, "Description": "orig"}


def test_aws_invoker_cleans_up_on_failure():
    client = FakeLambda(fail_invoke=True)
    invoker = tuning.AwsLambdaInvoker("fn", client=client)
    with pytest.raises(RuntimeError, match="network down"):
        tuning.run_power_tuning(invoker, [256], num=1)
    names = [c[0] for c in client.calls]
    assert "delete_alias" in names and "delete_function" in names
    assert [c[1] for c in client.calls if c[0] == "update_function_configuration"][-1]["MemorySize"] == 512


# ---------------------------------------------------------------------------------------------
# The CLI.
# ---------------------------------------------------------------------------------------------
def test_tune_subcommand_is_registered():
    from workbook import cli

    parser = cli.build_parser()
    args = parser.parse_args(["tune", "--env", "prod", "--function", "api-processor", "--num", "3", "--strategy", "speed"])
    assert args.func is cli.cmd_tune and args.num == 3 and args.strategy == "speed"
    # no --payload: the function's own sample event is used, not an empty one
    assert parser.parse_args(["tune", "--env", "prod", "--function", "api-processor"]).payload is None


def test_tune_command_with_a_fake_invoker_shows_a_diff_and_applies_only_on_request(monkeypatch, params_dir, capsys):
    from infra import config
    from workbook.tuning import invokers

    monkeypatch.setenv("WORKBOOK_PARAMS_DIR", str(params_dir))
    # GIVEN a function with 300 ms of I/O wait: 128 MB is clearly cheaper than dev's 512 MB
    fake = FakeInvoker(noise=2, seed=4, wait_ms=300)
    monkeypatch.setattr(invokers, "make_invoker", lambda settings, key: fake)
    from workbook import cli

    assert cli.main(["tune", "--env", "dev", "--function", "scheduler", "--num", "10", "--power-values", "128,512"]) == 0
    # without --payload the scheduler's own sample event (an EventBridge scheduled event) was sent
    payloads = [call[1] for call in fake.calls if call[0] == "invoke"]
    assert len(payloads) == 20 and all(p["detail-type"] == "Scheduled Event" for p in payloads)
    out = capsys.readouterr().out
    assert "cost strategy chooses 128 MB" in out and "memory: recommend" in out and "+++ b/" in out
    assert "not applied" in out and "memory_mb: 128" not in (params_dir / "dev.yaml").read_text()
    assert cli.main(["tune", "--env", "dev", "--function", "scheduler", "--num", "10", "--power-values", "128,512",
                     "--apply"]) == 0
    assert config.load("dev", params_dir).function("scheduler").memory_mb == 128


def test_tune_command_makes_the_invoker_before_the_payloads(monkeypatch, params_dir, capsys):
    # On --env local the invoker starts or joins the local environment and points boto3 at it; the
    # file processor's probes are uploaded to S3 when the payloads are built, so they must come after
    # it (before, `workbook tune --env local --function file-processor` ended in NoCredentialsError).
    from infra import config
    from workbook import cli
    from workbook.tuning import invokers, payloads

    monkeypatch.setattr(config, "PARAMS_DIR", params_dir)
    order = []
    fake = FakeInvoker(noise=2, seed=4, wait_ms=300)

    def make_invoker(settings, key):
        order.append("invoker")
        return fake

    def tuning_payloads(settings, key):
        order.append("payloads")
        return {"detail-type": "Scheduled Event"}

    monkeypatch.setattr(invokers, "make_invoker", make_invoker)
    monkeypatch.setattr(payloads, "tuning_payloads", tuning_payloads)
    assert cli.main(["tune", "--env", "dev", "--function", "scheduler", "--num", "2", "--power-values", "128"]) == 0
    assert order == ["invoker", "payloads"]


def test_tune_command_keeps_the_memory_when_sizes_cost_the_same(monkeypatch, params_dir, capsys):
    from workbook.tuning import invokers

    monkeypatch.setenv("WORKBOOK_PARAMS_DIR", str(params_dir))
    # GIVEN pure CPU work: Lambda's pricing makes 128 MB and 512 MB cost the same within a few ms
    monkeypatch.setattr(invokers, "make_invoker", lambda settings, key: FakeInvoker(noise=3, seed=5))
    from workbook import cli

    assert cli.main(["tune", "--env", "dev", "--function", "scheduler", "--num", "10", "--power-values", "128,512"]) == 0
    out = capsys.readouterr().out
    # THEN the tool's choice is shown, but the memory is kept or left for more data: never a confident change
    assert "memory: recommend" not in out and "memory_mb: 128" not in (params_dir / "dev.yaml").read_text()


