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
# # Cold starts
#
# How often each function starts cold, how long INIT takes, and what INIT costs in latency and money. INIT has been billed for on-demand zip functions since 1 August 2025, so it is part of the cost share below. The figures come from the REPORT lines in each function's log group.

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
from workbook.analysis import coldstart
from workbook.report import charts
from workbook.telemetry import logs

# %%
reports = logs.load_for_env(session.settings, session.start, session.end, keys=session.functions)
say(logs.route_sentence(reports))
if reports.attrs.get("tuning_rows"):
    say(f"Power tuning's {reports.attrs['tuning_rows']:,} invocations (on its own versions) are left out: "
        "only the traffic counts here.")
malformed = reports.attrs.get("malformed", 0)
say(f"{len(reports):,} REPORT lines in the window" + (f"; {malformed} malformed line(s) skipped." if malformed else "."))

# %% [markdown]
# ## Rate and INIT duration per function

# %%
architectures = {key: session.settings.function(key).architecture for key in session.functions}
per_function = coldstart.summary(reports, "function", architecture=architectures)
show_by_concern(per_function, "cold_starts", ["function"])

# %% [markdown]
# ## By memory size and by hour

# %%
show_by_concern(coldstart.summary(reports, ["function", "memory_size_mb"], architecture=architectures), "cold_starts",
                ["function", "memory_size_mb"])
show_by_concern(coldstart.summary(reports, "hour", architecture=architectures), "cold_starts", ["hour"])

# %% [markdown]
# ## Timeline and INIT distribution

# %%
display(charts.cold_start_timeline(coldstart.timeline(reports, freq="1min"), window=(session.start, session.end), period_s=60))
display(charts.init_distribution(reports))

# %% [markdown]
# ## Provisioned concurrency
#
# Where an environment configures it (prod), invocations served by provisioned environments do not start cold.

# %%
provisioned = {key: pc.min_capacity for key in session.functions
               if (pc := session.settings.function(key).provisioned_concurrency) is not None}
if provisioned:
    show(coldstart.provisioned_concurrency_effect(reports, provisioned))
else:
    say(f"No function has provisioned concurrency in {session.env}.")

# %%
glue("cold_starts", per_function.to_dict(orient="records"))
glue("report_lines", int(len(reports)))
glue("malformed_lines", int(malformed))
