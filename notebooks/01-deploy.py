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
# # Deploy
#
# Preview (or plan) the environment's stacks, list what they hold and what they export, and show what changed since the last run. Deploys go through Pulumi's Automation API when the Pulumi CLI is installed; without it, this notebook shows the offline plan and says so.

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
from workbook.report.session import open as open_session, say, show

session = open_session(env, since, functions, run_folder)
say(session.describe())
from workbook import deploy

# %% [markdown]
# ## Preview

# %%
result = deploy.deploy_or_plan(env, operation="preview")
say(result.message)
show(result.summary.groupby(["stack", "operation"])["count"].sum().rename("resources").reset_index())

# %% [markdown]
# ## Stack outputs
#
# Secret outputs show as `[secret]`.

# %%
show(deploy.diff_outputs({}, result.outputs).drop(columns=["change", "previous"]).rename(columns={"current": "value"}))

# %% [markdown]
# ## Resource inventory
#
# Resources by stack and type.

# %%
inventory = result.resources.groupby(["stack", "type"]).size().rename("count").reset_index()
show(inventory)

# %% [markdown]
# ## Differences from the last run

# %%
comparison = deploy.compare_with_last_run(result, run_folder)
say(comparison.message)
if len(comparison.resources):
    show(comparison.resources)
if len(comparison.outputs):
    show(comparison.outputs)

# %%
glue("deploy_mode", result.mode.value)
glue("deploy_message", result.message)
glue("resource_count", int(len(result.resources)))
glue("resource_changes", {str(k): int(v) for k, v in result.summary.groupby("operation")["count"].sum().items()})
