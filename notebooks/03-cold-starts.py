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
# How often each function starts cold, how long INIT takes, and what INIT costs in latency and money. INIT has been billed for on-demand zip functions since 1 August 2025, so it is part of the cost share below. The figures come from the REPORT figures in each function's log group, on the route chosen from the window's Invocations metric before any log query (said below): every REPORT line pulled raw for a small window (always on `--env local`), or counted and summarised by Logs Insights where the logs live above the threshold, where an INIT percentile across 5-minute bins is an estimate and says so.

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
from workbook.analysis.aggregate import percentile_sentence
from workbook.report import charts
from workbook.report.window import load_window, window_coldstart, window_timeline

# %%
window = load_window(session.settings, session.start, session.end, keys=session.functions)
say(window.sentence())
say(window.describe())

# %% [markdown]
# ## Rate and INIT duration per function

# %%
architectures = {key: session.settings.function(key).architecture for key in session.functions}
per_function = window_coldstart(window, "function", architecture=architectures)
show_by_concern(per_function, "cold_starts", ["function"])
say(percentile_sentence(per_function))

# %% [markdown]
# ## By memory size and by hour

# %%
by_memory = window_coldstart(window, ["function", "memory_size_mb"], architecture=architectures)
show_by_concern(by_memory, "cold_starts", ["function", "memory_size_mb"])
say(percentile_sentence(by_memory))
show_by_concern(window_coldstart(window, "hour", architecture=architectures), "cold_starts", ["hour"])

# %% [markdown]
# ## Timeline and INIT distribution
#
# The timeline is drawn from the window on either route (1-minute buckets from the REPORT lines, or the aggregate route's 5-minute bins). The INIT distribution needs single invocations: on the aggregate route it comes from a drill-down sample of the window's last minutes, read raw.

# %%
timeline, period_s = window_timeline(window)
display(charts.cold_start_timeline(timeline, window=(session.start, session.end), period_s=period_s))
sample = window.sample(session.settings, session.functions)
say(window.sample_sentence(sample))
display(charts.init_distribution(sample))

# %% [markdown]
# ## Provisioned concurrency
#
# Where an environment configures it (prod), invocations served by provisioned environments do not start cold. The p99 latencies need single invocations: on the aggregate route they come from the drill-down sample above.

# %%
provisioned = {key: pc.min_capacity for key in session.functions
               if (pc := session.settings.function(key).provisioned_concurrency) is not None}
if provisioned:
    show(coldstart.provisioned_concurrency_effect(sample, provisioned))
else:
    say(f"No function has provisioned concurrency in {session.env}.")

# %%
glue("cold_starts", per_function.to_dict(orient="records"))
glue("route", window.route.value)
glue("report_lines", window.invocations())
glue("malformed_lines", int(window.reports.attrs.get("malformed", 0)) if window.reports is not None else 0)
