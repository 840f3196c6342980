import sys; sys.path.insert(0, __import__("os").path.dirname(__file__))
from nbgen import write
OPEN = """from workbook.record import glue
from IPython.display import display

from workbook.session import open as open_session, say, show

session = open_session(env, since, functions, run_folder)
say(session.describe())"""

write("notebooks/02-metrics.ipynb", [
("md", """# Metrics

Invocations, errors, throttles and duration percentiles per function, from CloudWatch's `AWS/Lambda` metrics over the window, and the alarms in ALARM. Percentiles that the endpoint cannot serve come from the REPORT lines, and the table says which source each column used."""),
("params", None),
("code", OPEN + """
from workbook import charts, health, metrics"""),
("md", "## Per function, over the whole window"),
("code", """queries = metrics.env_queries(session.settings, session.functions)
series = metrics.load_metrics(queries, session.start, session.end, period_s=60, region=session.region)
window = metrics.load_metrics(queries, session.start, session.end, region=session.region,
                              period_s=health.window_period_s(session.start, session.end))
table = health.per_function(window, session.settings, session.functions)
say(f"{len(queries)} metric queries in {series.attrs['calls'] + window.attrs['calls']} GetMetricData calls.")
show(table)"""),
("md", "## Errors and throttles over time"),
("code", """display(charts.errors_and_throttles(series[series["function"].isin(session.functions)]))"""),
("md", "## Queues\n\nAge of the oldest message on the source queues, and the depth of every dead-letter queue (maximum over the window)."),
("code", """queue_rows = window[window["metric"].isin(["ApproximateAgeOfOldestMessage", "ApproximateNumberOfMessagesVisible"])]
queues = queue_rows.groupby(["function", "metric"])["value"].max().unstack()
display(queues.rename_axis("queue")) if len(queues) else say("No queue metrics in the window.")"""),
("md", "## Alarms in ALARM"),
("code", """alarms = health.alarms_in_alarm(session.settings, table)
if alarms.note:
    say(alarms.note)
say("\\n".join(f"- `{name}`" for name in alarms.names) if alarms.names else "No alarm is in ALARM.")"""),
("code", """glue("health", table.to_dict(orient="records"))
glue("alarms_in_alarm", alarms.names)
glue("percentile_source", sorted(set(table["percentile_source"])))
glue("getmetricdata_calls", int(series.attrs["calls"] + window.attrs["calls"]))"""),
])

write("notebooks/03-cold-starts.ipynb", [
("md", """# Cold starts

How often each function starts cold, how long INIT takes, and what INIT costs in latency and money. INIT has been billed for on-demand zip functions since 1 August 2025, so it is part of the cost share below. The figures come from the REPORT lines in each function's log group."""),
("params", None),
("code", OPEN + """
from workbook import charts, coldstart, logs"""),
("code", """reports = logs.load_for_env(session.settings, session.start, session.end, keys=session.functions)
malformed = reports.attrs.get("malformed", 0)
say(f"{len(reports):,} REPORT lines in the window" + (f"; {malformed} malformed line(s) skipped." if malformed else "."))"""),
("md", "## Rate and INIT duration per function"),
("code", """architectures = {key: session.settings.function(key).architecture for key in session.functions}
per_function = coldstart.summary(reports, "function", architecture=architectures)
show(per_function)"""),
("md", "## By memory size and by hour"),
("code", """show(coldstart.summary(reports, ["function", "memory_size_mb"], architecture=architectures))
show(coldstart.summary(reports, "hour", architecture=architectures))"""),
("md", "## Timeline and INIT distribution"),
("code", """display(charts.cold_start_timeline(coldstart.timeline(reports, freq="1min")))
display(charts.init_distribution(reports))"""),
("md", "## Provisioned concurrency\n\nWhere an environment configures it (prod), invocations served by provisioned environments do not start cold."),
("code", """provisioned = {key: pc.min_capacity for key in session.functions
               if (pc := session.settings.function(key).provisioned_concurrency) is not None}
if provisioned:
    display(coldstart.provisioned_concurrency_effect(reports, provisioned))
else:
    say(f"No function has provisioned concurrency in {session.env}.")"""),
("code", """glue("cold_starts", per_function.to_dict(orient="records"))
glue("report_lines", int(len(reports)))
glue("malformed_lines", int(malformed))"""),
])

