"""``workbook run``: every notebook of an environment with Papermill, into one run folder.

A run checks every argument and the outputs folder first (nothing is created before), then
writes ``outputs/<env>/<UTC stamp>.partial/``; at its end, however it ends, the folder gets its
runbook, is redacted, gets ``summary.json`` and is renamed ``<UTC stamp>/`` (``workbook.report.finish``).
For ``--env local`` the run uses the running local environment or starts one (and stops it at the
end), and drives traffic first; one run per environment at a time (``workbook.report.ownership``).
SIGINT, SIGTERM and SIGHUP interrupt the work and the finish runs anyway; if the run's process is
killed outright, its watchdog finishes instead (``workbook.report.guard``). docs/run-guarantees.md
states each promise and the test behind it.
"""
from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from infra import config
from workbook.errors import BadInput, WorkbookError
from workbook.local import processes, traffic
from workbook.report import folders, guard, ownership, redact
from workbook.report.errors import EnvironmentBusy, OutputsError, RunError, RunInterrupted
from workbook.report.finish import WATCHDOG_LOG, finalize
from workbook.report.notebooks import (
    NOTEBOOKS_DIR,
    NotebookResult,
    RunResult,
    check_functions,
    execute,
    notebook_parameters,
    parse_since,
    selected,
)

__all__ = ["EnvironmentBusy", "Plan", "RunError", "RunInterrupted", "prepare", "run"]
Say = Callable[[str], None]


@dataclass
class Plan:
    """A run's arguments, all checked: nothing has been created yet."""

    settings: config.Settings
    since: str
    names: list[str]
    notebooks_dir: Path
    functions: list[str] | None
    traffic_s: float | None
    outputs_dir: Path | None
    base: Path                       # outputs/<env>
    warning: str | None = None


def prepare(env: str, since: str | None = None, only: Sequence[str] | None = None, outputs_dir: Path | None = None,
            notebooks_dir: Path | None = None, functions: Sequence[str] | None = None,
            traffic_s: float | None = None) -> Plan:
    """Check every argument, the notebooks and the outputs folder; raise before anything is created."""
    settings = config.load(env)                       # bad params fail here, before any kernel starts
    since = since or settings.params.report.since
    parse_since(since)
    names = selected(only)
    notebooks_dir = notebooks_dir or NOTEBOOKS_DIR
    missing = [n for n in names if not (notebooks_dir / f"{n}.ipynb").is_file()]
    if missing:
        raise BadInput(f"notebook {missing[0]}.ipynb not found in {notebooks_dir}")
    check_functions(functions)
    if traffic_s is not None and not (math.isfinite(traffic_s) and traffic_s >= 0):
        raise BadInput(f"--traffic-seconds {traffic_s:g}: expected 0 or more seconds (0 skips the traffic)")
    if settings.env != "local":
        _check_credentials(env)
    base = folders.outputs_root(outputs_dir) / env
    warning = folders.check_outputs(base)
    return Plan(settings, since, names, notebooks_dir, list(functions) if functions else None, traffic_s,
                outputs_dir, base, warning)


def _check_credentials(env: str) -> None:
    """AWS credentials resolve (any source boto3 knows), or BadInput now, not a notebook's error a minute in."""
    import botocore.exceptions  # noqa: PLC0415 - only for AWS environments
    import botocore.session  # noqa: PLC0415

    try:
        credentials = botocore.session.get_session().get_credentials()
    except botocore.exceptions.BotoCoreError as exc:
        raise BadInput(f"--env {env}: AWS credentials cannot be read: {exc}") from None
    if credentials is None:
        raise BadInput(f"--env {env}: no AWS credentials found (environment variables, AWS_PROFILE, ~/.aws, SSO or "
                       "an instance role); set them, or use --env local, which needs none")


