"""Runs the notebooks with Papermill, one folder per run, and exports the HTML runbook.

A run writes ``outputs/<env>/<UTC timestamp>/`` holding each executed notebook, ``runbook.html``
(no code cells, charts embedded, a table of contents, the run's parameters and time on top) and
``summary.json``; ``outputs/<env>/latest`` points at the newest run. A failing notebook stops the
run with a non-zero exit naming the notebook and cell, and the partial runbook shows the error.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from infra import config, specs

NOTEBOOKS_DIR = config.REPO_ROOT / "notebooks"
OUTPUTS_DIR = Path(os.environ.get("WORKBOOK_OUTPUTS_DIR", config.REPO_ROOT / "outputs"))
# Run order: the summary reads what the others recorded, so it runs last and leads the runbook.
RUN_ORDER = ("01-deploy", "02-metrics", "03-cold-starts", "04-cost", "05-tuning", "00-summary")
RUNBOOK_ORDER = ("00-summary", "01-deploy", "02-metrics", "03-cold-starts", "04-cost", "05-tuning")
KERNEL = "python3"
_SINCE = re.compile(r"^(\d+)([mhd])$")


class RunError(Exception):
    """A notebook failed; the run folder still holds the partial runbook."""

    def __init__(self, message: str, folder: Path) -> None:
        super().__init__(message)
        self.folder = folder


@dataclass
class NotebookResult:
    name: str
    status: str                       # ok | failed | skipped
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

    @property
    def ok(self) -> bool:
        return all(n.status == "ok" for n in self.notebooks)


def parse_since(value: str) -> int:
    """``'24h'`` -> seconds. Accepts m, h and d."""
    match = _SINCE.match(value or "")
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"--since {value!r}: expected a positive number of minutes, hours or days, like 90m, 24h or 7d")
    return int(match.group(1)) * {"m": 60, "h": 3600, "d": 86400}[match.group(2)]


def new_run_folder(env: str, outputs_dir: Path | None = None, now: datetime | None = None) -> Path:
    """Create ``outputs/<env>/<UTC timestamp>/`` and point ``outputs/<env>/latest`` at it."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    base = (outputs_dir or OUTPUTS_DIR) / env
    folder = base / stamp
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = base / f"{stamp}-{suffix}"
    folder.mkdir(parents=True)
    latest = base / "latest"
    tmp = base / ".latest.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(folder.name)
    tmp.replace(latest)   # atomic switch
    return folder


def prune_runs(env: str, keep: int, outputs_dir: Path | None = None) -> list[Path]:
    """Delete all but the newest ``keep`` runs of ``env``; returns what was removed."""
    base = (outputs_dir or OUTPUTS_DIR) / env
    if not base.is_dir():
        return []
    runs = sorted((p for p in base.iterdir() if p.is_dir() and not p.is_symlink() and re.match(r"^\d{8}T\d{6}Z", p.name)),
                  key=lambda p: p.name)
    removed = runs[:-keep] if keep > 0 else runs
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed


def previous_run_file(run_folder: str | Path | None, filename: str) -> Path | None:
    """``filename`` from the newest earlier run of the same environment, or None."""
    if not run_folder:
        return None
    folder = Path(run_folder)
    earlier = sorted((p for p in folder.parent.iterdir()
                      if p.is_dir() and not p.is_symlink() and p.name < folder.name and (p / filename).is_file()),
                     key=lambda p: p.name)
    return earlier[-1] / filename if earlier else None


def notebook_parameters(settings: config.Settings, since: str, folder: Path,
                        functions: Sequence[str] | None = None) -> dict[str, Any]:
    """The one ``parameters`` cell's values for every notebook of a run."""
    since_s = parse_since(since)
    unknown = [f for f in functions or () if f not in specs.FUNCTION_KEYS]
    if unknown:
        raise ValueError(f"unknown function {unknown[0]!r}; known: {', '.join(specs.FUNCTION_KEYS)}")
    return {
        "env": settings.env,
        "region": settings.params.aws_region,
        "since": since,
        "since_s": since_s,
        "functions": list(functions or specs.FUNCTION_KEYS),
        "run_folder": str(folder),
        "power_values": [128, 256, 512, 1024, 1769, 3008],
        "num_invocations": 8,       # per power value; adaptive tuning stops earlier when confident
        "strategy": "cost",
        "balanced_weight": 0.5,
        "discard_top_bottom": 0.2,
        "tune_functions": ["file-processor"],
        "apply_patch": False,
        "interactive": False,
    }


