"""What ``workbook local start | stop | restart | status | invoke | traffic`` do (their parser is ``workbook.cli``).

Exit codes: 0 success; 1 a function error or throttle (``invoke``), or a failed start; 2 bad
input (unknown function, unreadable or invalid event JSON, bad option); 3 ``status`` when no
environment is running, or one of its processes is dead or stale; 130 interrupted (Ctrl-C or
SIGTERM: what the command had started is stopped first). Errors are raised (``LocalError`` and its family) and ``workbook.cli``
maps them to their exit codes; results that are not errors are returned.
"""
from __future__ import annotations

import argparse
import base64
import json
import re
import sys
from pathlib import Path
from typing import Any

from infra import config, specs
from workbook.local import manager, traffic
from workbook.local.client import invoke_remote, resolve_function, topology
from workbook.local.errors import AlreadyRunningError, InvocationError, LocalInputError
from workbook.local.sandbox import handler_python
from workbook.local.sandbox.formats import Status, status_fields


def _err(message: str) -> None:
    print(f"workbook local: {message}", file=sys.stderr)


# -- start / stop / status ---------------------------------------------------------------------------
def _progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def cmd_start(args: argparse.Namespace) -> int:
    try:
        recorded = manager.start(args.env, progress=_progress)
    except AlreadyRunningError as exc:
        _err(str(exc))
        return 0
    _print_endpoints(recorded)
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    """Restart every process of the environment (its owner, data folder and free ports kept), or start one."""
    recorded = manager.restart(args.env, progress=_progress)
    _print_endpoints(recorded)
    return 0


def _print_endpoints(recorded: dict) -> None:
    print(f"local environment running (state: {recorded['state_dir']}/state.json)")
    for name, url in manager.endpoints(recorded).items():
        print(f"  {name:<18} {url}")
    print(f"  cpu limit          {recorded.get('cpu_limit')}")
    print(f"  memory limit       {recorded.get('memory_limit')}")
    print(f"  handlers on        {recorded.get('handlers_on') or handler_python().describe()}")
    print("use it from Python with: import workbook.local; workbook.local.activate()")
    print(f"or from a shell with:    export AWS_ENDPOINT_URL={recorded['endpoint_url']}")


def cmd_stop(args: argparse.Namespace) -> int:
    stopped = manager.stop(progress=_progress)
    print("stopped" if stopped else "no local environment was running")
    return 0


_HEALTH_WORDS = {
    "running": "yes",
    "degraded": "no: some processes died; `workbook local start` restarts them (data kept)",
    "stale": "no: the state file is stale (nothing it records runs); `workbook local stop` cleans it",
    "stopped": "no",
}
_STATE_WORDS = {"alive": "alive", "dead": "DEAD", "replaced": "STALE: pid now runs another program",
                "unproven": "STALE: no start time recorded, cannot be proved ours", "not started": "not started"}


def cmd_status(args: argparse.Namespace) -> int:
    """Exit 0 when the environment runs and every process is healthy, else 3."""
    report = manager.status()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if report["running"] else 3
    print(f"running:       {_HEALTH_WORDS[report['health']]}")
    print(f"cpu limit:     {report['cpu_limit']}"
          + ("  (CFS quota per environment)" if "cfs" in report["cpu_limit"] else "  (no writable cpu cgroup)"))
    print(f"memory limit:  {report['memory_limit']}")
    print(f"handlers on:   {report['handler_python']['summary']}")
    print(f"state file:    {report['state_file']}")
    if report["health"] == "stopped":
        return 3
    print(f"owner:         {report['owner']} (generation {report['generation']})")
    for name, process in report["processes"].items():
        port = f" port {process['port']}" if process.get("port") else ""
        now = f" ({process['now']})" if process.get("now") else ""
        print(f"  {name:<10} pid {process['pid']}{port} {_STATE_WORDS[process['state']]}{now}")
    if not report["running"]:
        return 3
    for name, url in report["endpoints"].items():
        print(f"  {name:<18} {url}")
    engine = report.get("engine") or {}
    if engine.get("functions"):
        print(f"  {'function':<22}{'memory':>8}{'timeout':>9}{'reserved':>10}{'warm':>6}{'busy':>6}")
        for key, fn in engine["functions"].items():
            reserved = fn["reserved_concurrency"] if fn["reserved_concurrency"] is not None else "-"
            print(f"  {key:<22}{fn['memory_mb']:>6}MB{fn['timeout_s']:>8.0f}s{reserved!s:>10}"
                  f"{fn['warm_environments']:>6}{fn['in_flight']:>6}")
        print(f"  schedules fired: {engine.get('schedules_fired')}  virtual time: {engine.get('virtual_time')}")
    return 0


