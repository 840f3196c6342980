# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Tuning
#
# Memory, timeout and architecture recommendations, each with a status: **recommend**, **keep** or **insufficient-data** (with what would settle it), its confidence, the number of samples, and the floor that bounds it. Only `recommend` rows at or above `min_confidence` (default 0.8) become a patch to `params/<env>.yaml`, shown as a diff; it is applied only when `apply_patch` is set, and deploys then go through Pulumi as usual.
#
# - **Memory** comes from power tuning, measured at the current size too. A change is recommended only when it beats the current size by more than 2% in at least 95% of bootstrap resamples; when the sizes are within the noise the answer is *keep*. It never drops below the floor: the peak Max Memory Used (in the window, and on the worst input the function accepts) plus 30% headroom. The worst inputs are probes at the limits each handler enforces (`handlers/common/limits.py`: pixels and channels, PDF pages and size, JSON and CSV sizes, message and body sizes), measured once each at the largest size before any smaller size is tried.
# - **Timeout** is a distribution-free bound, not a point estimate: the smallest order statistic that bounds the p99.9 duration with 95% confidence (the *k*-th smallest of *n*, with *k* the smallest rank such that P(Binomial(*n*, 0.999) ≤ *k* − 1) ≥ 0.95), plus 50% headroom. It exists only from 2,995 invocations; with fewer the row says *insufficient-data* and how many more are needed, and shows a provisional figure from the 95% bound on the p99 with 100% headroom, which is never recommended. The timeout never goes below the floor (the longest retry budget of the function's own downstream calls plus its safety margin; for queue consumers, the batch size times the per-record p99 plus the batching window; the slowest worst-case input at the recommended size) nor above the trigger's ceiling (30 s behind the HTTP API).

# %% tags=["parameters"]
# Parameters (Papermill replaces these; the defaults suit an interactive session on --env local).
# None means "the workbook's default" (workbook.tuning.defaults, params/<env>.yaml).
env = "local"
region = None                # None: the aws_region of params/<env>.yaml
since = "1h"                 # time range: 90m, 24h, 7d
functions = None             # None: all six; or a list of function keys
run_folder = None            # set by `workbook run`; None in JupyterLab
power_values = None          # memory sizes power tuning measures, in MB
num_invocations = None       # per power value; adaptive tuning stops earlier when confident
strategy = None              # cost | speed | balanced
balanced_weight = None
discard_top_bottom = None
tune_functions = None        # power-tuned in 05-tuning (each costs invocations); None: file-processor
min_confidence = None        # recommend rows below it are not recommended; None: 0.8
apply_patch = False          # write the params patch to params/<env>.yaml
interactive = True           # ipywidgets controls in JupyterLab; reports print the static view

# %%
from IPython.display import display

from workbook.report.record import glue
from workbook.report.session import open as open_session
from workbook.report.session import say, show

session = open_session(env, since, functions, run_folder)
say(session.describe())
from workbook.report import charts, progress
from workbook.report.window import load_window, window_backtest
from workbook.tuning import compute_optimizer, recommend

# %% [markdown]
# ## Power tuning

# %%
tuned = {}
for key in recommend.functions_to_tune(tune_functions):
    bar = progress.tracker(f"Power tuning {key}", interactive)
    result = recommend.power_tune(session.settings, key, power_values, num_invocations, strategy=strategy,
                                  balanced_weight=balanced_weight, discard_top_bottom=discard_top_bottom, progress=bar)
    bar.finish(result.invocations_used)
    tuned[key] = result
    decision = result.decision
    say(f"**{key}**: {decision.status.value} — best eligible size {decision.choice_mb} MB "
        f"({result.analysis.strategy}), confidence {decision.confidence:.0%}, {result.invocations_used} invocations; "
        f"memory floor {decision.floor.describe('MB')}. {decision.reason}.")
    display(charts.power_tuning_curve(result.analysis, predicted=result.model.predicted if result.model else None,
                                      title=f"{key}: duration and cost by memory"))
    show(decision.estimates, 6)

# %% [markdown]
# ## Worst-case inputs
#
# Each function's memory floor comes from the largest peak among its worst-case probes (`workbook.tuning.probes`), measured once each at the largest size first, then again at the recommended size. The row marked `sets_floor` is the input that sets it.

# %%
worst_cases = recommend.worst_case_table(tuned)
for key, probe in recommend.floor_probes(tuned).items():
    if probe["probe"]:
        say(f"**{key}**: the floor is set by **{probe['probe']}** ({probe['description']}): peak "
            f"**{probe['peak_mb']:,.0f} MB** at {probe['memory_mb']:,} MB; floor {probe['floor']}.")
    else:
        say(f"**{key}**: no worst-case probe sets the floor ({probe['floor'] or 'no floor measured'}).")
show(worst_cases, 1)