def _kernel_manager(log_path: Path) -> type:
    """A kernel manager whose kernel process writes its own stderr (start-up chatter) to ``log_path``.

    Cell output still reaches the notebook through the kernel's channels; only the process's
    stderr, which would otherwise interleave with the run's progress lines, goes to the log.
    """
    from jupyter_client.manager import AsyncKernelManager

    class RunKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            with open(log_path, "ab") as log:
                kw["stderr"] = log
                await super()._async_launch_kernel(kernel_cmd, **kw)

        _launch_kernel = _async_launch_kernel

    return RunKernelManager


def execute(name: str, folder: Path, parameters: dict[str, Any], notebooks_dir: Path | None = None,
            progress: bool = False) -> NotebookResult:
    """Run one notebook with Papermill into the run folder (kernel stderr in ``kernels.log``)."""
    import papermill as pm

    source = (notebooks_dir or NOTEBOOKS_DIR) / f"{name}.ipynb"
    target = folder / f"{name}.ipynb"
    started = time.perf_counter()
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # charts as image/png outputs
    try:
        pm.execute_notebook(str(source), str(target), parameters=parameters, kernel_name=KERNEL,
                            progress_bar=progress, cwd=str(folder), report_mode=False,
                            kernel_manager_class=_kernel_manager(folder / "kernels.log"))
    except pm.PapermillExecutionError as exc:
        return NotebookResult(name, "failed", time.perf_counter() - started,
                              error=f"{exc.ename}: {exc.evalue}", cell=exc.exec_count)
    return NotebookResult(name, "ok", time.perf_counter() - started)


def run(env: str, since: str | None = None, only: Sequence[str] | None = None, outputs_dir: Path | None = None,
        notebooks_dir: Path | None = None, functions: Sequence[str] | None = None,
        progress: Callable[[str], None] | None = None, traffic_s: float | None = None) -> RunResult:
    """Run the notebooks of ``env`` in order; write the run folder; raise RunError on a failure."""
    settings = config.load(env)                       # bad params fail here, before any kernel starts
    since = since or settings.params.report.since
    names = _selected(only)
    notebooks_dir = notebooks_dir or NOTEBOOKS_DIR
    missing = [n for n in names if not (notebooks_dir / f"{n}.ipynb").is_file()]
    if missing:
        raise FileNotFoundError(f"notebook {missing[0]}.ipynb not found in {notebooks_dir}")
    folder = new_run_folder(env, outputs_dir)
    parameters = notebook_parameters(settings, since, folder, functions)
    say = progress or (lambda message: print(message, file=sys.stderr, flush=True))
    result = RunResult(env=env, folder=folder, parameters=parameters)
    started_at = datetime.now(timezone.utc)
    with ExitStack() as stack:
        if env == "local":
            _start_local(stack, settings, result, say, traffic_s)
        for index, name in enumerate(names, start=1):
            say(f"[{index}/{len(names)}] {name} ...")
            outcome = execute(name, folder, parameters, notebooks_dir)
            result.notebooks.append(outcome)
            result.phases[f"notebook {name}"] = outcome.seconds
            if outcome.status != "ok":
                say(f"[{index}/{len(names)}] {name} FAILED at cell {outcome.cell}: {outcome.error}")
                result.notebooks += [NotebookResult(n, "skipped") for n in names[index:]]
                break
            say(f"[{index}/{len(names)}] {name} ok ({outcome.seconds:.1f} s)")
    export_started = time.perf_counter()
    export_runbook(folder, result)
    result.phases["export"] = time.perf_counter() - export_started
    _write_summary(result, started_at)
    redact_folder(folder, known_secrets())   # last: it covers every file the run wrote
    prune_runs(env, settings.params.report.retention_runs, outputs_dir)
    failed = [n for n in result.notebooks if n.status == "failed"]
    if failed:
        f = failed[0]
        raise RunError(f"notebook {f.name}.ipynb failed at cell {f.cell}: {f.error}; "
                       f"partial runbook: {folder / 'runbook.html'}", folder)
    return result