# -- invoke ----------------------------------------------------------------------------------------
def read_event(source: str) -> Any:
    """The event from a file or stdin (``-``); LocalInputError with a message that says what is wrong."""
    if source == "-":
        text = sys.stdin.read()
        where = "stdin"
    else:
        path = Path(source)
        if not path.is_file():
            raise LocalInputError(f"--event {source}: no such file")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LocalInputError(f"--event {source}: cannot read it ({exc})") from None
        where = source
    if not text.strip():
        raise LocalInputError(f"--event {where}: empty; give a JSON event such as {{}}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LocalInputError(f"--event {where}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def report_line(headers: dict) -> str | None:
    """The REPORT line from the invocation's log tail (text) or its platform.report (JSON)."""
    tail = base64.b64decode(headers.get("X-Amz-Log-Result", "") or b"").decode("utf-8", "replace")
    for line in reversed(tail.splitlines()):
        if line.startswith("REPORT RequestId:"):
            return line
    figures = json.loads(headers["X-Lwb-Report"]) if headers.get("X-Lwb-Report") else None
    if not figures:
        return None
    parts = [f"REPORT RequestId: {headers.get('x-amzn-RequestId', '')}", f"Duration: {figures['durationMs']:.2f} ms",
             f"Billed Duration: {figures['billedDurationMs']} ms", f"Memory Size: {figures['memorySizeMB']} MB",
             f"Max Memory Used: {figures['maxMemoryUsedMB']} MB"]
    if figures.get("initDurationMs") is not None:
        parts.append(f"Init Duration: {figures['initDurationMs']:.2f} ms")
    status = Status(figures["status"]) if figures.get("status") in {s.value for s in Status} else Status.SUCCESS
    parts.extend(status_fields(status, figures.get("errorType")))
    return "\t".join(parts)


def cmd_invoke(args: argparse.Namespace) -> int:
    if args.memory is not None and not specs.MEMORY_MIN_MB <= args.memory <= specs.MEMORY_MAX_MB:
        raise LocalInputError(f"--memory {args.memory}: out of range; Lambda allows "
                              f"{specs.MEMORY_MIN_MB}-{specs.MEMORY_MAX_MB} MB")
    event = read_event(args.event)
    recorded = manager.current()
    if recorded is None:
        print("... no local environment running; starting one (stop it with `workbook local stop`)", file=sys.stderr)
        recorded = manager.start("local", progress=_progress)
    function = resolve_function(recorded, args.function)
    if function is None:
        known = ", ".join(fn["key"] for fn in topology(recorded).get("functions", []))
        raise LocalInputError(f"unknown function {args.function!r}; known: {known}")
    result = invoke_remote(recorded, function, event, memory_mb=args.memory, invocation_type=args.invocation_type)
    headers = {k: v for k, v in result["headers"].items()}
    lowered = {k.lower(): v for k, v in headers.items()}
    engine_log = Path(recorded["state_dir"]) / "engine.log"
    if result["status"] == 429:
        raise InvocationError("An error occurred (TooManyRequestsException) when calling the Invoke operation: "
                              f"Rate Exceeded. (the engine's log: {engine_log})")
    if result["status"] >= 400:
        try:
            document = json.loads(result["payload"] or b"{}")
        except ValueError:
            document = {}
        message = (f"An error occurred ({document.get('__type', 'Error')}) when calling the Invoke operation: "
                   f"{document.get('message') or document.get('Message')}")
        if result["status"] not in (400, 404):
            message += f" (the engine's log: {engine_log})"
        raise (LocalInputError if result["status"] in (400, 404) else InvocationError)(message)
    if result["status"] == 202:
        print(json.dumps({"StatusCode": 202}))
        return 0
    if result["status"] == 204:
        print(json.dumps({"StatusCode": 204}))
        return 0
    sys.stdout.write(result["payload"].decode("utf-8", "replace") + "\n")
    sys.stdout.flush()
    # The request's log lines (START, the function's own, END, REPORT) on stderr, as `sam local invoke` shows them.
    tail = log_tail(lowered.get("x-amz-log-result", ""))
    for entry in tail:
        print(entry, file=sys.stderr)
    line = report_line({"X-Amz-Log-Result": lowered.get("x-amz-log-result", ""),
                        "X-Lwb-Report": lowered.get("x-lwb-report"), "x-amzn-RequestId": lowered.get("x-amzn-requestid")})
    if line and line not in tail:
        print(line, file=sys.stderr)
    where = full_logs(recorded, lowered)
    function_error = lowered.get("x-amz-function-error")
    if function_error:
        print(json.dumps({"StatusCode": 200, "FunctionError": function_error, "ExecutedVersion": "$LATEST"}),
              file=sys.stderr)
        _err(f"the function failed; {where}")
        return 1
    failures = _batch_item_failures(result["payload"])
    if failures:
        _err(f"{failures} record(s) reported in batchItemFailures (retried by their source); the log lines above "
             f"say why; {where}")
    elif len(base64.b64decode(lowered.get("x-amz-log-result", "") or b"")) >= 4096:
        _err(f"the log lines above are the last 4 KB; {where}")
    return 0


def log_tail(encoded: str) -> list[str]:
    """The invocation's log lines from ``X-Amz-Log-Result`` (base64 of Lambda's last 4 KB of them)."""
    return base64.b64decode(encoded or b"").decode("utf-8", "replace").splitlines()


def full_logs(recorded: dict, lowered_headers: dict) -> str:
    """Where the invocation's whole log went, as a command to read it."""
    group, stream = lowered_headers.get("x-lwb-log-group"), lowered_headers.get("x-lwb-log-stream")
    if not group:
        return f"the engine's log: {Path(recorded['state_dir']) / 'engine.log'}"
    return (f"full logs: aws logs tail {group} --endpoint-url {recorded['endpoint_url']} "
            f"--log-stream-names '{stream}' --since 1h")


def _batch_item_failures(payload: bytes) -> int:
    try:
        document = json.loads(payload or b"null")
    except ValueError:
        return 0
    failures = document.get("batchItemFailures") if isinstance(document, dict) else None
    return len(failures) if isinstance(failures, list) else 0


# -- traffic ----------------------------------------------------------------------------------------
def parse_duration_s(text: str) -> float:
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text or "")
    if not found:
        raise LocalInputError(f"--duration {text!r}: expected a number with an optional unit, e.g. 60s, 2m")
    value, unit = float(found.group(1)), found.group(2) or "s"
    seconds = value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    if not 1 <= seconds <= 3600:
        raise LocalInputError(f"--duration {text!r}: must be between 1s and 1h")
    return seconds


def cmd_traffic(args: argparse.Namespace) -> int:
    if not 0.0 <= args.bad_share <= 1.0:
        raise LocalInputError(f"--bad-share {args.bad_share}: must be between 0 and 1")
    settings = config.load("local")
    duration_s = parse_duration_s(args.duration) if args.duration else settings.params.local.traffic_duration_s
    recorded = manager.current()
    if recorded is None:
        print("... no local environment running; starting one (stop it with `workbook local stop`)", file=sys.stderr)
        recorded = manager.start("local", settings=settings, progress=_progress)
    manager.activate()
    summary = traffic.run(recorded, settings, profile=args.profile, duration_s=duration_s, bad_share=args.bad_share,
                          seed=args.seed, progress=not args.no_progress)
    print(traffic.format_summary(summary))
    return 0
