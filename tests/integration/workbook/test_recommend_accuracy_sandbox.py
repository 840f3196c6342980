"""The accuracy benchmark end to end in the sandbox: one profile, tiny budgets (its machinery, not its figures)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench" / "recommend_accuracy.py"


def test_one_profile_measured_in_the_sandbox_and_scored():
    spec = importlib.util.spec_from_file_location("recommend_accuracy_bench_it", BENCH)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    try:
        spec.loader.exec_module(bench)
        profile = next(p for p in bench.PROFILES if p.module == "cpu_io")
        # GIVEN the CPU + I/O wait profile at three sizes, 24 invocations each (12 for the truth, 12 held out)
        result = bench.run([profile], truth_n=12, pool_n=12, repeats=1, strategies=["cost"], current_mb=1024,
                           values=(128, 512, 1024), progress=lambda line: None)
        truth = result["truths"][profile.name]
        # THEN the truth was measured at every size, and both methods were scored at the three budgets
        assert list(truth.table["memory_mb"]) == [128, 512, 1024] and truth.table["eligible"].all()
        assert truth.optimum["cost"] in (128, 512)          # the wait makes small sizes cheap; 1,024 MB is not
        summary = result["summary"]
        assert sorted(summary["budget"].unique()) == [30, 60, 100]
        assert set(summary["method"]) == {"adaptive", "power-tuning"}
        assert (summary[summary["method"] == "adaptive"]["bad_recommends"] == 0).all()
    finally:
        sys.modules.pop(spec.name, None)