def _selected(only: Sequence[str] | None) -> list[str]:
    if not only:
        return list(RUN_ORDER)
    wanted = [name.removesuffix(".ipynb") for name in only]
    unknown = [n for n in wanted if n not in RUN_ORDER]
    if unknown:
        raise ValueError(f"--only {unknown[0]!r}: unknown notebook; choose from {', '.join(RUN_ORDER)}")
    return [n for n in RUN_ORDER if n in wanted]


def _start_local(stack: ExitStack, settings: config.Settings, result: RunResult,
                 say: Callable[[str], None], traffic_s: float | None) -> None:
    """Use the running local environment or start one (stopped at the end), then drive traffic."""
    from workbook.local import manager, traffic

    started = time.perf_counter()
    state = manager.current()
    if state is None:
        say("local environment: starting (moto's server, PostgreSQL, the sandbox) ...")
        state = manager.start(settings.env, settings=settings, progress=lambda m: say(f"  {m}"))
        stack.callback(_stop_local, say)
    else:
        say(f"local environment: using the one already running ({state.get('endpoint_url')})")
    manager.activate()
    result.phases["local start"] = time.perf_counter() - started
    duration_s = settings.params.local.traffic_duration_s if traffic_s is None else traffic_s
    if duration_s > 0:
        started = time.perf_counter()
        say(f"local traffic: {duration_s:.0f} s of mixed load, with a share of bad input ...")
        outcome = traffic.run(state, settings, profile="mixed", duration_s=duration_s, progress=sys.stderr.isatty())
        say(traffic.format_summary(outcome))
        result.phases["traffic"] = time.perf_counter() - started


def _stop_local(say: Callable[[str], None]) -> None:
    from workbook.local import manager

    manager.stop()
    say("local environment: stopped")


def _write_summary(result: RunResult, started_at: datetime) -> None:
    scraps: dict[str, Any] = {}
    for nb in result.notebooks:
        path = result.folder / f"{nb.name}.ipynb"
        if nb.status == "ok" and path.is_file():
            scraps[nb.name] = read_scraps(path)
    summary = {
        "env": result.env,
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "ok": result.ok,
        "parameters": result.parameters,
        "notebooks": [nb.__dict__ for nb in result.notebooks],
        "phases_s": {k: round(v, 2) for k, v in result.phases.items()},
        "results": scraps,
    }
    (result.folder / "summary.json").write_text(json.dumps(summary, indent=2, default=str))


def read_scraps(path: Path) -> dict[str, Any]:
    """What a notebook recorded (``workbook.record.glue`` or ``scrapbook.glue`` with JSON data)."""
    from workbook import record

    return record.read(str(path))


# ---------------------------------------------------------------------------------------------
# The runbook.
# ---------------------------------------------------------------------------------------------
def export_runbook(folder: Path, result: RunResult) -> Path:
    """One HTML page: header with parameters and time, a table of contents, each notebook without code."""
    import nbformat
    from nbconvert import HTMLExporter

    order = [n for n in RUNBOOK_ORDER if any(r.name == n for r in result.notebooks)]
    status = {r.name: r for r in result.notebooks}
    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    book.metadata["title"] = f"Runbook: {result.env}, {folder.name}"
    params = "\n".join(f"| `{k}` | `{_short(v)}` |" for k, v in result.parameters.items() if k != "run_folder")
    failed = [r for r in result.notebooks if r.status == "failed"]
    banner = ""
    if failed:
        f = failed[0]
        banner = (f"\n\n> **This run failed** in `{f.name}` at cell {f.cell}: `{html.escape(f.error or '')}`. "
                  "The sections below show what ran, and the error where it happened.\n")
    toc = "\n".join(
        f"{i}. [{_title(name)}](#{name}) — {status[name].status}" for i, name in enumerate(order, start=1))
    book.cells.append(nbformat.v4.new_markdown_cell(
        f"# Runbook — `{result.env}`\n\nRun `{folder.name}` "
        f"(UTC), generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.{banner}\n\n"
        f"## Contents\n\n{toc}\n\n## Parameters\n\n| parameter | value |\n|---|---|\n{params}\n"))
    for name in order:
        book.cells.append(nbformat.v4.new_markdown_cell(f'<a id="{name}"></a>\n\n# {_title(name)}', id=f"{name}-title"))
        path = folder / f"{name}.ipynb"
        if status[name].status == "skipped" or not path.is_file():
            book.cells.append(nbformat.v4.new_markdown_cell("*Not run: an earlier notebook failed.*"))
            continue
        executed = nbformat.read(str(path), as_version=4)
        for index, cell in enumerate(executed.cells):
            cell["id"] = f"{name}-{index:02d}"      # unique across the combined book
            if "parameters" in cell.metadata.get("tags", []) or "injected-parameters" in cell.metadata.get("tags", []):
                continue
            if cell.cell_type == "code":
                # Scrapbook's records are data for summary.json, not something to show.
                cell.outputs = [o for o in cell.get("outputs", [])
                                if not any(k.startswith("application/scrapbook") for k in o.get("data", {}))]
            if cell.cell_type == "markdown":
                # Demote notebook headings under the section heading.
                cell.source = re.sub(r"^(#{1,5}) ", r"#\1 ", cell.source, flags=re.M)
            book.cells.append(cell)
    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(book)
    target = folder / "runbook.html"
    target.write_text(body, encoding="utf-8")
    return target


