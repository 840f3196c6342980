"""Interactive tuning controls for JupyterLab, with a static fallback for reports.

``project(...)`` is the model behind the controls: the projected duration at a memory size (the
fitted power-tuning model where the function was tuned; otherwise Lambda's CPU share, which
grows with memory up to one vCPU at 1,769 MB, applied to the observed duration), the monthly
cost at the observed invocation rate (the traffic's: power tuning's own invocations are never
counted), and the risks (memory headroom, timeout margin). Durations are measured on the
function's current architecture; a projection on the other one says it assumes that speed.

``candidate(...)`` checks a choice against the params schema before anything is written: the
controls show the schema's one-line message and disable *Apply* while it stands. ``plan_changes``
is the preview of a patch: the offline plan of the patched params diffed against the current
plan, property by property (``memorySize 2048 → 512``).
"""
from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
from IPython.display import HTML, Markdown, display
from ruamel.yaml import YAML

from infra import config, specs
from workbook.analysis.cost import monthly_cost
from workbook.deploy.plan import Plan, offline_plan
from workbook.deploy.result import deploy_or_plan
from workbook.deploy.stacks import cli_available
from workbook.errors import WorkbookError
from workbook.report.session import say
from workbook.telemetry.aggregate import Aggregates
from workbook.tuning.observed import observe
from workbook.tuning.patch import ParamsPatch, display_path, params_patch

ARCHITECTURES = ("x86_64", "arm64")
CHANGE_COLUMNS = ["resource", "type", "property", "before", "after"]


def project(settings: config.Settings, key: str, memory_mb: int, timeout_s: int, architecture: str,
            reports: pd.DataFrame | Aggregates, tuned: Any = None, window_hours: float | None = None) -> dict[str, Any]:
    """Projected duration, monthly cost and risks for function ``key`` at the given settings.

    ``reports`` is the window on either route: REPORT rows or the aggregate route's ``Aggregates``
    (``workbook.tuning.observed``: the same projection, its p99.9 merged where the function ran
    several traffic versions). The monthly cost is at the invocation rate over ``window_hours`` (the
    analysed window), else over the span of the function's rows. ``speed`` says which architecture's
    speed the duration rests on: measured on the current one; on the other, assumed equal and said so.
    """
    current = settings.function(key)
    seen = observe(reports, key)
    observed_ms = seen.mean_duration_ms
    if tuned is not None and getattr(tuned, "model", None) is not None:
        duration_ms = float(max(tuned.model.model.predict(memory_mb), 1.0))
        basis = "fitted power-tuning model"
    elif not np.isnan(observed_ms):
        share_now = min(current.memory_mb, specs.MB_PER_VCPU) / specs.MB_PER_VCPU
        share_new = min(memory_mb, specs.MB_PER_VCPU) / specs.MB_PER_VCPU
        duration_ms = observed_ms * share_now / share_new
        basis = "CPU share from the observed duration (assumes CPU-bound work)"
    else:
        return {"function": key, "basis": "no data", "speed": "", "duration_ms": float("nan"),
                "monthly_usd": float("nan"), "memory_risk": "unknown", "timeout_risk": "unknown"}
    speed = (f"measured on {current.architecture}" if architecture == current.architecture else
             f"assumes {current.architecture} speed: {architecture} not measured")
    hours = window_hours or seen.span_hours
    monthly_invocations = seen.invocations / hours * 730 if hours else 0.0
    monthly = monthly_cost(monthly_invocations, duration_ms, memory_mb, architecture,
                           settings.params.aws_region, free_tier=False).total_usd
    peak_mb = float("nan") if seen.peak_memory_mb is None else seen.peak_memory_mb
    p999_ms = seen.p999_ms * duration_ms / observed_ms if not seen.empty else float("nan")
    memory_risk = ("unknown: no traffic in the window" if np.isnan(peak_mb) else
                   "out of memory likely" if peak_mb >= memory_mb else
                   "low headroom" if peak_mb > 0.8 * memory_mb else "ok")
    timeout_risk = ("unknown: no traffic in the window" if np.isnan(p999_ms) else
                    "timeouts likely" if p999_ms >= timeout_s * 1000 else
                    "tight" if p999_ms > 0.5 * timeout_s * 1000 else "ok")
    return {"function": key, "basis": basis, "speed": speed, "duration_ms": round(duration_ms, 2),
            "monthly_invocations": round(monthly_invocations), "monthly_usd": round(monthly, 4),
            "peak_memory_used_mb": peak_mb, "memory_risk": memory_risk, "p999_ms": round(p999_ms, 1),
            "timeout_risk": timeout_risk}


