"""The ``workbook`` command: one parser, and the one place that maps errors to exit codes.

Exit codes: 0 done; 1 the operation or a notebook failed; 2 bad input (unknown env, malformed
params, a bad option), reported before anything is started or written; 130 interrupted. Every
error the workbook raises is a ``WorkbookError`` carrying its ``exit_code``; ``infra``'s
``ParamsError`` is bad input. ``workbook local status`` also returns 3 when nothing is running,
and ``workbook local invoke`` 1 when the function itself failed (results, not errors).

Each command imports its stage when it runs: importing every stage up front (pandas, Pulumi and
the AWS provider's SDK among them) takes about 2 s, against 0.3 s for ``workbook --help`` or
``workbook local status`` this way (measured with ``python -X importtime``). These are the only
deferred imports of the library, and each says so.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from infra import config, specs
from infra.config import ParamsError
from infra.project import ProjectNotFoundError
from workbook.errors import BadInput, ExitCode, WorkbookError

Command = Callable[[argparse.Namespace], int]


# ---------------------------------------------------------------------------------------------
# Parser.
# ---------------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse with the workbook's one-line errors (``workbook: ...``, exit 2), like params errors."""

    def error(self, message: str) -> None:  # type: ignore[override]
        command = self.prog.removeprefix("workbook").strip()
        where = f"{command}: " if command else ""
        self.exit(int(ExitCode.BAD_INPUT), f"workbook: {where}{message} (see `{self.prog} --help`)\n")


#: Options whose value may begin with '-' (argparse would take ``--since -5m`` for two options).
_DASHED_VALUES = ("--since",)


def _join_dashed_values(argv: list[str]) -> list[str]:
    """``--since -5m`` as ``--since=-5m``, so the option's own check says what is wrong with the value."""
    joined: list[str] = []
    index = 0
    while index < len(argv):
        if argv[index] in _DASHED_VALUES and index + 1 < len(argv) and argv[index + 1].startswith("-") \
                and argv[index + 1] != "--":
            joined.append(f"{argv[index]}={argv[index + 1]}")
            index += 2
            continue
        joined.append(argv[index])
        index += 1
    return joined


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="workbook",
        description="Run and tune the Lambda compute stack from notebooks; --env local needs no AWS account.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_run(commands)
    _add_plan(commands)
    _add_deploy(commands)
    _add_local(commands)
    _add_tune(commands)
    _add_schedule(commands)
    return parser


def _env(parser: argparse.ArgumentParser, **kwargs: Any) -> None:
    parser.add_argument("--env", required=True, help=f"environment: {', '.join(config.ENVIRONMENTS)} "
                        "(params/<env>.yaml)", **kwargs)


def _add_run(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run", help="run the notebooks for an environment; prints the run folder",
        description="Run every notebook (or --only some) for one environment with Papermill, into a new run "
        "folder under outputs/<env>/, and print that folder. --env local starts the local environment and "
        "drives traffic first.")
    _env(run)
    run.add_argument("--since", default=None, help="time range to analyse, like 90m, 24h or 7d (default: params)")
    run.add_argument("--only", nargs="+", metavar="NOTEBOOK",
                     help="run only these notebooks, e.g. 02-metrics 05-tuning (default: all, in order)")
    run.add_argument("--function", dest="functions", nargs="+", action="extend", metavar="KEY",
                     help="limit to these functions, e.g. api-processor data-processor (default: all)")
    run.add_argument("--traffic-seconds", type=_seconds, default=None, metavar="N",
                     help="--env local only: seconds of traffic before the notebooks, 0 for none (default: params local)")
    run.add_argument("--log", metavar="FILE", default=None,
                     help="also append the run's progress and result lines, redacted and time-stamped, to FILE "
                     "(what `workbook schedule` uses; default: none)")
    run.set_defaults(func=cmd_run, redacted_output=True)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number, 1 or more")
    return value