def _title(name: str) -> str:
    number, _, words = name.partition("-")
    return f"{number} · {words.replace('-', ' ').capitalize()}"


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------------------------------------
# Secrets never reach the outputs.
# ---------------------------------------------------------------------------------------------
_SECRET_ENV = re.compile(r"(PASSPHRASE|TOKEN|SECRET|PASSWORD|API_KEY|ACCESS_KEY)", re.I)
REDACTED = "[redacted]"


def known_secrets() -> set[str]:
    """Values that must never appear in an output: secret-looking env vars and the local env's secrets."""
    values = {v for k, v in os.environ.items() if _SECRET_ENV.search(k) and len(v) >= 8 and v != "testing"}
    from workbook import aws

    if aws.is_local():
        values |= _local_secret_values()
    return {v for v in values if len(v) >= 8}


def _local_secret_values() -> set[str]:
    """Every secret string the local endpoint holds (whole values and their JSON fields)."""
    from workbook import aws

    client = aws.client("secretsmanager")
    values: set[str] = set()
    try:
        for page in client.get_paginator("list_secrets").paginate():
            for entry in page.get("SecretList", []):
                secret = client.get_secret_value(SecretId=entry["ARN"]).get("SecretString") or ""
                values.add(secret)
                try:
                    parsed = json.loads(secret)
                except ValueError:
                    continue
                values |= set(_secret_leaves(parsed))
    except Exception as exc:  # noqa: BLE001 - redaction must not fail a finished run; say so instead
        print(f"workbook: could not read the local secrets for redaction: {exc}", file=sys.stderr)
    return values


