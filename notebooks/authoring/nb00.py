import sys; sys.path.insert(0, __import__("os").path.dirname(__file__))
from nbgen import write
write("notebooks/00-summary.ipynb", [
("md", "# Summary\n\nThe one-page view of this run: health, cost, and the top tuning recommendations. Each line links to its detail section."),
("params", None),
("code", """from IPython.display import display
from workbook import summary
from workbook.session import say, show

view = summary.build(summary.collect(run_folder) if run_folder else {})
say(view.links())"""),
("md", "## Headlines"),
("code", """say("\\n".join(f"- {line}" for line in view.headlines) or "- Nothing was recorded: run the detail notebooks first (`workbook run`).")"""),
("md", "## Health per function\n\nInvocations, errors, throttles and tail latency over the window, with the cold-start rate."),
("code", """show(view.health) if not view.health.empty else say("No metrics were recorded in this run.")"""),
("md", "## Cost"),
("code", """show(view.cost, 4) if not view.cost.empty else say("No cost was recorded in this run.")"""),
("md", "## Top recommendations\n\nThe full reasoning, the tuning curves and the params patch are in the Tuning section."),
("code", """show(view.recommendations) if not view.recommendations.empty else say("No recommendation in this run.")"""),
("code", """from workbook.record import glue
glue("headlines", view.headlines)
glue("missing", view.missing)"""),
])