PROJECTION_LABELS = {
    "duration_ms": "duration (ms)", "basis": "duration from", "speed": "speed", "monthly_invocations":
    "invocations a month (the traffic's rate)", "monthly_usd": "cost a month (USD)", "peak_memory_used_mb":
    "peak Max Memory Used (MB)", "memory_risk": "memory risk", "p999_ms": "p99.9 duration (ms)",
    "timeout_risk": "timeout risk", "params": "params schema",
}


def projection_table(row: Mapping[str, Any]) -> Any:
    """One projection as a two-column table a reader scans down (numbers rounded, missing as a dash)."""
    def text(value: Any) -> str:
        if isinstance(value, float):
            return "—" if np.isnan(value) else f"{value:,.4f}" if abs(value) < 1 else f"{value:,.1f}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    frame = pd.DataFrame([{"projection": label, "value": text(row[name])}
                          for name, label in PROJECTION_LABELS.items() if name in row])
    return frame.style.hide(axis="index").set_properties(**{"text-align": "left"})


@dataclass
class Candidate:
    """A choice from the controls: its patch when params accept it, else the schema's one-line message."""

    changes: dict[str, Any]
    patch: ParamsPatch | None = None
    problem: str | None = None

    @property
    def valid(self) -> bool:
        return self.problem is None


def candidate(settings: config.Settings, key: str, memory_mb: int, timeout_s: int, architecture: str) -> Candidate:
    """The params patch for these settings of ``key`` (only what differs from params), checked by the schema."""
    current = settings.function(key)
    wanted = {"memory_mb": int(memory_mb), "timeout_s": int(timeout_s), "architecture": architecture}
    changes = {name: value for name, value in wanted.items() if getattr(current, name) != value}
    if not changes:
        return Candidate({})
    try:
        return Candidate(changes, params_patch(settings.env, functions={key: changes}))
    except (config.ParamsError, WorkbookError) as exc:
        return Candidate(changes, problem=str(exc).strip().splitlines()[0])


def settings_after(patch: ParamsPatch) -> config.Settings:
    """The settings the patched params file would give."""
    return config.from_mapping(YAML(typ="safe").load(patch.after), source=f"{display_path(patch.path)} (patched)")


def plan_changes(before: Plan, after: Plan) -> pd.DataFrame:
    """Every input that differs between two plans, property by property (nested inputs as dotted paths)."""
    old = {(r.get("stack"), r["type"], r["name"]): r.get("inputs") or {} for r in before.resources}
    new = {(r.get("stack"), r["type"], r["name"]): r.get("inputs") or {} for r in after.resources}
    rows = []
    for key in sorted(set(old) | set(new), key=lambda k: tuple(str(p) for p in k)):
        _, type_token, name = key
        if key not in old or key not in new:
            rows.append({"resource": name, "type": type_token, "property": "(resource)",
                         "before": "absent" if key not in old else "present",
                         "after": "absent" if key not in new else "present"})
            continue
        for path, was, now in _differences(old[key], new[key]):
            rows.append({"resource": name, "type": type_token, "property": path, "before": was, "after": now})
    return pd.DataFrame(rows, columns=CHANGE_COLUMNS)