def _secret_leaves(value: Any, key: str = "") -> Iterable[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _secret_leaves(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _secret_leaves(v, key)
    elif isinstance(value, str) and not value.startswith(("http://", "https://")) and key not in ("host", "dbname", "username"):
        yield value


def redact_folder(folder: Path, secrets: Iterable[str]) -> list[Path]:
    """Replace every known secret value in the run folder's files; returns the files changed."""
    secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
    changed = []
    if not secrets:
        return changed
    for path in folder.rglob("*"):
        if not path.is_file() or path.suffix not in (".ipynb", ".html", ".json", ".txt", ".md", ".log", ".csv", ".yaml"):
            continue
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        clean = text
        for secret in secrets:
            clean = clean.replace(secret, REDACTED)
            escaped = json.dumps(secret)[1:-1]
            if escaped != secret:
                clean = clean.replace(escaped, REDACTED)
        if clean != text:
            path.write_text(clean, encoding="utf-8", errors="surrogateescape")
            changed.append(path)
    return changed


# ---------------------------------------------------------------------------------------------
# Scheduled reports.
# ---------------------------------------------------------------------------------------------
_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z]+$")


def schedule_lines(env: str, cron: str, repo: Path | None = None) -> dict[str, str]:
    """A crontab line and a systemd service + timer pair that run ``workbook run --env ENV``."""
    fields = cron.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ValueError(f"--cron {cron!r}: expected five crontab fields, like \"0 6 * * *\" (minute hour dom month dow)")
    config.load(env)
    repo = (repo or config.REPO_ROOT).resolve()
    workbook = repo / ".venv" / "bin" / "workbook"
    log = repo / "outputs" / env / "schedule.log"
    command = f"cd {repo} && {workbook} run --env {env} >> {log} 2>&1"
    crontab = f"{cron} {command}  # lambda-workbook report {env}"
    on_calendar = _on_calendar(fields)
    service = (f"[Unit]\nDescription=Lambda workbook report ({env})\n\n[Service]\nType=oneshot\n"
               f"WorkingDirectory={repo}\nExecStart={workbook} run --env {env}\n")
    timer = (f"[Unit]\nDescription=Lambda workbook report ({env}) on schedule\n\n[Timer]\nOnCalendar={on_calendar}\n"
             f"Persistent=true\n\n[Install]\nWantedBy=timers.target\n")
    return {"crontab": crontab, "service": service, "timer": timer}


def _on_calendar(fields: list[str]) -> str:
    minute, hour, dom, month, dow = fields

    def part(value: str) -> str:
        return "*" if value == "*" else value.replace("*/", "0/")

    days = "" if dow == "*" else f"{dow} "
    return f"{days}*-{part(month)}-{part(dom)} {part(hour)}:{part(minute)}:00"


def install_crontab(line: str) -> None:
    """Add ``line`` to the user's crontab, replacing an earlier entry for the same env."""
    import subprocess

    marker = line.rsplit("#", 1)[1].strip()
    current = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    existing = current.stdout.splitlines() if current.returncode == 0 else []
    kept = [entry for entry in existing if not entry.endswith(marker)]
    subprocess.run(["crontab", "-"], input="\n".join(kept + [line]) + "\n", text=True, check=True)


# ---------------------------------------------------------------------------------------------
# CLI.
# ---------------------------------------------------------------------------------------------
def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="run the notebooks for an environment; prints the run folder")
    parser.add_argument("--env", required=True, help="environment: a params/<env>.yaml file")
    parser.add_argument("--since", default=None, help="time range to analyse, like 90m, 24h or 7d (default: params)")
    parser.add_argument("--only", nargs="+", metavar="NOTEBOOK", help=f"run only these: {', '.join(RUN_ORDER)}")
    parser.add_argument("--function", dest="functions", action="append", help="limit to a function (repeatable)")
    parser.add_argument("--traffic-seconds", type=float, default=None,
                        help="--env local only: seconds of traffic before the notebooks (default: params local)")
    parser.set_defaults(func=_cli_run)

    schedule = subparsers.add_parser("schedule", help="print (or install) a crontab line and a systemd timer")
    schedule.add_argument("--env", required=True)
    schedule.add_argument("--cron", required=True, help='five crontab fields, like "0 6 * * *"')
    schedule.add_argument("--install", action="store_true", help="add the line to the current user's crontab")
    schedule.set_defaults(func=_cli_schedule)


def _cli_run(args: argparse.Namespace) -> int:
    try:
        result = run(args.env, since=args.since, only=args.only, functions=args.functions,
                     traffic_s=args.traffic_seconds)
    except RunError as exc:
        print(f"workbook: {exc}", file=sys.stderr)
        print(exc.folder)
        return 1
    except (ValueError, FileNotFoundError) as exc:
        print(f"workbook: {exc}", file=sys.stderr)
        return 2
    print(result.folder)
    return 0


def _cli_schedule(args: argparse.Namespace) -> int:
    try:
        lines = schedule_lines(args.env, args.cron)
    except ValueError as exc:
        print(f"workbook: {exc}", file=sys.stderr)
        return 2
    print("# crontab (crontab -e):")
    print(lines["crontab"])
    print(f"\n# or systemd: /etc/systemd/system/lambda-workbook-{args.env}.service")
    print(lines["service"])
    print(f"# /etc/systemd/system/lambda-workbook-{args.env}.timer, then: "
          f"systemctl enable --now lambda-workbook-{args.env}.timer")
    print(lines["timer"])
    if args.install:
        install_crontab(lines["crontab"])
        print(f"# installed in the crontab of {os.environ.get('USER', 'this user')}")
    return 0
