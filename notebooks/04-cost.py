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
# # Cost
#
# What the window's invocations cost, per function and charge type (requests, duration, billed INIT, ephemeral storage, provisioned concurrency), projected to a month. Prices come from the dated table shipped with the workbook; Cost Explorer's actual cost is shown beside the model where the account allows it.

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
from workbook.report.session import say, show, show_by_concern

session = open_session(env, since, functions, run_folder)
say(session.describe())
from workbook.analysis import cost
from workbook.report import charts
from workbook.report.window import load_window, window_cost

# %%
window = load_window(session.settings, session.start, session.end, keys=session.functions)
say(window.sentence())
if window.reports is not None and window.reports.attrs.get("tuning_rows"):
    say(f"Power tuning's {window.reports.attrs['tuning_rows']:,} invocations (on its own versions) are left out: "
        "only the traffic counts here.")
settings = session.settings
costs = window_cost(
    window, region=session.region,
    architecture={k: settings.function(k).architecture for k in session.functions},
    ephemeral_storage_mb={k: settings.function(k).ephemeral_storage_mb for k in session.functions},
    provisioned={k: pc.min_capacity for k in session.functions
                 if (pc := settings.function(k).provisioned_concurrency) is not None},
    period=(session.start, session.end))
show_by_concern(costs, "cost", ["function"], digits=6)

# %% [markdown]
# ## By charge type

# %%
display(charts.cost_by_function(costs, projection=True, title="Monthly projection per function by charge"))

# %% [markdown]
# ## Modelled and actual

# %%
total = float(costs["total_usd"].sum()) if len(costs) else 0.0
monthly = float(costs["monthly_projection_usd"].sum()) if len(costs) else 0.0
if session.local:
    source = "model only (the local endpoint has no Cost Explorer)"
    say(f"The window cost **${total:.6f}**; projected to a month, **${monthly:,.2f}**. "
        "This is the model alone: the local endpoint has no Cost Explorer.")
else:
    source = "model"
    try:
        actual = cost.actual_cost(settings, session.start, session.end)
        source = "model, with Cost Explorer's actual cost beside it"
        show(actual, 4)
    except cost.CostError as exc:
        say(f"Cost Explorer is not available here ({exc}); the model stands alone.")
    say(f"Modelled: **${total:.4f}** in the window, **${monthly:,.2f}** projected to a month.")

# %%
glue("cost", costs[["function", "total_usd", "monthly_projection_usd"]].to_dict(orient="records") if len(costs) else [])
glue("cost_total_usd", total)
glue("cost_monthly_usd", monthly)
glue("cost_source", source)