def _differences(old: Any, new: Any, path: str = "") -> list[tuple[str, str, str]]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        found = []
        for name in sorted(set(old) | set(new)):
            found += _differences(old.get(name), new.get(name), f"{path}.{name}" if path else str(name))
        return found
    if _text(old) == _text(new):
        return []
    return [(path, _text(old), _text(new))]


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def preview(settings: config.Settings, patch: ParamsPatch) -> tuple[str, pd.DataFrame]:
    """What the patch would change: the real preview where the Pulumi CLI exists, else the plans diffed."""
    new_settings = settings_after(patch)
    if cli_available():
        result = deploy_or_plan(new_settings, "preview")
        return result.message, result.resources
    changes = plan_changes(offline_plan(settings.env, settings), offline_plan(new_settings.env, new_settings))
    sentence = (f"{len(changes)} propert{'y' if len(changes) == 1 else 'ies'} would change, from the offline plan "
                f"of the patched params diffed against the current plan (the Pulumi CLI is not installed, so "
                f"this is not a preview against deployed state).")
    return sentence, changes


def static_view(settings: config.Settings, tuned: Mapping[str, Any], reports: pd.DataFrame, recs: Any,
                window_hours: float | None = None) -> None:
    """The recommended settings, projected: what a report shows in place of the controls."""
    lines = ["| Function | Memory | Timeout | Architecture | Projected duration | Projected monthly cost | Risks |",
             "|---|---|---|---|---|---|---|"]
    for key in sorted(set(recs.table["function"])) if len(recs.table) else []:
        change = recs.functions.get(key, {})
        fn = settings.function(key)
        memory, timeout = change.get("memory_mb", fn.memory_mb), change.get("timeout_s", fn.timeout_s)
        arch = change.get("architecture", fn.architecture)
        p = project(settings, key, memory, timeout, arch, reports, tuned.get(key), window_hours)
        speed = f" ({p['speed']})" if arch != fn.architecture else ""
        lines.append(f"| {key} | {memory} MB | {timeout} s | {arch} | {p['duration_ms']} ms{speed} | "
                     f"${p['monthly_usd']} | memory {p['memory_risk']}, timeout {p['timeout_risk']} |")
    say("Recommended settings, projected (static view; the controls need JupyterLab):\n\n" + "\n".join(lines))


