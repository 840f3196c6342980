# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Tuning
#
# Memory, timeout and architecture recommendations. Memory comes from power tuning (as aws-lambda-power-tuning measures it, plus a fitted duration model that needs fewer invocations) and never drops below the observed memory use plus headroom. The recommendations become a patch to `params/<env>.yaml`, shown as a diff; it is applied only when `apply_patch` is set, and deploys then go through Pulumi as usual.

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
apply_patch = False          # write the params patch to params/<env>.yaml
interactive = True           # ipywidgets controls in JupyterLab; reports print the static view

# %%
from IPython.display import display

from workbook.report.record import glue
from workbook.report.session import open as open_session
from workbook.report.session import say, show

session = open_session(env, since, functions, run_folder)
say(session.describe())
from workbook.report import charts
from workbook.telemetry import logs
from workbook.tuning import recommend

# %% [markdown]
# ## Power tuning

# %%
tuned = {}
for key in recommend.functions_to_tune(tune_functions):
    result = recommend.power_tune(session.settings, key, power_values, num_invocations, strategy=strategy,
                                  balanced_weight=balanced_weight, discard_top_bottom=discard_top_bottom)
    tuned[key] = result
    say(f"**{key}**: {result.memory_mb} MB ({result.analysis.strategy}), confidence {result.confidence:.0%}, "
        f"{result.invocations_used} invocations.")
    display(charts.power_tuning_curve(result.analysis, predicted=result.model.predicted if result.model else None,
                                      title=f"{key}: duration and cost by memory"))
    show(result.analysis.table, 6)

# %% [markdown]
# ## Memory headroom

# %%
reports = logs.load_for_env(session.settings, session.start, session.end, keys=session.functions)
display(charts.memory_headroom(reports))

# %% [markdown]
# ## Recommendations

# %%
recs = recommend.recommend(session.settings, reports, session.functions, tuned, window_hours=session.window_hours)
show(recs.table)

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
# In JupyterLab, the controls below project duration, cost and risk from the measured model as you move them, and *Apply* writes the patch and runs a preview. In a report they print the static recommendation.

# %%
from workbook.report import interactive as controls

controls.controls(session.settings, tuned, reports, recs, interactive=interactive, window_hours=session.window_hours)

# %%
glue("recommendations", recs.table.to_dict(orient="records"))
glue("params_patch", patch.diff)
glue("tuned", {k: {"memory_mb": t.memory_mb, "invocations": t.invocations_used, "confidence": t.confidence}
               for k, t in tuned.items()})
