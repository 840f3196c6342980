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
# # Summary
#
# The one-page view of this run: health, cost, and the top tuning recommendations. Each line links to its detail section.

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
from workbook.report import summary
from workbook.report.record import glue
from workbook.report.session import say, show

folder, which = summary.choose_run(env, run_folder)
view = summary.build(summary.collect(folder) if folder else {}, min_confidence=min_confidence)
if run_folder is None:
    say(which)
say(view.links(in_runbook=not interactive))
for problem in view.problems:
    say(f"**Parameter problem:** {problem}")

# %% [markdown]
# ## Headlines

# %%
say("\n".join(f"- {line}" for line in view.headlines) or "- Nothing was recorded: run the detail notebooks first (`workbook run`).")

# %% [markdown]
# ## Health per function
#
# Invocations, errors, throttles and tail latency over the window, with the cold-start rate.

# %%
show(view.health) if not view.health.empty else say("No metrics were recorded in this run.")

# %% [markdown]
# ## Cost

# %%
show(view.cost, 4) if not view.cost.empty else say("No cost was recorded in this run.")

# %% [markdown]
# ## Top recommendations
#
# Only changes the data supports: status `recommend` at or above the confidence threshold, none below its floor. The full reasoning, the tuning curves and the params patch are in the Tuning section.

# %%
show(view.recommendations) if not view.recommendations.empty else say("No change is recommended with enough confidence in this run.")

# %% [markdown]
# ## Needs more data
#
# What the data cannot settle yet, and what to collect to settle it.

# %%
show(view.needs_data) if not view.needs_data.empty else say("Nothing is waiting for more data.")

# %% [markdown]
# ## Compute Optimizer beside ours
#
# AWS's own memory advice next to ours, and why they differ (details in the Tuning section).

# %%
if view.compute_optimizer_note:
    say(view.compute_optimizer_note)
show(view.compute_optimizer) if not view.compute_optimizer.empty else say("No Compute Optimizer comparison in this run.")

# %%
glue("headlines", view.headlines)
glue("missing", view.missing)