# %% [markdown]
# ## Memory headroom
#
# The window's traffic is read on the route its Invocations metric calls for (said below). Power tuning's own invocations, on their own versions, are left out of everything below. The recommendations, the backtest and the projections take the window on either route: on the aggregate route the memory floor (peak and out-of-memory sizes), the counts and the timeout bound (the longest successful durations, fetched by rank) are exact; the chart of Max Memory Used needs single invocations and draws, there, from a drill-down sample of the window's last minutes.

# %%
window = load_window(session.settings, session.start, session.end, keys=session.functions)
say(window.sentence())
say(window.describe())
sample = window.sample(session.settings, session.functions)
say(window.sample_sentence(sample))
display(charts.memory_headroom(sample, configured={k: session.settings.function(k).memory_mb for k in session.functions}))

# %% [markdown]
# ## Recommendations

# %%
recs = recommend.recommend(session.settings, window.data, session.functions, tuned, window_hours=session.window_hours,
                           min_confidence=min_confidence)
for problem in recs.problems:
    say(f"**Parameter problem:** {problem}")
show(recs.table)

# %% [markdown]
# ## Compute Optimizer beside ours
#
# AWS Compute Optimizer's memory advice (`GetLambdaFunctionRecommendations`) next to the memory rows above. It advises memory only, only up to 1,792 MB, and only after 50 invocations in its 14-day lookback, from CloudWatch metrics: no payload classes, no worst-case input, no timeout, no architecture.

# %%
co_advice = compute_optimizer.load_advice(session.settings, session.functions)
co_beside = compute_optimizer.beside_ours(co_advice, recs.table, session.settings, session.functions)
if co_advice.attrs.get("note"):
    say(co_advice.attrs["note"])
show(co_beside)

# %% [markdown]
# ## Timeout backtest
#
# Each function's invocations in the window are split in two halves by time (at the moment half of them had happened). The timeout rule runs on the first half alone, and every invocation of the second half that ran longer than the timeout it gives is counted as cut. Where the first half is too thin for the rule, the timeout stays the current one. *Bound alone* and *Cut by the bound alone* test the bound alone, without the floors (which usually dominate here). The target is 0 cut.

# %%
timeouts = window_backtest(window, session.settings, session.functions)
if timeouts.attrs.get("split_at"):
    say("Aggregate route: each function's halves meet on the 5-minute bin boundary nearest its midpoint (within half "
        "a bin's invocations of it); the first half's longest durations and the second half's count of invocations "
        "above each timeout come from Logs Insights, exact for that split.")
show(timeouts, 1)
say(f"Cut in the second half: **{int(timeouts['cut'].sum()) if len(timeouts) else 0}** invocation(s).")

# %% [markdown]
# ## The params patch

# %%
patch = recs.patch(env)
if patch.empty:
    say("No change to propose: the current params hold.")
else:
    import html

    from IPython.display import HTML

    say(f"Proposed change to `params/{env}.yaml`:")
    display(HTML(f'<pre style="font-family: monospace">{html.escape(patch.diff)}</pre>'))
    if apply_patch:
        patch.apply()
        say(f"Applied to `params/{env}.yaml`. Preview it with `workbook preview --env {env}`.")
    else:
        say("Not applied (set `apply_patch = True`, or use the controls below in JupyterLab).")

# %% [markdown]
# ## Try other settings
#
# In JupyterLab, the controls below project duration, cost and risk from the measured model as you move them, at the traffic's invocation rate. A choice the params schema rejects (a timeout the queue's visibility timeout forbids, say) is flagged with the schema's message and *Apply* is disabled. *Apply* writes the patch to `params/<env>.yaml` (or `$WORKBOOK_PARAMS_DIR`) and shows what it would change, property by property: the offline plan of the patched params against the current plan, or the real preview where the Pulumi CLI is installed. The confirmation stays until the next *Apply*. Durations are measured on the function's current architecture; a projection on the other one says it assumes that speed. On the aggregate route the projected p99.9 is Logs Insights' own for a function that ran one traffic version in the window, else merged across its versions (an estimate between the versions' own); the rate, the mean duration and the peak are exact. In a report the cell prints the static recommendation.

# %%
from workbook.report import interactive as controls

panel = controls.controls(session.settings, tuned, window.data, recs, interactive=interactive,
                          window_hours=session.window_hours)

# %%
glue("recommendations", recs.table.to_dict(orient="records"))
glue("compute_optimizer", {"note": co_advice.attrs.get("note", ""), "beside": co_beside.to_dict(orient="records")})
glue("params_patch", patch.diff)
glue("timeout_backtest", timeouts.to_dict(orient="records"))
glue("route", window.route.value)
glue("tuned", {k: {"memory_mb": t.memory_mb, "status": t.status, "invocations": t.invocations_used,
                   "confidence": t.confidence} for k, t in tuned.items()})
glue("worst_case", {"floor_probes": recommend.floor_probes(tuned),
                    "probes": worst_cases.to_dict(orient="records")})
