"""The notebooks of a run: their order, their one ``parameters`` cell, and executing one with Papermill.

Each notebook has exactly one cell tagged ``parameters``; a run passes the same values to every
notebook (``notebook_parameters``). Tuning parameters default to ``workbook.tuning.defaults``.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import papermill as pm
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import DeadKernelError

from infra import config, project, specs
from workbook.errors import BadInput
from workbook.report import record
from workbook.report.progress import LOG_ENV as PROGRESS_LOG_ENV
from workbook.report.since import parse_since
from workbook.tuning import defaults

NOTEBOOKS_DIR = config.REPO_ROOT / "notebooks"
# Run order: the summary reads what the others recorded, so it runs last and leads the runbook.
RUN_ORDER = ("01-deploy", "02-metrics", "03-cold-starts", "04-cost", "05-tuning", "00-summary")
RUNBOOK_ORDER = ("00-summary", "01-deploy", "02-metrics", "03-cold-starts", "04-cost", "05-tuning")
KERNEL = "python3"
# The kernels import the same ``workbook`` as the run that starts them, whatever their working folder.
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass
class NotebookResult:
    name: str
    status: str                       # ok | failed | skipped | interrupted
    seconds: float = 0.0
    error: str | None = None
    cell: int | None = None


@dataclass
class RunResult:
    env: str
    folder: Path
    parameters: dict[str, Any]
    notebooks: list[NotebookResult] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    planned: list[str] = field(default_factory=list)
    status: str = "running"           # running | ok | failed | interrupted
    reason: str = ""                  # why a run failed or was interrupted: one line, redacted
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def ok(self) -> bool:
        return self.status in ("running", "ok") and all(n.status == "ok" for n in self.notebooks)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "folder": str(self.folder)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        notebooks = [NotebookResult(**n) for n in data.get("notebooks", [])]
        return cls(**{**data, "folder": Path(data["folder"]), "notebooks": notebooks})



def selected(only: Sequence[str] | None) -> list[str]:
    """The notebooks to run, in run order (``--only`` names, with or without ``.ipynb``)."""
    if not only:
        return list(RUN_ORDER)
    wanted = [name.removesuffix(".ipynb") for name in only]
    unknown = [n for n in wanted if n not in RUN_ORDER]
    if unknown:
        raise BadInput(f"--only {unknown[0]!r}: unknown notebook; choose from {', '.join(RUN_ORDER)}")
    return [n for n in RUN_ORDER if n in wanted]


def check_functions(functions: Sequence[str] | None) -> None:
    unknown = [f for f in functions or () if f not in specs.FUNCTION_KEYS]
    if unknown:
        raise BadInput(f"--function {unknown[0]!r}: unknown function; known: {', '.join(specs.FUNCTION_KEYS)}")


# Kept in summary.json's parameters for the record, never sent to a notebook (none declares it, and
# Papermill would warn "Passed unknown parameter" on every one).
RECORD_ONLY = frozenset({"since_s"})


def notebook_parameters(settings: config.Settings, since: str, folder: Path,
                        functions: Sequence[str] | None = None) -> dict[str, Any]:
    """The one ``parameters`` cell's values for every notebook of a run."""
    since_s = parse_since(since)
    check_functions(functions)
    return {
        "env": settings.env,
        "region": settings.params.aws_region,
        "since": since,
        "since_s": since_s,
        "functions": list(functions or specs.FUNCTION_KEYS),
        "run_folder": str(folder),
        "power_values": list(defaults.DEFAULT_POWER_VALUES),
        "num_invocations": defaults.REPORT_NUM_INVOCATIONS,
        "strategy": defaults.DEFAULT_STRATEGY,
        "balanced_weight": defaults.DEFAULT_BALANCED_WEIGHT,
        "discard_top_bottom": defaults.DEFAULT_DISCARD_TOP_BOTTOM,
        "tune_functions": list(defaults.REPORT_TUNE_FUNCTIONS),
        "apply_patch": False,
        "interactive": False,
    }