write("notebooks/04-cost.ipynb", [
("md", """# Cost

What the window's invocations cost, per function and charge type (requests, duration, billed INIT, ephemeral storage, provisioned concurrency), projected to a month. Prices come from the dated table shipped with the workbook; Cost Explorer's actual cost is shown beside the model where the account allows it."""),
("params", None),
("code", OPEN + """
from workbook import charts, cost, logs"""),
("code", """reports = logs.load_for_env(session.settings, session.start, session.end, keys=session.functions)
settings = session.settings
costs = cost.cost_from_reports(
    reports, region=session.region,
    architecture={k: settings.function(k).architecture for k in session.functions},
    ephemeral_storage_mb={k: settings.function(k).ephemeral_storage_mb for k in session.functions},
    provisioned={k: pc.min_capacity for k in session.functions
                 if (pc := settings.function(k).provisioned_concurrency) is not None},
    period=(session.start, session.end))
show(costs, 6)"""),
("md", "## By charge type"),
("code", """display(charts.cost_by_function(costs, projection=True, title="Monthly projection per function by charge"))"""),
("md", "## Modelled and actual"),
("code", """total = float(costs["total_usd"].sum()) if len(costs) else 0.0
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
        display(actual)
    except cost.CostError as exc:
        say(f"Cost Explorer is not available here ({exc}); the model stands alone.")
    say(f"Modelled: **${total:.4f}** in the window, **${monthly:,.2f}** projected to a month.")"""),
("code", """glue("cost", costs[["function", "total_usd", "monthly_projection_usd"]].to_dict(orient="records") if len(costs) else [])
glue("cost_total_usd", total)
glue("cost_monthly_usd", monthly)
glue("cost_source", source)"""),
])

write("notebooks/05-tuning.ipynb", [
("md", """# Tuning

Memory, timeout and architecture recommendations. Memory comes from power tuning (as aws-lambda-power-tuning measures it, plus a fitted duration model that needs fewer invocations) and never drops below the observed memory use plus headroom. The recommendations become a patch to `params/<env>.yaml`, shown as a diff; it is applied only when `apply_patch` is set, and deploys then go through Pulumi as usual."""),
("params", None),
("code", OPEN + """
from workbook import charts, logs, recommend"""),
("md", "## Power tuning"),
("code", """tuned = {}
for key in tune_functions:
    result = recommend.power_tune(session.settings, key, power_values, num_invocations, strategy=strategy,
                                  balanced_weight=balanced_weight, discard_top_bottom=discard_top_bottom)
    tuned[key] = result
    say(f"**{key}**: {result.memory_mb} MB ({strategy}), confidence {result.confidence:.0%}, "
        f"{result.invocations_used} invocations.")
    display(charts.power_tuning_curve(result.analysis, predicted=result.model.predicted if result.model else None,
                                      title=f"{key}: duration and cost by memory"))
    show(result.analysis.table, 6)"""),
("md", "## Memory headroom"),
("code", """reports = logs.load_for_env(session.settings, session.start, session.end, keys=session.functions)
display(charts.memory_headroom(reports))"""),
("md", "## Recommendations"),
("code", """recs = recommend.recommend(session.settings, reports, session.functions, tuned, window_hours=session.window_hours)
show(recs.table)"""),
("md", "## The params patch"),
("code", """patch = recs.patch(env)
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
        say("Not applied (set `apply_patch = True`, or use the controls below in JupyterLab).")"""),
("md", "## Try other settings\n\nIn JupyterLab, the controls below project duration, cost and risk from the measured model as you move them, and *Apply* writes the patch and runs a preview. In a report they print the static recommendation."),
("code", """from workbook import interactive as controls

controls.controls(session.settings, tuned, reports, recs, interactive=interactive, window_hours=session.window_hours)"""),
("code", """glue("recommendations", recs.table.to_dict(orient="records"))
glue("params_patch", patch.diff)
glue("tuned", {k: {"memory_mb": t.memory_mb, "invocations": t.invocations_used, "confidence": t.confidence}
                  for k, t in tuned.items()})"""),
])
