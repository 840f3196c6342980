"""What changed since the last run: resources and outputs, compared with the last run's ``deploy.json``.

Each run of ``01-deploy`` writes ``deploy.json`` (the deploy result, with the plan's resources and
their inputs when it was only a plan) into its run folder; ``compare_with_last_run`` finds the
newest earlier run of the same environment and diffs against it.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from workbook.deploy.result import Result

DEPLOY_RECORD = "deploy.json"


def diff_outputs(previous: Mapping[str, Any] | None, current: Mapping[str, Any], *,
                 include_unchanged: bool = False) -> pd.DataFrame:
    """Outputs added, removed or changed since ``previous``: columns name, change, previous, current."""
    previous = previous or {}
    rows = []
    for name in sorted(set(previous) | set(current)):
        before, after = previous.get(name, None), current.get(name, None)
        if name not in previous:
            change = "added"
        elif name not in current:
            change = "removed"
        elif _canonical(before) != _canonical(after):
            change = "changed"
        elif include_unchanged:
            change = "unchanged"
        else:
            continue
        rows.append({"name": name, "change": change, "previous": before, "current": after})
    return pd.DataFrame(rows, columns=["name", "change", "previous", "current"])


def diff_resources(previous: Iterable[Mapping[str, Any]] | pd.DataFrame | None,
                   current: Iterable[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """Resources added, removed or changed, keyed by type and name (and stack when both sides have it).

    Takes plan resources (``Plan.resources``: type, name, inputs[, stack]) or tables with type and name
    columns. "changed" means the inputs differ; ``changed_keys`` names the top-level inputs that did.
    """
    before, after = _resource_index(previous), _resource_index(current)
    use_stack = all(key[0] is not None for key in (*before, *after))
    if not use_stack:
        before = {(None, *key[1:]): value for key, value in before.items()}
        after = {(None, *key[1:]): value for key, value in after.items()}
    rows = []
    for key in sorted(set(before) | set(after), key=lambda k: tuple("" if part is None else part for part in k)):
        stack, type_token, name = key
        if key not in before:
            change, keys = "added", []
        elif key not in after:
            change, keys = "removed", []
        else:
            old, new = before[key], after[key]
            if old is None or new is None:
                continue   # tables without inputs: presence is all we can compare
            keys = sorted(k for k in set(old) | set(new) if _canonical(old.get(k)) != _canonical(new.get(k)))
            if not keys:
                continue
            change = "changed"
        rows.append({"stack": stack, "type": type_token, "name": name, "change": change, "changed_keys": keys})
    frame = pd.DataFrame(rows, columns=["stack", "type", "name", "change", "changed_keys"])
    return frame if use_stack else frame.drop(columns=["stack"])


def _resource_index(resources: Any) -> dict[tuple[Any, str, str], dict[str, Any] | None]:
    if resources is None:
        return {}
    if hasattr(resources, "to_dict") and hasattr(resources, "columns"):
        resources = resources.to_dict(orient="records")
    index: dict[tuple[Any, str, str], dict[str, Any] | None] = {}
    for resource in resources:
        inputs = resource.get("inputs")
        index[(resource.get("stack"), resource["type"], resource["name"])] = dict(inputs) if isinstance(inputs, Mapping) else None
    return index


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)




def previous_run_file(run_folder: str | Path | None, filename: str) -> Path | None:
    """``filename`` from the newest earlier run folder beside ``run_folder`` (same env), or None."""
    if not run_folder:
        return None
    folder = Path(run_folder)
    if not folder.parent.is_dir():
        return None
    earlier = sorted((p for p in folder.parent.iterdir()
                      if p.is_dir() and not p.is_symlink() and p.name < folder.name and (p / filename).is_file()),
                     key=lambda p: p.name)
    return earlier[-1] / filename if earlier else None


@dataclass
class Comparison:
    """The differences from the last recorded run, and the sentence that says so."""

    message: str
    previous_run: str | None = None
    resources: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["type", "name", "change", "changed_keys"]))
    outputs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["name", "change", "previous", "current"]))


def deploy_record(result: Result) -> dict[str, Any]:
    """What the next run diffs against: the result, with the plan's resources and inputs when it was a plan."""
    record = result.to_record()
    if result.plan is not None:
        record["resources"] = result.plan.resources
    return record


def compare_with_last_run(result: Result, run_folder: str | Path | None) -> Comparison:
    """Diff ``result`` against the newest earlier run's ``deploy.json``, then write this run's.

    Without a run folder (an interactive session) nothing is written and there is nothing to
    compare with; a ``deploy.json`` that cannot be read is reported, not fatal.
    """
    record = deploy_record(result)
    previous_file = previous_run_file(run_folder, DEPLOY_RECORD)
    if previous_file is None:
        comparison = Comparison("This is the first recorded run of this environment: nothing to compare with yet."
                                if run_folder else "No run folder (an interactive session): nothing to compare with.")
    else:
        try:
            previous = json.loads(previous_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            previous = None
            comparison = Comparison(f"The last run's {previous_file} cannot be read ({exc}); nothing to compare with.",
                                    previous_file.parent.name)
        if previous is not None:
            resources = diff_resources(previous.get("resources"), record["resources"])
            outputs = diff_outputs(previous.get("outputs"), record["outputs"])
            comparison = Comparison(
                f"Compared with the run in `{previous_file.parent.name}`: {len(resources)} resource change(s), "
                f"{len(outputs)} output change(s).", previous_file.parent.name, resources, outputs)
    if run_folder:
        Path(run_folder, DEPLOY_RECORD).write_text(json.dumps(record, default=str), encoding="utf-8")
    return comparison
