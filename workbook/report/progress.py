"""Progress of long cells: an ipywidgets bar in JupyterLab, plain lines in Papermill and the CLI.

``tracker(description, interactive)`` returns a ``progress(done, budget, memory_mb)`` callback, the
shape ``workbook.tuning.recommend.power_tune`` calls after each invocation. In JupyterLab
(``interactive=True`` inside a kernel) it shows a bar with a label; elsewhere it prints a line at
most every ``every_s`` seconds and at the end, so a scheduled report's log stays short. Inside
``workbook run`` those lines go to the run's ``kernels.log`` (named by ``$WORKBOOK_PROGRESS_LOG``),
never into the notebook, so the runbook shows results, not how they were waited for.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

from IPython import get_ipython
from IPython.display import display

ProgressFn = Callable[[int, int, int], None]
LOG_ENV = "WORKBOOK_PROGRESS_LOG"     # set by `workbook run` for its kernels: the run's kernels.log


def tracker(description: str, interactive: bool = True, *, every_s: float = 5.0,
            stream: TextIO | None = None) -> Progress:
    """A progress callback for ``description`` (a bar in JupyterLab, lines elsewhere)."""
    if interactive and get_ipython() is not None:
        return WidgetProgress(description)
    return LineProgress(description, every_s=every_s, stream=stream)


class Progress:
    """``progress(done, budget, memory_mb)``; ``finish(done)`` says the work ended (maybe under budget)."""

    def __call__(self, done: int, budget: int, memory_mb: int) -> None:
        raise NotImplementedError

    def finish(self, done: int | None = None) -> None:
        raise NotImplementedError


class WidgetProgress(Progress):
    """An ipywidgets bar: invocations so far against the budget, and the size being measured."""

    def __init__(self, description: str) -> None:
        import ipywidgets as widgets  # noqa: PLC0415 - only where a bar is drawn; `workbook run` imports LOG_ENV

        self.description = description
        self.bar = widgets.IntProgress(value=0, min=0, max=1, description="", bar_style="info",
                                       layout=widgets.Layout(width="40%"))
        self.label = widgets.HTML(value=f"<b>{description}</b>: starting")
        self.box = widgets.HBox([self.bar, self.label])
        self.box.add_class("lwb-progress")
        self.done = 0
        display(self.box)

    def __call__(self, done: int, budget: int, memory_mb: int) -> None:
        self.done = done
        self.bar.max = max(budget, 1)
        self.bar.value = min(done, self.bar.max)
        self.label.value = (f"<b>{self.description}</b>: {done} of at most {budget} invocations "
                            f"(now at {memory_mb:,} MB)")

    def finish(self, done: int | None = None) -> None:
        done = self.done if done is None else done
        self.bar.value = self.bar.max
        self.bar.bar_style = "success"
        self.label.value = f"<b>{self.description}</b>: done, {done} invocations"


class LineProgress(Progress):
    """Plain lines on stdout (Papermill keeps them as the cell's stream output), at most one per ``every_s``."""

    def __init__(self, description: str, *, every_s: float = 5.0, stream: TextIO | None = None) -> None:
        self.description, self.every_s, self.stream = description, every_s, stream
        self.done = 0
        self._last = float("-inf")

    def __call__(self, done: int, budget: int, memory_mb: int) -> None:
        self.done = done
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self._line(f"{self.description}: {done} of at most {budget} invocations (now at {memory_mb} MB)")

    def finish(self, done: int | None = None) -> None:
        done = self.done if done is None else done
        self._line(f"{self.description}: done, {done} invocations")

    def _line(self, text: str) -> None:
        """To ``stream``; else to the run's log when ``workbook run`` named one; else to stdout."""
        if self.stream is not None:
            print(text, file=self.stream, flush=True)
            return
        log = os.environ.get(LOG_ENV)
        if log:
            with open(log, "a", encoding="utf-8") as out:    # appends, as the kernel's own stderr does
                print(text, file=out)
            return
        print(text, file=sys.stdout, flush=True)
