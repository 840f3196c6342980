"""Interactive tuning controls for JupyterLab, with a static fallback for reports.

``project(...)`` is the model behind the controls: the projected duration at a memory size (the
fitted power-tuning model where the function was tuned; otherwise Lambda's CPU share, which
grows with memory up to one vCPU at 1,769 MB, applied to the observed duration), the monthly
cost at the observed invocation rate, and the risks (memory headroom, timeout margin).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from infra import config, specs
from workbook.analysis.cost import monthly_cost
from workbook.deploy.result import deploy_or_plan
from workbook.report.session import say
from workbook.tuning.patch import params_patch


def project(settings: config.Settings, key: str, memory_mb: int, timeout_s: int, architecture: str,
            reports: pd.DataFrame, tuned: Any = None, window_hours: float | None = None) -> dict[str, Any]:
    """Projected duration, monthly cost and risks for function ``key`` at the given settings.

    The monthly cost is at the invocation rate over ``window_hours`` (the analysed window), else
    over the span of the function's rows.
    """
    current = settings.function(key)
    subset = reports[reports["function"] == key] if len(reports) else reports
    observed_ms = float(subset["duration_ms"].mean()) if len(subset) else float("nan")
    if tuned is not None and getattr(tuned, "model", None) is not None:
        duration_ms = float(max(tuned.model.model.predict(memory_mb), 1.0))
        basis = "fitted power-tuning model"
    elif not np.isnan(observed_ms):
        share_now = min(current.memory_mb, specs.MB_PER_VCPU) / specs.MB_PER_VCPU
        share_new = min(memory_mb, specs.MB_PER_VCPU) / specs.MB_PER_VCPU
        duration_ms = observed_ms * share_now / share_new
        basis = "CPU share from the observed duration (assumes CPU-bound work)"
    else:
        return {"function": key, "basis": "no data", "duration_ms": float("nan"), "monthly_usd": float("nan"),
                "memory_risk": "unknown", "timeout_risk": "unknown"}
    hours = window_hours or (max((subset["timestamp"].max() - subset["timestamp"].min()).total_seconds() / 3600,
                                 1 / 60) if len(subset) > 1 else 0.0)
    monthly_invocations = len(subset) / hours * 730 if hours else 0.0
    monthly = monthly_cost(monthly_invocations, duration_ms, memory_mb, architecture,
                                settings.params.aws_region, free_tier=False).total_usd
    peak_mb = float(subset["max_memory_used_mb"].max()) if len(subset) else float("nan")
    p999_ms = float(subset["duration_ms"].quantile(0.999)) * duration_ms / observed_ms if len(subset) else float("nan")
    memory_risk = ("out of memory likely" if peak_mb >= memory_mb else
                   "low headroom" if peak_mb > 0.8 * memory_mb else "ok")
    timeout_risk = ("timeouts likely" if p999_ms >= timeout_s * 1000 else
                    "tight" if p999_ms > 0.5 * timeout_s * 1000 else "ok")
    return {"function": key, "basis": basis, "duration_ms": round(duration_ms, 2),
            "monthly_usd": round(monthly, 4), "peak_memory_used_mb": peak_mb,
            "memory_risk": memory_risk, "p999_ms": round(p999_ms, 1), "timeout_risk": timeout_risk}


def controls(settings: config.Settings, tuned: Mapping[str, Any], reports: pd.DataFrame, recs: Any,
             interactive: bool = True, window_hours: float | None = None) -> None:
    """Widgets per function in JupyterLab; in a report (``interactive=False``), the static recommendation."""
    if not interactive:
        lines = ["| function | memory | timeout | architecture | projected duration | projected monthly cost | risks |",
                 "|---|---|---|---|---|---|---|"]
        for key in sorted(set(recs.table["function"])) if len(recs.table) else []:
            change = recs.functions.get(key, {})
            fn = settings.function(key)
            memory, timeout = change.get("memory_mb", fn.memory_mb), change.get("timeout_s", fn.timeout_s)
            arch = change.get("architecture", fn.architecture)
            p = project(settings, key, memory, timeout, arch, reports, tuned.get(key), window_hours)
            lines.append(f"| {key} | {memory} MB | {timeout} s | {arch} | {p['duration_ms']} ms | "
                         f"${p['monthly_usd']} | memory {p['memory_risk']}, timeout {p['timeout_risk']} |")
        say("Recommended settings, projected (static view; the controls need JupyterLab):\n\n" + "\n".join(lines))
        return None
    keys = [k for k in specs.FUNCTION_KEYS if k in set(recs.table["function"])] or list(specs.FUNCTION_KEYS)
    function = widgets.Dropdown(options=keys, description="function")
    memory = widgets.IntSlider(min=128, max=10240, step=64, description="memory MB", continuous_update=False)
    timeout = widgets.IntSlider(min=1, max=900, description="timeout s", continuous_update=False)
    arch = widgets.ToggleButtons(options=["x86_64", "arm64"], description="arch")
    apply = widgets.Button(description="Apply", button_style="warning", tooltip="write the params patch and preview")
    out = widgets.Output()

    def load(*_: Any) -> None:
        fn = settings.function(function.value)
        change = recs.functions.get(function.value, {})
        memory.value = change.get("memory_mb", fn.memory_mb)
        timeout.value = change.get("timeout_s", fn.timeout_s)
        arch.value = change.get("architecture", fn.architecture)
        refresh()

    def refresh(*_: Any) -> None:
        out.clear_output()
        with out:
            display(pd.DataFrame([project(settings, function.value, memory.value, timeout.value, arch.value,
                                          reports, tuned.get(function.value), window_hours)]))

    def on_apply(_: Any) -> None:
        with out:
            patch = params_patch(settings.env, functions={function.value: {
                "memory_mb": memory.value, "timeout_s": timeout.value, "architecture": arch.value}})
            if patch.empty:
                display(Markdown("Nothing to change."))
                return
            patch.apply()
            display(Markdown(f"Applied to `params/{settings.env}.yaml`:\n\n```diff\n{patch.diff}```"))
            display(deploy_or_plan(settings.env, "preview"))

    function.observe(load, "value")
    for control in (memory, timeout, arch):
        control.observe(refresh, "value")
    apply.on_click(on_apply)
    load()
    display(widgets.VBox([function, memory, timeout, arch, apply, out]))
    return None
