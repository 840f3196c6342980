import sys; sys.path.insert(0, __import__("os").path.dirname(__file__))
from nbgen import write
write("notebooks/01-deploy.ipynb", [
("md", """# Deploy

Preview (or plan) the environment's stacks, list what they hold and what they export, and show what changed since the last run. Deploys go through Pulumi's Automation API when the Pulumi CLI is installed; without it, this notebook shows the offline plan and says so."""),
("params", None),
("code", """import json
from pathlib import Path

from workbook.record import glue
from IPython.display import display

from workbook import automation, report
from workbook.session import open as open_session, say, show

session = open_session(env, since, functions, run_folder)
say(session.describe())"""),
("md", "## Preview"),
("code", """result = automation.deploy_or_plan(env, operation="preview")
say(result.message)
show(result.summary.groupby(["stack", "operation"])["count"].sum().rename("resources").reset_index())"""),
("md", "## Stack outputs\n\nSecret outputs show as `[secret]`."),
("code", """show(automation.diff_outputs({}, result.outputs).drop(columns=["change", "previous"]).rename(columns={"current": "value"}))"""),
("md", "## Resource inventory\n\nResources by stack and type."),
("code", """inventory = result.resources.groupby(["stack", "type"]).size().rename("count").reset_index()
show(inventory)"""),
("md", "## Differences from the last run"),
("code", """record = result.to_record()
if result.plan is not None:
    record["resources"] = result.plan.resources
previous_file = report.previous_run_file(run_folder, "deploy.json")
if previous_file is None:
    say("This is the first recorded run of this environment: nothing to compare with yet.")
else:
    previous = json.loads(previous_file.read_text())
    changes = automation.diff_resources(previous.get("resources"), record["resources"])
    output_changes = automation.diff_outputs(previous.get("outputs"), record["outputs"])
    say(f"Compared with the run in `{previous_file.parent.name}`: {len(changes)} resource change(s), "
        f"{len(output_changes)} output change(s).")
    if len(changes):
        show(changes)
    if len(output_changes):
        show(output_changes)
if run_folder:
    Path(run_folder, "deploy.json").write_text(json.dumps(record, default=str))"""),
("code", """glue("deploy_mode", result.mode.value)
glue("deploy_message", result.message)
glue("resource_count", int(len(result.resources)))
glue("resource_changes", {str(k): int(v) for k, v in result.summary.groupby("operation")["count"].sum().items()})"""),
])
