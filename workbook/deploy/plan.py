"""The offline plan: the stack's program run under Pulumi's mocks. No CLI, no AWS.

``offline_plan(env)`` returns every resource with its inputs and the stack outputs. Where the
environment deploys its foundation standalone, the foundation program is planned first and its
resources are part of the plan (``"stack": "foundation"``); otherwise its outputs only stand in
for the referenced platform stacks, so the plan is complete either way.
"""
from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import importlib.metadata
import json
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pulumi
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra import artifacts, compute, config, foundation
from infra.config import Settings
from infra.mocks import PlanMocks
from infra.project import project_dir
from workbook.errors import WorkbookError

# Pulumi's runtime settings are process-global: one program (a plan, or an Automation API run) at a time.
PULUMI_LOCK = threading.Lock()


@dataclass
class Plan:
    """Resources (type, name, inputs, stack) and outputs of one environment's stacks."""

    env: str
    resources: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    foundation_outputs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"resources": self.resources, "outputs": self.outputs}

    def of_type(self, type_token: str, stack: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["type"] == type_token and (stack is None or r["stack"] == stack)]

    def named(self, name: str, type_token: str | None = None) -> dict[str, Any]:
        matches = [r for r in self.resources if r["name"] == name and (type_token is None or r["type"] == type_token)]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}" + (f" of type {type_token}" if type_token else ""))
        return matches[0]

    def table(self) -> pd.DataFrame:
        """One row per resource: stack, type, name, and the physical name where set."""
        rows = [{
            "stack": r["stack"],
            "type": r["type"],
            "name": r["name"],
            "physical_name": r["inputs"].get("name") or r["inputs"].get("bucket") or r["inputs"].get("layerName") or "",
        } for r in self.resources]
        return pd.DataFrame(rows, columns=["stack", "type", "name", "physical_name"])


def offline_plan(env: str, settings: Settings | None = None) -> Plan:
    """Plan environment ``env`` (or the given settings) under mocks.

    Called where an event loop is running (a Jupyter kernel), the programs run in a worker thread
    with a loop of its own: Pulumi's runtime pumps the loop of the thread it runs on, and on the
    kernel's loop it swallows the cells queued behind it (Run All). Elsewhere (the CLI, scripts,
    tests) they run on the calling thread, as Pulumi's own test helpers do. A thread costs nothing
    measurable; a subprocess would pay the 2 s of importing the AWS provider's SDK again. Plans are
    kept per environment and params content for the process, so a notebook session plans once;
    each caller gets its own copy.
    """
    settings = settings or config.load(env)
    key = (settings.env, json.dumps(settings.params.model_dump(mode="json"), sort_keys=True))
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is None:
        kept = cache_dir() / f"{plan_key(key)}.json"   # the sources are hashed once per process and params
        cached = _read_saved(kept)
        if cached is None:
            cached = _off_the_callers_loop(lambda: _plan(settings))
            _save(kept, cached)
        with _CACHE_LOCK:
            _CACHE[key] = cached
    return copy.deepcopy(cached)


# -- plans kept on disk between processes ------------------------------------------------------------
# Every `workbook local start`, `plan` and notebook session plans the stack again, and a plan costs
# seconds. A plan depends only on the params, the program's sources (infra/, the handlers its
# archives name, this module) and the Pulumi SDKs: the key is a hash of all of them, so a change to
# any one plans afresh. WORKBOOK_CACHE_DIR (default: $XDG_CACHE_HOME or ~/.cache, then
# lambda-workbook/) holds them; files are the user's own (0600), written whole or not at all.
CACHE_ENV = "WORKBOOK_CACHE_DIR"
_PROJECT = project_dir()
_SOURCES = ("infra/**/*.py", "infra/**/*.yaml", "handlers/**/*.py", "handlers/requirements*.txt", "workbook/deploy/plan.py")