def kernel_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """What a run's kernels get on top of the run's own environment."""
    path = os.pathsep.join(p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")) if p)
    return {"MPLBACKEND": "module://matplotlib_inline.backend_inline",   # charts as image/png outputs
            "PYTHONPATH": path, **project.child_environment(), **(extra or {})}


def _kernel_manager(log_path: Path, environment: dict[str, str]) -> type:
    """A kernel manager whose kernel gets ``environment`` and writes its own stderr to ``log_path``.

    Cell output still reaches the notebook through the kernel's channels; only the process's
    stderr, which would otherwise interleave with the run's progress lines, goes to the log.
    """
    class RunKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            kw["env"] = {**(kw.get("env") or os.environ), **environment}
            with open(log_path, "ab") as log:
                kw["stderr"] = log
                await super()._async_launch_kernel(kernel_cmd, **kw)

        _launch_kernel = _async_launch_kernel

    return RunKernelManager


def execute(name: str, folder: Path, parameters: dict[str, Any], notebooks_dir: Path | None = None,
            progress: bool = False, environment: dict[str, str] | None = None) -> NotebookResult:
    """Run one notebook with Papermill into the run folder (kernel stderr in ``kernels.log``).

    A failing cell, a kernel that dies or any other execution error is a failed notebook; a
    disk error (``OSError``) and an interrupt propagate to the run.
    """
    source = (notebooks_dir or NOTEBOOKS_DIR) / f"{name}.ipynb"
    target = folder / f"{name}.ipynb"
    _quiet_abandoned_kernel_tasks()
    started = time.perf_counter()
    sent = {key: value for key, value in parameters.items() if key not in RECORD_ONLY}
    try:
        pm.execute_notebook(str(source), str(target), parameters=sent, kernel_name=KERNEL,
                            progress_bar=progress, cwd=str(folder), report_mode=False,
                            kernel_manager_class=_kernel_manager(folder / "kernels.log", kernel_environment(
                                {**(environment or {}), PROGRESS_LOG_ENV: str(folder / "kernels.log")})))
    except pm.PapermillExecutionError as exc:
        return NotebookResult(name, "failed", time.perf_counter() - started,
                              error=f"{exc.ename}: {exc.evalue}", cell=exc.exec_count)
    except DeadKernelError as exc:
        return NotebookResult(name, "failed", time.perf_counter() - started,
                              error=f"the kernel died ({exc}); see kernels.log")
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 - any other execution error fails this notebook, not the run's finish
        return NotebookResult(name, "failed", time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
    return NotebookResult(name, "ok", time.perf_counter() - started)



class _AbandonedKernelTask(logging.Filter):
    """Drops asyncio's "Task exception was never retrieved" for a kernel that died.

    When a stop signal interrupts a notebook, nbclient's tasks are left behind; the run's finish
    then ends the kernel, and a task that was watching it fails with ``DeadKernelError``. asyncio
    reports that at garbage collection, as a raw traceback on the run's stderr, long after the
    run has said it was interrupted and why. A kernel that died while a notebook ran is reported
    by ``execute`` as the notebook's failure.

    The same goes for a task that was running when the stop signal's ``KeyboardInterrupt`` was
    raised in it: the interrupt propagated to the run, which acted on it and said so, but the task
    keeps it as its exception, and at garbage collection asyncio prints it with the traceback it
    gathered on its way up ("File .../run.py, in execute"). Every other asyncio error still gets through.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, DeadKernelError | KeyboardInterrupt)
                    and str(record.msg).startswith("Task exception was never retrieved"))


def _quiet_abandoned_kernel_tasks() -> None:
    logger = logging.getLogger("asyncio")
    if not any(isinstance(existing, _AbandonedKernelTask) for existing in logger.filters):
        logger.addFilter(_AbandonedKernelTask())


def read_scraps(path: Path) -> dict[str, Any]:
    """What a notebook recorded (``workbook.report.record.glue`` or ``scrapbook.glue`` with JSON data)."""
    return record.read(str(path))