def _fraction(low: float, high: float, what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {what}, from {low:g} to {high:g}")
        return value
    return parse


def _memory_sizes(text: str) -> list[int]:
    """``128,512,1769`` -> sizes in MB, each one Lambda accepts."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r}: expected memory sizes in MB separated by commas, "
                                         "like 128,512,1769")
    wrong = [v for v in values if not specs.MEMORY_MIN_MB <= v <= specs.MEMORY_MAX_MB]
    if wrong:
        raise argparse.ArgumentTypeError(f"{wrong[0]} MB is outside Lambda's {specs.MEMORY_MIN_MB}-"
                                         f"{specs.MEMORY_MAX_MB} MB")
    return values


def _seconds(text: str) -> float:
    """A number of seconds, 0 or more (a bad value is a bad option: exit 2, before anything starts)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 0 or more seconds, like 30 (0: no traffic)")
    return value


def _add_plan(commands: argparse._SubParsersAction) -> None:
    plan_help = "the offline plan: every resource and output, under Pulumi's mocks (no CLI, no AWS)"
    plan = commands.add_parser("plan", help=plan_help, description=plan_help[0].upper() + plan_help[1:] + ".")
    _env(plan)
    plan.add_argument("--format", choices=("table", "json"), default="table",
                      help="a table, or JSON {resources, outputs} (default: table)")
    plan.set_defaults(func=cmd_plan)


_DEPLOY_COMMANDS = {
    "preview": "preview the environment's stacks through the Automation API (offline plan without the CLI)",
    "deploy": "deploy (pulumi up) the environment's stacks, foundation first when standalone",
    "refresh": "reconcile the stacks' state with AWS (recovery after an interrupted run)",
    "destroy": "delete the stacks' resources, compute first (prod needs --confirm-destroy)",
    "outputs": "print a deployed stack's outputs (secrets masked)",
}


def _add_deploy(commands: argparse._SubParsersAction) -> None:
    for name, help_text in _DEPLOY_COMMANDS.items():
        parser = commands.add_parser(name, help=help_text, description=help_text)
        _env(parser)
        stack_help = ("one stack only (default: every stack of the environment)" if name != "outputs"
                      else "which stack's outputs (default: compute)")
        parser.add_argument("--stack", choices=("compute", "foundation"), default=None, help=stack_help)
        if name == "deploy":
            parser.add_argument("--yes", "--approve", dest="approve", action="store_true",
                                help="apply in prod after the preview (prod always previews first; default: "
                                "preview only)")
        if name == "destroy":
            parser.add_argument("--confirm-destroy", metavar="NAME", default=None,
                                help="required in prod: the stack's fully qualified name, e.g. "
                                "organization/lwb-compute/prod (default: none)")
        if name == "refresh":
            parser.add_argument("--clear-pending-creates", action="store_true",
                                help="drop pending creates left by an interrupted run (check AWS first; default: keep them)")
        if name == "outputs":
            parser.add_argument("--format", choices=("table", "json"), default="table",
                                help="name = value lines, or JSON (default: table)")
        parser.add_argument("--quiet", action="store_true",
                            help="do not stream the Pulumi CLI's output (default: stream it)")
        parser.set_defaults(func=cmd_deploy, operation=name)


def _add_local(commands: argparse._SubParsersAction) -> None:
    local = commands.add_parser("local", help="the embedded default: local AWS endpoint and Lambda sandbox",
                                description="Manage the one local environment (moto, PostgreSQL, sandbox).")
    sub = local.add_subparsers(dest="local_command", metavar="COMMAND")
    local.set_defaults(func=lambda args: (local.print_help(), int(ExitCode.BAD_INPUT))[1])

    start = sub.add_parser("start", help="start moto, PostgreSQL and the sandbox; provision the plan",
                           description="Start the local environment: moto, PostgreSQL and the sandbox engine, "
                           "with the offline plan's resources provisioned; repair it when some process died.")
    start.add_argument("--env", default="local", help="params environment to run locally (default: local)")
    start.set_defaults(func=_local("cmd_start"))

    stop = sub.add_parser("stop", help="stop everything the local environment started",
                          description="Stop every process the local environment started (only those proved its own).")
    stop.set_defaults(func=_local("cmd_stop"))

    restart = sub.add_parser("restart", help="restart its processes, keeping PostgreSQL's data (or start one)",
                             description="Restart the local environment's processes, keeping PostgreSQL's data; "
                             "start one when none runs.")
    restart.add_argument("--env", default="local", help="params environment to run locally (default: local)")
    restart.set_defaults(func=_local("cmd_restart"))

    status = sub.add_parser("status", help="what runs, where, and how CPU and memory are limited; exit 3 if not running",
                            description="What runs, where, and how CPU and memory are limited. Exit code 0 when "
                            "the environment runs and every process is healthy, 3 otherwise.")
    status.add_argument("--json", action="store_true", help="print the status document as JSON (default: a table)")
    status.set_defaults(func=_local("cmd_status"))

    invoke = sub.add_parser("invoke", help="invoke a function; response on stdout, its log lines and REPORT on stderr",
                            description="Invoke one function in the running local environment, as `aws lambda "
                            "invoke` does: the response on stdout; the request's log lines and REPORT on stderr. "
                            "Exit 1 when the function itself failed.")
    invoke.add_argument("function", help=f"function key ({', '.join(specs.FUNCTION_KEYS)}) or name")
    invoke.add_argument("--event", required=True, help="JSON event file, or - for stdin")
    invoke.add_argument("--memory", type=int, default=None, metavar="MB",
                        help=f"run at this memory size ({specs.MEMORY_MIN_MB}-{specs.MEMORY_MAX_MB} MB; default: "
                        "the function's)")
    invoke.add_argument("--invocation-type", choices=("RequestResponse", "Event", "DryRun"), default="RequestResponse",
                        help="as Lambda's Invoke API (default: RequestResponse)")
    invoke.set_defaults(func=_local("cmd_invoke"))

    traffic = sub.add_parser("traffic", help="drive every event source with realistic load, then summarise",
                             description="Drive every event source of the running local environment with "
                             "realistic load, then summarise each function from its REPORT lines.")
    traffic.add_argument("--profile", choices=("steady", "burst", "mixed"), default="steady",
                         help="the shape of the load over time (default: steady)")
    traffic.add_argument("--duration", default=None, help="e.g. 60s, 2m (default: params local.traffic_duration_s)")
    traffic.add_argument("--bad-share", type=float, default=0.1, help="share of bad inputs, 0 to 1 (default: 0.1)")
    traffic.add_argument("--seed", type=int, default=None,
                         help="seed of the generated events and timings, for a repeatable run (default: random)")
    traffic.add_argument("--no-progress", action="store_true", help="no progress bar (default: one on a terminal)")
    traffic.set_defaults(func=_local("cmd_traffic"))


def _add_tune(commands: argparse._SubParsersAction) -> None:
    tune = commands.add_parser(
        "tune",
        help="power-tune a function and propose memory/timeout changes to params/<env>.yaml",
        description="Power-tune one function (AWS, or the local sandbox for --env local), show the "
        "analysis and a diff of params/<env>.yaml; --apply writes it.",
    )
    _env(tune)
    tune.add_argument("--function", required=True, help=f"function key: {', '.join(specs.FUNCTION_KEYS)}")
    tune.add_argument("--power-values", type=_memory_sizes, default=None, metavar="MB,MB,...",
                      help=f"comma-separated memory sizes in MB, {specs.MEMORY_MIN_MB}-{specs.MEMORY_MAX_MB} "
                      "(default: workbook.tuning.defaults, 128 to 3008; the current size is always added)")
    tune.add_argument("--num", type=_positive_int, default=None, metavar="N",
                      help="invocations per memory value, 1 or more (default: 10)")
    tune.add_argument("--strategy", choices=("cost", "speed", "balanced"), default=None,
                      help="what to minimise (default: cost)")
    tune.add_argument("--balanced-weight", type=_fraction(0.0, 1.0, "a weight"), default=None, metavar="W",
                      help="balanced strategy: weight of cost against speed, 0 to 1 (default: 0.5)")
    tune.add_argument("--discard-top-bottom", type=_fraction(0.0, 0.4, "a share of each end"), default=None,
                      metavar="SHARE", help="share of the sorted durations dropped at each end before averaging, "
                      "0 to 0.4, as aws-lambda-power-tuning (default: 0.2; 0 with --only-cold-starts)")
    tune.add_argument("--payload", default=None,
                      help="JSON payload, or @file.json (weighted payloads allowed) (default: the function's "
                      "sample event in AWS's shape)")
    tune.add_argument("--parallel", action="store_true",
                      help="run each value's invocations at once (default: one after another)")
    tune.add_argument("--only-cold-starts", action="store_true",
                      help="measure cold starts only: a fresh environment per invocation (default: warm ones too)")
    tune.add_argument("--apply", action="store_true",
                      help="write the proposed change to params/<env>.yaml (default: show the diff only)")
    tune.set_defaults(func=cmd_tune)


def _add_schedule(commands: argparse._SubParsersAction) -> None:
    schedule = commands.add_parser(
        "schedule", help="print (or install) a crontab line and a systemd timer",
        description="Print a crontab line and a systemd service and timer that run `workbook run --env ENV` "
        "on a schedule, logging to outputs/<env>/schedule.log; --install adds the crontab line.")
    _env(schedule)
    schedule.add_argument("--cron", required=True,
                          help='five crontab fields (minute hour day-of-month month day-of-week), like "0 6 * * 1-5"')
    schedule.add_argument("--install", action="store_true",
                          help="add the line to the current user's crontab (default: print only)")
    schedule.set_defaults(func=cmd_schedule)


# ---------------------------------------------------------------------------------------------
# Commands.
# ---------------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from workbook.report import run  # noqa: PLC0415 - see the module docstring

    if args.traffic_seconds is not None and args.env != "local":
        raise BadInput(f"--traffic-seconds applies to --env local only (the local sandbox's traffic); "
                       f"drop it for --env {args.env}")
    try:
        result = run.run(args.env, since=args.since, only=args.only, functions=args.functions,
                         traffic_s=args.traffic_seconds, redactor=args.redactor)
    except (run.RunError, run.RunInterrupted) as exc:
        if exc.folder is not None:
            print(exc.folder)   # the partial run is there
        raise
    print(result.folder)
    return ExitCode.DONE


@contextlib.contextmanager
def _redacted_output(args: argparse.Namespace) -> Iterator[None]:
    """For ``workbook run``: every line it prints (errors and tracebacks too) is redacted, and with
    ``--log FILE`` also appended there; other commands print as they are."""
    if not getattr(args, "redacted_output", False):
        yield
        return
    from workbook.report import redact  # noqa: PLC0415 - see the module docstring

    args.redactor = redact.Redactor()
    try:
        if args.log:
            os.makedirs(os.path.dirname(os.path.abspath(args.log)), exist_ok=True)
        log = open(args.log, "a", encoding="utf-8", buffering=1) if args.log else None
    except OSError as exc:
        raise BadInput(f"--log {args.log}: cannot append to it ({exc.strerror})") from None
    streams = sys.stdout, sys.stderr
    sys.stdout = redact.RedactingWriter(streams[0], args.redactor, log)
    sys.stderr = redact.RedactingWriter(streams[1], args.redactor, log)
    try:
        yield
    except Exception:  # noqa: BLE001 - a bug: its traceback goes through the redactor too, then exit 1
        traceback.print_exc()
        raise SystemExit(int(ExitCode.FAILED)) from None
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = streams
        if log:
            log.close()


def cmd_plan(args: argparse.Namespace) -> int:
    from workbook.deploy.plan import offline_plan  # noqa: PLC0415 - see the module docstring

    plan = offline_plan(args.env)
    if args.format == "json":
        json.dump(plan.to_dict(), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return ExitCode.DONE
    table = plan.table()
    widths = {column: max(len(column), *(len(str(v)) for v in table[column])) for column in table.columns}
    print("  ".join(column.ljust(widths[column]) for column in table.columns))
    for row in table.itertuples(index=False):
        print("  ".join(str(value).ljust(widths[column]) for column, value in zip(table.columns, row, strict=True)).rstrip())
    counts = table.groupby("stack").size().to_dict()
    print(f"\nOffline plan for {args.env}: {len(table)} resources "
          f"({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}); nothing was deployed.")
    print("Outputs:")
    for name, value in sorted(plan.outputs.items()):
        print(f"  {name} = {json.dumps(value) if not isinstance(value, str) else value}")
    return ExitCode.DONE


def cmd_deploy(args: argparse.Namespace) -> int:
    """preview, deploy, refresh, destroy and outputs through the Automation API."""
    from workbook import deploy  # noqa: PLC0415 - see the module docstring
    from workbook.deploy.operations import default_echo, describe_counts  # noqa: PLC0415 - as above

    settings = config.load(args.env)
    deploy.targets(settings, args.stack)   # an unknown or not-deployed stack fails before anything runs
    echo = None if args.quiet else default_echo
    if args.operation == "preview" and not deploy.cli_available():
        result = deploy.deploy_or_plan(settings, "preview", echo=None)
        summary = result.summary if args.stack is None else result.summary[result.summary["stack"] == args.stack]
        print(summary.to_string(index=False))
        print(f"workbook: {result.message}", file=sys.stderr)
        return ExitCode.DONE
    if settings.env == "local":
        _point_at_local()
    if args.operation == "outputs":
        values = deploy.outputs(settings, stack=args.stack or "compute")
        if args.format == "json":
            json.dump(values, sys.stdout, indent=2, sort_keys=True, default=str)
            sys.stdout.write("\n")
        else:
            for name, value in sorted(values.items()):
                print(f"{name} = {value if isinstance(value, str) else json.dumps(value, default=str)}")
        return ExitCode.DONE
    try:
        if args.operation == "preview":
            run = deploy.preview(settings, stack=args.stack, echo=echo)
        elif args.operation == "deploy":
            run = deploy.up(settings, stack=args.stack, approve=args.approve, echo=echo)
        elif args.operation == "refresh":
            run = deploy.refresh(settings, stack=args.stack, clear_pending_creates=args.clear_pending_creates,
                                 echo=echo)
        else:
            run = deploy.destroy(settings, stack=args.stack, confirm_destroy=args.confirm_destroy, echo=echo)
    except deploy.ProdSafetyError as exc:
        if exc.preview is not None:
            _print_summary(exc.preview, describe_counts)
        raise
    _print_summary(run, describe_counts)
    return ExitCode.DONE


def _point_at_local() -> None:
    """``--env local`` deploys to the running local environment: point this process at it, if one runs."""
    from workbook.local import manager  # noqa: PLC0415 - see the module docstring
    from workbook.local.errors import NotRunningError  # noqa: PLC0415 - as above

    try:
        manager.activate()
    except NotRunningError:
        pass   # the Automation API then says which command starts one (LocalEndpointMissing)


def _print_summary(run: Any, describe_counts: Callable[[dict], str]) -> None:
    summary = run.summary
    if summary.empty:
        print(f"{run.operation} of {run.env}: no resources")
        return
    print(summary.to_string(index=False))
    print(f"{run.operation} of {run.env}: {describe_counts(run.counts())}")


def _local(name: str) -> Command:
    """A ``workbook local`` command from ``workbook.local.commands``, imported when it runs."""
    def command(args: argparse.Namespace) -> int:
        from workbook.local import commands  # noqa: PLC0415 - see the module docstring

        return getattr(commands, name)(args)

    command.__name__ = name
    return command


def cmd_tune(args: argparse.Namespace) -> int:
    from workbook.report import progress  # noqa: PLC0415 - see the module docstring
    from workbook.tuning import defaults, invokers, patch, recommend  # noqa: PLC0415 - as above
    from workbook.tuning.payloads import tuning_payloads  # noqa: PLC0415 - as above

    settings = config.load(args.env)
    fn = settings.function(args.function)
    values = args.power_values or list(defaults.DEFAULT_POWER_VALUES)
    payload = _load_payload(args.payload) if args.payload is not None else None
    # The invoker first: on --env local it starts or joins the local environment and points boto3 at it,
    # and the worst-case probes below are uploaded to that environment's buckets, not to AWS.
    invoker = invokers.make_invoker(settings, args.function)
    # the sample event and, where the function has input limits, its worst-case probes (they set the memory floor)
    payload = tuning_payloads(settings, args.function) if payload is None else payload
    values = sorted(set(values) | {fn.memory_mb})   # the current size too: a change is judged against it
    num = defaults.DEFAULT_NUM_INVOCATIONS if args.num is None else args.num
    discard = args.discard_top_bottom
    if discard is not None and num - 2 * int(num * discard) < 1:
        raise BadInput(f"--discard-top-bottom {discard:g} with --num {num} drops every invocation; "
                       "lower it or raise --num")
    lines = progress.tracker(f"power tuning {args.function}", interactive=False, stream=sys.stderr)
    invoker = recommend.with_progress(invoker, lines, num * len(values))
    run = recommend.sweep(
        invoker, values, num, payload, fn.memory_mb,
        parallel=args.parallel, only_cold_starts=args.only_cold_starts, discard_top_bottom=discard,
        strategy=args.strategy or defaults.DEFAULT_STRATEGY,
        balanced_weight=defaults.DEFAULT_BALANCED_WEIGHT if args.balanced_weight is None else args.balanced_weight,
        region=settings.params.aws_region, architecture=fn.architecture,
    )
    table = run.analysis.table[["memory_mb", "invocations", "errors", "average_duration_ms", "p95_duration_ms",
                                "average_cost_usd", "cost_with_requests_usd"]]
    print(table.to_string(index=False))
    if run.floor is not None:
        print(run.probes[["probe", "memory_mb", "max_memory_used_mb", "duration_ms", "error"]].to_string(index=False))
        print(f"memory floor {run.floor.describe('MB')}")
    print(f"\n{run.analysis.strategy} strategy chooses {run.memory_mb} MB (now {fn.memory_mb} MB)")
    recs = recommend.from_tuning_run(settings, args.function, run)
    for row in recs.table.itertuples(index=False):
        confidence = "" if row.confidence is None or row.confidence != row.confidence else f", confidence {row.confidence:.2f}"
        needed = f"; needs {row.needed}" if row.needed else ""
        print(f"{row.kind}: {row.status}{confidence}: {row.current} -> {row.recommended} ({row.reason}{needed})")
    proposed = recs.patch(args.env)
    if proposed.empty:
        print(f"params/{args.env}.yaml already matches the recommendation")
        return ExitCode.DONE
    print(proposed.diff)
    if args.apply:
        proposed.apply()
        print(f"wrote {patch.display_path(proposed.path)}; preview the change with "
              f"`workbook preview --env {args.env}`")
    else:
        print("not applied; run again with --apply to write it")
    return ExitCode.DONE


def _load_payload(text: str) -> Any:
    where = "--payload"
    if text.startswith("@"):
        where = f"--payload {text}"
        try:
            text = open(text[1:], encoding="utf-8").read()
        except OSError as exc:
            raise BadInput(f"{where}: cannot read it ({exc.strerror})") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{where} is not valid JSON: {exc}") from None


def cmd_schedule(args: argparse.Namespace) -> int:
    from workbook.report import schedule  # noqa: PLC0415 - see the module docstring

    lines = schedule.schedule_lines(args.env, args.cron)
    print("# crontab (crontab -e):")
    print(lines["crontab"])
    print(f"\n# or systemd: /etc/systemd/system/lambda-workbook-{args.env}.service")
    print(lines["service"])
    print(f"# /etc/systemd/system/lambda-workbook-{args.env}.timer, then: "
          f"systemctl enable --now lambda-workbook-{args.env}.timer")
    print(lines["timer"])
    if args.install:
        schedule.install_crontab(lines["crontab"])
        print(f"# installed in the crontab of {os.environ.get('USER', 'this user')}")
    return ExitCode.DONE


# ---------------------------------------------------------------------------------------------
# Errors to exit codes: here, and nowhere else.
# ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_join_dashed_values(list(sys.argv[1:] if argv is None else argv)))
    if not getattr(args, "func", None):
        parser.print_help()
        return ExitCode.BAD_INPUT
    try:
        with _redacted_output(args):
            return _call(args)
    except BadInput as exc:   # --log cannot be opened
        return _fail(exc, exc.exit_code)


def _call(args: argparse.Namespace) -> int:
    try:
        with _notes_as_lines():
            return int(args.func(args) or 0)
    except (ParamsError, ProjectNotFoundError) as exc:
        return _fail(exc, ExitCode.BAD_INPUT)
    except WorkbookError as exc:
        return _fail(exc, exc.exit_code)
    except KeyError as exc:   # an unknown function key (infra.specs.spec) names the known ones
        return _fail(exc.args[0] if exc.args else exc, ExitCode.BAD_INPUT)
    except BrokenPipeError:  # e.g. `workbook plan ... | head`
        sys.stderr.close()
        return ExitCode.DONE
    except KeyboardInterrupt:
        print("workbook: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED


@contextlib.contextmanager
def _notes_as_lines() -> Iterator[None]:
    """The library's notes (``UserWarning('workbook.…: …')``) as one ``workbook: note: …`` line on stderr,
    not as a warning with its source line; other warnings as they are."""
    import warnings  # noqa: PLC0415 - only here

    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # warnings' signature
        text = str(message)
        if issubclass(category, UserWarning) and text.startswith("workbook."):
            print(f"workbook: note: {text.split(': ', 1)[-1]}", file=sys.stderr)
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original


def _fail(message: object, code: ExitCode) -> int:
    print(f"workbook: {message}", file=sys.stderr)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