def cache_dir() -> Path:
    """Where plans are kept between processes."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit) / "plans"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lambda-workbook" / "plans"


def plan_key(key: tuple[str, str]) -> str:
    """The hash naming a plan: its environment and params, every source of the program, and the SDK versions."""
    digest = hashlib.sha256()
    for part in (*key, str(_PROJECT), importlib.metadata.version("pulumi"), importlib.metadata.version("pulumi-aws")):
        digest.update(part.encode() + b"\0")
    for pattern in _SOURCES:
        for path in sorted(_PROJECT.glob(pattern)):
            if "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(_PROJECT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]


def _read_saved(path: Path) -> Plan | None:
    try:
        saved = json.loads(path.read_text())
        return Plan(env=saved["env"], resources=saved["resources"], outputs=saved["outputs"],
                    foundation_outputs=saved["foundation_outputs"])
    except (OSError, ValueError, KeyError, TypeError):
        return None   # none kept, or unreadable: plan again


def _save(path: Path, plan: Plan) -> None:
    """Write the plan whole or not at all: a temporary file (0600 from mkstemp) renamed into place.

    A plan that cannot be kept is planned again next time; nothing else depends on it.
    """
    document = {"env": plan.env, "resources": plan.resources, "outputs": plan.outputs,
                "foundation_outputs": plan.foundation_outputs}
    temporary = None
    try:
        text = json.dumps(document)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".plan-", suffix=".tmp")
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except (OSError, TypeError, ValueError):
        if temporary:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


_CACHE: dict[tuple[str, str], Plan] = {}
_CACHE_LOCK = threading.Lock()


# A plan takes 1-8 s; one still unfinished after this long will not finish (it would hang the kernel).
PLAN_THREAD_TIMEOUT_S = 600.0


class PlanHung(WorkbookError):
    """The offline plan's worker thread did not finish."""


def _off_the_callers_loop(work: Callable[[], Plan]) -> Plan:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return work()   # no loop runs on this thread: Pulumi may pump one of its own here
    return _in_worker_thread(work)


def _in_worker_thread(work: Callable[[], Plan]) -> Plan:
    """``work()`` in a thread of its own (so never on the caller's event loop); its exception is re-raised here."""
    box: dict[str, Any] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()   # Pulumi's runtime needs a loop; this thread's own
        asyncio.set_event_loop(loop)
        try:
            box["plan"] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    worker = threading.Thread(target=run, name="workbook-offline-plan", daemon=True)
    worker.start()
    worker.join(PLAN_THREAD_TIMEOUT_S)
    if worker.is_alive():
        raise PlanHung(f"the offline plan did not finish in {PLAN_THREAD_TIMEOUT_S:.0f} s (a plan takes seconds); "
                       "restart the kernel and run the cell again, and report it if it recurs")
    if "error" in box:
        raise box["error"]
    return box["plan"]


def _plan(settings: Settings) -> Plan:
    plan = Plan(env=settings.env)
    with PULUMI_LOCK:
        previous = artifacts.OFFLINE
        artifacts.OFFLINE = True
        try:
            foundation_resources, foundation_outputs = _run(
                settings, "foundation", lambda: foundation.build(settings), {})
            stack_outputs = {name: foundation_outputs for name in settings.params.foundation.stacks.model_dump().values()}
            compute_resources, compute_outputs = _run(
                settings, "compute", lambda: compute.build(settings), stack_outputs)
        finally:
            artifacts.OFFLINE = previous
    if settings.params.foundation.standalone:
        plan.resources += [{**r, "stack": "foundation"} for r in foundation_resources]
    plan.resources += [{**r, "stack": "compute"} for r in compute_resources]
    plan.outputs = compute_outputs
    plan.foundation_outputs = foundation_outputs
    return plan


def _run(settings: Settings, stack: str, program: Callable[[], dict[str, Any]],
         stack_outputs: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run one program under fresh mocks and resolve its outputs."""
    mocks = PlanMocks(settings.params.aws_region, stack_outputs)
    project = f"{settings.params.project_name}-{stack}"
    pulumi.runtime.set_mocks(mocks, project=project, stack=settings.env, preview=False)
    resolved: dict[str, Any] = {}

    def body() -> None:
        outputs = program()
        resolved.update(_sync_await(pulumi.Output.from_input(outputs).future()) or {})

    _sync_await(run_pulumi_func(body))
    return _plain(mocks.resources), _plain(resolved)


# Inputs whose values are secret even in a plan (mock values, but a plan is shared like a real one).
SECRET_INPUTS = frozenset({"secretString", "secretBinary", "password", "masterPassword"})


def _plain(value: Any) -> Any:
    """Inputs as JSON-friendly values: assets become paths, whole floats ints, secrets masked."""
    if isinstance(value, dict):
        return {k: ("[secret]" if k in SECRET_INPUTS else _plain(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, pulumi.FileAsset):
        return {"asset": value.path}
    if isinstance(value, pulumi.FileArchive):
        return {"archive": value.path}
    if isinstance(value, pulumi.AssetArchive):
        return {"archive": {k: _plain(v) for k, v in value.assets.items()}}
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