def run(env: str, since: str | None = None, only: Sequence[str] | None = None, outputs_dir: Path | None = None,
        notebooks_dir: Path | None = None, functions: Sequence[str] | None = None,
        progress: Say | None = None, traffic_s: float | None = None,
        redactor: redact.Redactor | None = None) -> RunResult:
    """Run the notebooks of ``env`` in order into a run folder; raise RunError or RunInterrupted when not ok.

    ``redactor`` (the CLI's, which also redacts its terminal output) learns every secret the run
    meets; progress lines go through it before ``progress`` sees them.
    """
    plan = prepare(env, since, only, outputs_dir, notebooks_dir, functions, traffic_s)
    redactor = redactor or redact.Redactor()
    redactor.add(redact.environment_secrets(plan.settings.params.backend.passphrase_env))
    show = progress or (lambda message: print(message, file=sys.stderr, flush=True))

    def say(message: str) -> None:
        show(redactor.text(message))

    if plan.warning:
        say(plan.warning)
    lock = ownership.RunLock().acquire(str(plan.base)) if env == "local" else None
    try:
        return _Run(plan, redactor, say, lock).execute()
    finally:
        if lock:
            lock.release()


class _Run:
    """One run's state between its start and its finish."""

    def __init__(self, plan: Plan, redactor: redact.Redactor, say: Say, lock: ownership.RunLock | None) -> None:
        self.plan, self.redactor, self.say, self.lock = plan, redactor, say, lock
        self.local = plan.settings.env == "local"
        self.lease = ownership.Lease()
        self.run_id = uuid.uuid4().hex
        self.private = Path(tempfile.mkdtemp(prefix="workbook-run-"))   # the kernels' secret registry: never in outputs
        self.result: RunResult | None = None
        self.watchdog: guard.Watchdog | None = None
        self.phase = "the start"
        self.unexpected: BaseException | None = None
        self.early: tuple[str, str] = ("failed", "the run did not start")
        self.signals: guard.StopSignals | None = None
        self.marked_before: str | None = None
        self.notebook_started = 0.0

    @property
    def mark(self) -> str:
        return f"{ownership.RUN_ID_ENV}={self.run_id}"

    def execute(self) -> RunResult:
        with guard.StopSignals(self.say) as signals:
            self.signals = signals
            try:
                self._begin()
                self._work()
            except KeyboardInterrupt:
                processes.acted_on()
                self._end("interrupted", f"interrupted by {signals.received or 'SIGINT'} during {self.phase}")
            except WorkbookError as exc:
                self._end("failed", str(exc))
            except OSError as exc:
                self._end("failed", _os_error(exc, self.result.folder if self.result else self.plan.base, self.phase))
            except Exception as exc:  # noqa: BLE001 - a bug still gets the finish; it is raised again below
                self.unexpected = exc
                self._end("failed", f"unexpected error during {self.phase}: {type(exc).__name__}: {exc}")
            finally:
                signals.finishing()
                self._finish(signals.received)
        return self._outcome()

    # -- the work -----------------------------------------------------------------------------
    def _begin(self) -> None:
        plan = self.plan
        # Every process the run starts from here on carries its mark (the finish ends what is left of them).
        self.marked_before = os.environ.get(ownership.RUN_ID_ENV)
        os.environ[ownership.RUN_ID_ENV] = self.run_id
        try:
            folder = folders.new_partial_folder(plan.base)
        except OSError as exc:
            raise OutputsError(_os_error(exc, plan.base, "the creation of the run folder")) from None
        self.result = RunResult(env=plan.settings.env, folder=folder, planned=list(plan.names),
                                parameters=notebook_parameters(plan.settings, plan.since, folder, plan.functions))
        self.watchdog = guard.Watchdog(keep_fds=(self.lock.fileno(),) if self.lock else (), log=folder / WATCHDOG_LOG)
        self.watchdog.send(mark=self.mark, private=str(self.private), retention=self._retention,
                           outputs_dir=str(plan.outputs_dir) if plan.outputs_dir else None,
                           passphrase_env=plan.settings.params.backend.passphrase_env)
        self._snapshot()

    @property
    def _retention(self) -> int:
        return self.plan.settings.params.report.retention_runs

    def _work(self) -> None:
        if self.local:
            self._start_local()
        else:
            self._learn_stack_secrets()
        environment = {ownership.RUN_ID_ENV: self.run_id, redact.REGISTRY_ENV: str(self.private / "registered")}
        if self.local:
            environment[ownership.OWNER_ENV] = self.lease.owner or ""
        names = self.plan.names
        for index, name in enumerate(names, start=1):
            processes.checkpoint()   # a stop signal whose interrupt a callback swallowed ends the run here
            self._notebook(index, name, environment)
            if self.result.notebooks[-1].status != "ok":
                break

    def _start_local(self) -> None:
        plan, result = self.plan, self.result
        self.phase = "the local environment's start"
        started = time.perf_counter()
        ownership.acquire(plan.settings, self.lease, self.say, notify=lambda lease: self.watchdog.send(lease=lease.__dict__))
        processes.checkpoint()
        result.phases["local start"] = time.perf_counter() - started
        self._learn(redact.local_secrets())       # while the environment is up: the default path's secrets
        duration_s = plan.settings.params.local.traffic_duration_s if plan.traffic_s is None else plan.traffic_s
        if duration_s > 0:
            self.phase = "the traffic"
            started = time.perf_counter()
            self.say(f"local traffic: {duration_s:.0f} s of mixed load, with a share of bad input ...")
            outcome = traffic.run(self.lease.state, plan.settings, profile="mixed", duration_s=duration_s,
                                  progress=sys.stderr.isatty())
            self.say(traffic.format_summary(outcome))
            result.phases["traffic"] = time.perf_counter() - started
            ownership.check(self.lease, "the traffic")
        self._snapshot()

    def _learn_stack_secrets(self) -> None:
        """On AWS: the stack's own secrets (the JWT key among them), read with the run's credentials."""
        names = stack_secret_names(self.plan.settings)
        values, problems = redact.stack_secrets(names, self.plan.settings.params.aws_region)
        self._learn(values)
        if problems:
            self.say(f"warning: could not read {len(problems)} of the stack's secrets for redaction "
                     f"({'; '.join(problems[:3])}); they are redacted only where they appear in a known form")

    def _learn(self, values: set[str]) -> None:
        self.redactor.add(values)
        self.watchdog.send(secrets=sorted(values))

    def _notebook(self, index: int, name: str, environment: dict[str, str]) -> None:
        total, result = len(self.plan.names), self.result
        self.phase = f"notebook {name}"
        if self.local:
            ownership.check(self.lease, f"the start of {name}")
        self.say(f"[{index}/{total}] {name} ...")
        result.notebooks.append(NotebookResult(name, "running"))
        self.notebook_started = time.perf_counter()
        self._snapshot()
        outcome = execute(name, result.folder, result.parameters, self.plan.notebooks_dir, environment=environment)
        processes.checkpoint()
        outcome.error = self.redactor.text(outcome.error) if outcome.error else None
        result.notebooks[-1] = outcome
        result.phases[f"notebook {name}"] = outcome.seconds
        self._snapshot()
        if self.local and not ownership.still_there(self.lease):
            outcome.status, outcome.error = "failed", "the local environment stopped while it ran"
            ownership.check(self.lease, name)
        if outcome.status != "ok":
            where = f" at cell {outcome.cell}" if outcome.cell is not None else ""
            self.say(f"[{index}/{total}] {name} FAILED{where}: {outcome.error}")
        else:
            self.say(f"[{index}/{total}] {name} ok ({outcome.seconds:.1f} s)")

    def _snapshot(self) -> None:
        if self.watchdog and self.result:
            self.watchdog.send(result=self.result.to_dict(), phase=self.phase)

    def _end(self, status: str, reason: str) -> None:
        if self.result is not None:
            self.result.status, self.result.reason = status, self.redactor.text(reason)
        else:
            self.early = (status, self.redactor.text(reason))

    # -- the finish, whatever ended the work ----------------------------------------------------
    def _finish(self, received: str | None) -> None:
        """Stop what the run started, learn the last secrets, then finalize the folder. Never raises."""
        for step in (self._release_local, self._reap):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - every step runs; a failure is said, not raised
                self.say(f"workbook: {step.__name__.strip('_').replace('_', ' ')} failed: "
                         f"{self.redactor.text(str(exc))}")
        result = self.result
        if result is not None:
            if result.notebooks and result.notebooks[-1].status == "running":
                result.notebooks[-1].seconds = time.perf_counter() - self.notebook_started
            if received and result.status != "interrupted":
                result.status = "interrupted"
                result.reason = f"interrupted by {received} during {self.phase}"
            self.redactor.add(redact.registered(self.private / "registered"))
            try:
                finalize(result, self.redactor, self.say, self._retention, self.plan.outputs_dir,
                         received=lambda: self.signals.received if self.signals else None)
            except OSError as exc:
                self.say(f"workbook: could not finish the run folder: {_os_error(exc, result.folder, 'the finish')}")
            except Exception as exc:  # noqa: BLE001 - the watchdog must still hear "done"; the error is said
                self.say(f"workbook: could not finish the run folder {result.folder}: {type(exc).__name__}: "
                         f"{self.redactor.text(str(exc))}")
        shutil.rmtree(self.private, ignore_errors=True)
        if self.watchdog:
            self.watchdog.done()

    def _reap(self) -> None:
        """End what carries the run's mark: its kernels, and anything a cut-off start left unrecorded."""
        guard.reap(self.mark, exclude=(self.watchdog.process.pid,) if self.watchdog else ())
        if self.marked_before is None:
            os.environ.pop(ownership.RUN_ID_ENV, None)
        else:
            os.environ[ownership.RUN_ID_ENV] = self.marked_before

    def _release_local(self) -> None:
        if not self.local:
            return
        if ownership.still_there(self.lease):
            self._learn(redact.local_secrets())    # secrets made during the run, before they go away
        ownership.release(self.lease, self.say, self.mark)

    def _outcome(self) -> RunResult:
        result = self.result
        if self.unexpected is not None:
            raise self.unexpected
        if result is None:
            status, reason = self.early
            if status == "interrupted":
                raise RunInterrupted(f"{reason}; nothing was created")
            raise RunError(reason)
        folder = result.folder if result.folder.is_dir() else None
        where = f"; the run folder: {folder}" if folder else "; no run folder was kept (nothing to show)"
        if result.status == "interrupted":
            raise RunInterrupted(f"{result.reason}{where} (status interrupted; `latest` unchanged)", folder)
        if result.status != "ok":
            runbook = f"; partial runbook: {folder / 'runbook.html'}" if folder and \
                (folder / "runbook.html").is_file() else where
            raise RunError(f"{result.reason}{runbook}", folder)
        return result


def stack_secret_names(settings: config.Settings) -> list[str]:
    """The Secrets Manager names an environment's stacks use: its own secrets and the foundation's."""
    from workbook.deploy.plan import offline_plan  # noqa: PLC0415 - Pulumi's mocks (2 s) only for AWS runs

    plan = offline_plan(settings.env, settings)
    names = {r["inputs"].get("name") for r in plan.of_type("aws:secretsmanager/secret:Secret")}
    names |= {v.split(":secret:", 1)[1].rsplit("-", 1)[0] for v in plan.foundation_outputs.values()
              if isinstance(v, str) and ":secret:" in v}
    return sorted(n for n in names if n)


def _os_error(exc: OSError, folder: Path, phase: str) -> str:
    """An OS error as one line that names the path (the run folder when the error does not say)."""
    return f"{exc.filename or folder}: {exc.strerror or exc} (during {phase})"

