"""What every notebook opens first: the environment, the time range, the functions, and where AWS is.

``open(env, since, functions)`` validates params, points boto3 at the local endpoint for
``--env local``, and fixes the time range once, so every cell of a notebook analyses the same
window. In JupyterLab it starts the local environment when none is running, and says so; inside
``workbook run`` it never starts one: it checks that the run's own environment is still there.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from IPython import get_ipython
from IPython.display import Markdown, display

from infra import config, specs
from workbook.errors import BadInput
from workbook.local import manager
from workbook.report import ownership, tables
from workbook.report.errors import EnvironmentGone
from workbook.report.since import parse_since


@dataclass
class Session:
    """One notebook's view of an environment over a time range."""

    settings: config.Settings
    start: pd.Timestamp
    end: pd.Timestamp
    functions: list[str]
    local: bool
    run_folder: Path | None = None
    notes: list[str] = field(default_factory=list)
    #: Locally, when the handlers do not run on the stack's runtime: which Python does (never silent).
    handlers_on: str | None = None

    @property
    def env(self) -> str:
        return self.settings.env

    @property
    def region(self) -> str:
        return self.settings.params.aws_region

    def function_name(self, key: str) -> str:
        return self.settings.function_name(key)

    @property
    def window_hours(self) -> float:
        """The analysed window's length: rates and monthly projections are per this window."""
        return (self.end - self.start).total_seconds() / 3600

    @property
    def where(self) -> str:
        """A phrase for prose: where the data comes from."""
        if self.local:
            return "the local environment (moto's server and the Lambda sandbox on this machine)"
        return f"AWS account in {self.region}"

    def describe(self) -> str:
        window = f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC"
        line = (f"Environment **{self.env}** ({self.where}); functions: {', '.join(self.functions)}; "
                f"window {window}.")
        return line + (f" The handlers run on {self.handlers_on}." if self.handlers_on else "")


def open(  # noqa: A001 - session.open reads like the verb it is
        env: str, since: str = "24h", functions: Sequence[str] | None = None, run_folder: str | Path | None = None,
        start_local: bool = True, end: Any = None) -> Session:
    """Validate params, activate the local endpoint for ``local``, and fix the time range."""
    settings = config.load(env)
    keys = list(functions or specs.FUNCTION_KEYS)
    unknown = [k for k in keys if k not in specs.FUNCTION_KEYS]
    if unknown:
        raise BadInput(f"unknown function {unknown[0]!r}; known: {', '.join(specs.FUNCTION_KEYS)}")
    end_ts = pd.Timestamp(end, tz="UTC") if end is not None else pd.Timestamp.now(tz="UTC")
    if end_ts.tzinfo is None:
        end_ts = end_ts.tz_localize("UTC")
    start_ts = end_ts - pd.Timedelta(seconds=parse_since(since))
    _warnings_as_notes()
    _inline_figures()
    local = env == "local"
    handlers_on = None
    if local:
        _use_local(env, start_local)
        handlers_on = _handlers_off_runtime(manager.current())
    return Session(settings=settings, start=start_ts, end=end_ts, functions=keys, local=local,
                   run_folder=Path(run_folder) if run_folder else None, handlers_on=handlers_on)


def _handlers_off_runtime(recorded: dict | None) -> str | None:
    """Which Python runs the local handlers, when it is not the stack's runtime (``workbook local status`` too)."""
    if recorded and recorded.get("handlers_on") and recorded.get("handlers_on_stack_runtime") is False:
        return str(recorded["handlers_on"])
    return None


def _use_local(env: str, start_local: bool) -> None:
    """Point at the local environment: the run's own inside ``workbook run``, else start one if asked."""
    expected = os.environ.get(ownership.OWNER_ENV)
    if expected is not None:
        if ownership.current_owner() != expected:
            raise EnvironmentGone("the local environment of this `workbook run` is gone (stopped or replaced); "
                                  "a notebook inside a run never starts its own, so the run fails here")
        manager.activate()
        return
    if start_local and manager.current() is None:
        recorded = manager.activate(start_if_needed=True, env=env)
        say(f"*Started a local environment for this session* ({recorded.get('endpoint_url')}). It keeps "
            "running after the notebook, for the next one; stop it with `workbook local stop`.")
        return
    manager.activate(start_if_needed=start_local, env=env)


def say(markdown: str) -> None:
    """Show a sentence of prose: Markdown in a notebook, plain text elsewhere.

    Dollar signs are escaped: in a notebook a pair of them would render as LaTeX, not money.
    """
    if get_ipython() is not None:
        display(Markdown(markdown.replace("$", "\\$")))
        return
    print(markdown)


def show(frame: pd.DataFrame, digits: int = 2) -> None:
    """A table for a reader: human headers with units (``tables.humanize``), no positional index, floats
    rounded to ``digits``. The frame keeps its machine names for ``glue`` and ``summary.json``."""
    frame = tables.humanize(frame)
    if get_ipython() is not None:
        text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])
                or pd.api.types.is_bool_dtype(frame[c])]
        styled = frame.style.hide(axis="index").format(precision=digits, na_rep="—")
        if text:
            styled = styled.set_properties(subset=text, **{"text-align": "left"})
        display(styled)
        return
    print(frame.round(digits).to_string(index=False))


def show_by_concern(frame: pd.DataFrame, concern: str, keys: Sequence[str] = ("function",), digits: int = 2,
                    same_on_every_row: Sequence[str] | None = None) -> None:
    """A wide table as one table per concern (``tables.CONCERNS[concern]``), each titled, so each fits the page.

    Columns of ``same_on_every_row`` (default ``tables.SAY_ONCE[concern]``) that hold one value on every
    row are said once, in a sentence, instead.
    """
    say_once = tables.SAY_ONCE.get(concern, []) if same_on_every_row is None else same_on_every_row
    constants = tables.constant_columns(frame, say_once)
    if constants:
        say("; ".join(f"{tables.header(c)}: {_plain(v)}" for c, v in constants.items()) + ".")
    parts = tables.split(frame.drop(columns=list(constants)), tables.CONCERNS[concern], keys)
    if not parts:
        say("No rows in the window.")
    for part in parts:
        say(f"**{part.title}**")
        show(part.frame, digits)


def _plain(value: Any) -> str:
    if pd.api.types.is_bool(value):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def _warnings_as_notes() -> None:
    """The library's one-time fallbacks ("the local endpoint cannot ...") read as prose, not as errors."""
    original = warnings.showwarning
    if getattr(original, "_workbook_notes", False):
        return

    def note(message, category, filename, lineno, file=None, line=None):  # warnings' signature
        text = str(message)
        if issubclass(category, UserWarning) and text.startswith("workbook."):
            say(f"*Note:* {text.split(': ', 1)[-1]}")
        else:
            original(message, category, filename, lineno, file, line)

    note._workbook_notes = True  # type: ignore[attr-defined]
    warnings.showwarning = note


def _inline_figures() -> None:
    """Figures returned by ``workbook.report.charts`` render as PNG in the notebook (and so in the runbook)."""
    shell = get_ipython()
    if shell is not None:
        shell.run_line_magic("matplotlib", "inline")