class Controls:
    """The widgets of one tuning session: choose, see the projection and the schema's verdict, Apply.

    The projection refreshes as a control moves; the confirmation, the diff and the preview of the
    last Apply stay where they are until the next Apply.
    """

    def __init__(self, settings: config.Settings, tuned: Mapping[str, Any], reports: pd.DataFrame, recs: Any,
                 window_hours: float | None = None) -> None:
        self.settings, self.tuned, self.reports, self.recs = settings, tuned, reports, recs
        self.window_hours = window_hours
        keys = [k for k in specs.FUNCTION_KEYS if len(recs.table) and k in set(recs.table["function"])]
        self.function = widgets.Dropdown(options=keys or list(specs.FUNCTION_KEYS), description="function")
        self.memory = widgets.IntSlider(min=specs.MEMORY_MIN_MB, max=specs.MEMORY_MAX_MB, step=64,
                                        description="memory MB", continuous_update=False)
        self.timeout = widgets.IntSlider(min=1, max=specs.TIMEOUT_MAX_S, description="timeout s",
                                         continuous_update=False)
        self.arch = widgets.ToggleButtons(options=list(ARCHITECTURES), description="arch")
        self.verdict = widgets.HTML()
        self.apply = widgets.Button(description="Apply", button_style="warning",
                                    tooltip="write the params patch and show what it would change")
        self.projection = widgets.Output()
        self.result = widgets.Output()
        self.current: Candidate = Candidate({})
        self.applied: str | None = None    # the last Apply's confirmation (its diff is under it, in ``result``)
        for widget, name in ((self.function, "function"), (self.memory, "memory"), (self.timeout, "timeout"),
                             (self.arch, "arch"), (self.apply, "apply"), (self.projection, "projection"),
                             (self.result, "result")):
            widget.add_class(f"lwb-{name}")   # stable handles for a reader's stylesheet and the browser test
        self.function.observe(self.load, "value")
        for control in (self.memory, self.timeout, self.arch):
            control.observe(self.refresh, "value")
        self.apply.on_click(self.on_apply)
        self._loading = False
        self.load()

    @property
    def view(self) -> widgets.VBox:
        box = widgets.VBox([self.function, self.memory, self.timeout, self.arch, self.verdict, self.projection,
                            self.apply, self.result])
        box.add_class("lwb-controls")
        return box

    def load(self, *_: Any) -> None:
        """Set the controls to the function's recommendation (else its current settings)."""
        fn = self.settings.function(self.function.value)
        change = self.recs.functions.get(self.function.value, {})
        self._loading = True
        try:
            self.memory.value = change.get("memory_mb", fn.memory_mb)
            self.timeout.value = change.get("timeout_s", fn.timeout_s)
            self.arch.value = change.get("architecture", fn.architecture)
        finally:
            self._loading = False
        self.refresh()

    def refresh(self, *_: Any) -> None:
        """Check the choice against the schema and redraw the projection (the Apply result stays)."""
        if self._loading:
            return
        key = self.function.value
        self.current = candidate(self.settings, key, self.memory.value, self.timeout.value, self.arch.value)
        row = project(self.settings, key, self.memory.value, self.timeout.value, self.arch.value, self.reports,
                      self.tuned.get(key), self.window_hours)
        if self.current.valid:
            row["params"] = "ok" if self.current.changes else "no change"
            self.verdict.value = ""
            self.apply.disabled = not self.current.changes
        else:
            row["params"] = "rejected"
            self.verdict.value = (f'<div class="lwb-verdict" style="color:#B00020"><b>params would reject this:</b> '
                                  f"{html.escape(self.current.problem or '')}</div>")
            self.apply.disabled = True
        self.projection.clear_output(wait=True)
        with self.projection:
            display(projection_table(row))

    def on_apply(self, _: Any = None) -> None:
        """Write the patch, keep the confirmation, the diff and the preview until the next Apply."""
        self.result.clear_output(wait=True)
        with self.result:
            chosen = self.current
            if not chosen.valid or chosen.patch is None:
                display(Markdown(f"Nothing applied: {chosen.problem or 'no change from params'}."))
                return
            before = self.settings
            try:
                path = chosen.patch.apply()
                self.settings = config.load(before.env, path.parent)
            except (config.ParamsError, WorkbookError, OSError) as exc:
                display(Markdown(f"**Not applied:** {exc}"))
                return
            self.applied = (f"Applied to {display_path(path)} ({', '.join(f'{k} = {v}' for k, v in chosen.changes.items())}"
                            f" for {self.function.value})")
            display(HTML(f'<div class="lwb-applied"><b>{html.escape(self.applied)}:</b></div>'
                         f'<pre style="font-family: monospace">{html.escape(chosen.patch.diff)}</pre>'))
            try:
                sentence, changes = preview(before, chosen.patch)
            except (WorkbookError, config.ParamsError) as exc:
                display(Markdown(f"The preview failed: {exc}"))
                return
            display(Markdown(f"**What would change.** {sentence}"))
            display(changes.style.hide(axis="index") if len(changes) else Markdown("No resource input changes."))
        self.refresh()


def controls(settings: config.Settings, tuned: Mapping[str, Any], reports: pd.DataFrame, recs: Any,
             interactive: bool = True, window_hours: float | None = None) -> Controls | None:
    """Widgets per function in JupyterLab; in a report (``interactive=False``), the static recommendation."""
    if not interactive:
        static_view(settings, tuned, reports, recs, window_hours)
        return None
    made = Controls(settings, tuned, reports, recs, window_hours)
    display(made.view)
    return made
