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
# # Metrics
#
# Invocations, errors, throttles and duration percentiles per function, from CloudWatch's `AWS/Lambda` metrics over the window, and the alarms in ALARM. Percentiles that the endpoint cannot serve come from the REPORT lines, and the table says which source each column used.

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
import pandas as pd

from workbook.analysis import health
from workbook.report import charts
from workbook.telemetry import metrics, pipeline

# %% [markdown]
# ## Per function, over the whole window

# %%
queries = metrics.env_queries(session.settings, session.functions)
series = metrics.load_metrics(queries, session.start, session.end, period_s=60, region=session.region)
window = metrics.load_metrics(queries, session.start, session.end, region=session.region,
                              period_s=health.window_period_s(session.start, session.end))
tuning = metrics.tuning_counts(session.settings, session.functions, session.start, session.end)
table = health.per_function(window, session.settings, session.functions, tuning)
tuned_invocations = int(tuning[tuning["metric"] == "Invocations"]["value"].sum()) if len(tuning) else 0
say(f"{len(queries)} metric queries in {series.attrs['calls'] + window.attrs['calls']} GetMetricData calls. "
    + (f"Power tuning's {tuned_invocations:,} invocations (on its own versions) are left out of the counts."
       if tuned_invocations else "No power-tuning invocations in the window."))
show_by_concern(table, "health")

# %% [markdown]
# ## Errors and throttles over time

# %%
display(charts.errors_and_throttles(series[series["function"].isin(session.functions)], window=(session.start, session.end),
                                  period_s=60))

# %% [markdown]
# ## Queues
#
# Age of the oldest message on the source queues, and the depth of every dead-letter queue (maximum over the window).

# %%
queue_rows = window[window["metric"].isin(["ApproximateAgeOfOldestMessage", "ApproximateNumberOfMessagesVisible"])]
queues = queue_rows.groupby(["function", "metric"])["value"].max().unstack()
show(queues.rename_axis("queue").reset_index()) if len(queues) else say("No queue metrics in the window.")

# %% [markdown]
# ## Data pipeline
#
# The `dataPipeline` state machine's executions started in the window, from the Step Functions API (ListExecutions, DescribeExecution, and GetExecutionHistory for those that did not succeed): how many started, succeeded, failed, timed out and were aborted, the duration of those that ended, and for each failure the step that failed with its error.

# %%
machine_arn = pipeline.state_machine_arn(session.settings)
executions = (pipeline.load_executions(machine_arn, session.start, session.end, region=session.region)
              if machine_arn else None)
flow = pipeline.summarize(executions) if executions is not None else None
say(health.pipeline_headline(flow))
if flow is not None and flow.started:
    show(pd.DataFrame([flow.as_dict()]))
    failed_steps = pipeline.failures(executions)
    show(failed_steps) if len(failed_steps) else say("No execution failed.")

# %% [markdown]
# ## Alarms in ALARM

# %%
alarms = health.alarms_in_alarm(session.settings, table, flow)
if alarms.note:
    say(alarms.note)
say("\n".join(f"- `{name}`" for name in alarms.names) if alarms.names else "No alarm is in ALARM.")

# %%
glue("health", table.to_dict(orient="records"))
glue("alarms_in_alarm", alarms.names)
glue("pipeline", {**(flow.as_dict() if flow is not None else {}), "headline": health.pipeline_headline(flow)})
glue("percentile_source", sorted(set(table["percentile_source"])))
glue("getmetricdata_calls", int(series.attrs["calls"] + window.attrs["calls"]))
