"""The runtime loop inside one execution environment. It runs as a script in a fresh, isolated interpreter.

It plays the part of Lambda's Python runtime (``bootstrap``): import the handler module (INIT),
then serve invocations one at a time. The sandbox talks to it over two pipes, one JSON line per
message; the function's stdout and stderr are the environment's log stream, as on Lambda.

This file imports nothing from the workbook: a handler must see the same interpreter state as
on Lambda, where only its own code, the layer and the runtime's packages are importable.

argv: control_in_fd control_out_fd rlimit_as_bytes code_path[:code_path...]
"""
import json
import os
import sys

# The sandbox starts this file isolated (``python -I``), so its own folder is not on the path, as
# Lambda's runtime folder is not: the function's code and its layer come first.
_IN_FD, _OUT_FD, _RLIMIT_AS = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
sys.path[0:0] = [path for path in sys.argv[4].split(os.pathsep) if path]

import logging
import resource
import time
import traceback

if _RLIMIT_AS > 0:  # the unprivileged fallback of the memory limit
    resource.setrlimit(resource.RLIMIT_AS, (_RLIMIT_AS, _RLIMIT_AS))

# Marks the end of one invocation's output on stdout, so the sandbox writes END after the logs.
DONE_MARK = b"\x1eLWB-DONE\n"

_LOG_FORMAT = os.environ.get("AWS_LAMBDA_LOG_FORMAT", "Text").upper()
_request_id = ""


class LambdaContext:
    """The ``context`` argument, as Lambda's Python runtime builds it."""

    def __init__(self, request: dict) -> None:
        self.aws_request_id = request["request_id"]
        self.invoked_function_arn = request["function_arn"]
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = request.get("identity")
        self.client_context = request.get("client_context")
        self.tenant_id = None
        self._deadline_ms = request["deadline_ms"]

    def get_remaining_time_in_millis(self) -> int:
        return max(int(self._deadline_ms - time.time() * 1000), 0)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _request_id
        return True


class _TextFormatter(logging.Formatter):
    """Lambda's text format; newlines become carriage returns so a record stays one log event."""

    converter = time.gmtime

    def __init__(self) -> None:
        super().__init__("[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
                         "%Y-%m-%dT%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", "\r")


class _JsonFormatter(logging.Formatter):
    """Lambda's JSON application log format."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "requestId": _request_id,
        }
        if record.exc_info:
            entry["errorType"] = record.exc_info[0].__name__
            entry["errorMessage"] = str(record.exc_info[1])
            entry["stackTrace"] = traceback.format_tb(record.exc_info[2])
        return json.dumps(entry, default=str)


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    if _LOG_FORMAT == "JSON":
        handler.setFormatter(_JsonFormatter())
        level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO")
        root.setLevel(level.replace("WARN", "WARNING").replace("FATAL", "CRITICAL").replace("TRACE", "DEBUG"))
    else:
        handler.setFormatter(_TextFormatter())
    root.addHandler(handler)


def _error(exc: BaseException, request_id: str | None = None) -> dict:
    # The runtime's own frame is not the function's business (Lambda strips its bootstrap too).
    tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
    stack = traceback.format_tb(tb)
    return {"errorMessage": str(exc), "errorType": type(exc).__name__, "requestId": request_id or "",
            "stackTrace": stack}


def _log_error(error: dict) -> None:
    if _LOG_FORMAT == "JSON":
        line = json.dumps({"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": "ERROR",
                           "message": error, "requestId": error.get("requestId", "")})
    else:
        trace = "".join(error.get("stackTrace") or []).replace("  ", "\u00a0\u00a0")
        line = f"[ERROR] {error['errorType']}: {error['errorMessage']}\nTraceback (most recent call last):\n{trace}"
        line = line.rstrip("\n").replace("\n", "\r")
    sys.stdout.write(line + "\n")


def _max_memory_used_kb() -> int:
    """This environment's peak resident memory: its own ``VmHWM``, or a finished child's if larger.

    Not ``ru_maxrss`` of this process: Linux carries it over ``execve``, so it would report the
    resident size of the engine that spawned the runtime (a hundred MB or more), not the function's.
    """
    own = 0
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    own = int(line.split()[1])
                    break
    except (OSError, ValueError, IndexError):
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children)


def _send(writer, message: dict) -> None:
    writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
    writer.flush()


def _end_of_output() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, DONE_MARK)


def main() -> None:
    global _request_id
    reader = os.fdopen(_IN_FD, "rb", buffering=1 << 16)
    writer = os.fdopen(_OUT_FD, "wb", buffering=1 << 16)
    _configure_logging()
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    try:
        module = __import__(module_name)
        for part in module_name.split(".")[1:]:
            module = getattr(module, part)
        handler = getattr(module, function_name)
    except ModuleNotFoundError as exc:
        error = {"errorMessage": f"Unable to import module '{module_name}': {exc}",
                 "errorType": "Runtime.ImportModuleError", "requestId": "", "stackTrace": []}
        _log_error(error)
        _end_of_output()
        _send(writer, {"t": "init", "ok": False, "error": error})
        return
    except AttributeError:
        error = {"errorMessage": f"Handler '{function_name}' missing on module '{module_name}'",
                 "errorType": "Runtime.HandlerNotFound", "requestId": "", "stackTrace": []}
        _log_error(error)
        _end_of_output()
        _send(writer, {"t": "init", "ok": False, "error": error})
        return
    except BaseException as exc:  # noqa: BLE001 - an error at module level is the function's INIT error
        error = _error(exc)
        error["errorType"] = "Runtime.UserCodeSyntaxError" if isinstance(exc, SyntaxError) else error["errorType"]
        _log_error(error)
        _end_of_output()
        _send(writer, {"t": "init", "ok": False, "error": error})
        return
    _end_of_output()
    _send(writer, {"t": "init", "ok": True, "maxrss_kb": _max_memory_used_kb()})

    while True:
        line = reader.readline()
        if not line:
            return
        request = json.loads(line)
        _request_id = request["request_id"]
        os.environ["_X_AMZN_TRACE_ID"] = request.get("trace_id", "")
        context = LambdaContext(request)
        try:
            result = handler(request["event"], context)
            try:
                payload = json.dumps(result)
                reply = {"t": "result", "ok": True, "payload": payload}
            except (TypeError, ValueError) as exc:
                error = {"errorMessage": f"Unable to marshal response: {exc}", "errorType": "Runtime.MarshalError",
                         "requestId": _request_id, "stackTrace": []}
                _log_error(error)
                reply = {"t": "result", "ok": False, "error": error}
        except MemoryError as exc:
            reply = {"t": "result", "ok": False, "error": _error(exc, _request_id), "memory_error": True}
        except BaseException as exc:  # noqa: BLE001 - any error of the handler is the invocation's error, as on Lambda
            error = _error(exc, _request_id)
            _log_error(error)
            reply = {"t": "result", "ok": False, "error": error}
            if isinstance(exc, SystemExit):
                _end_of_output()
                reply["exit"] = True
                _send(writer, reply)
                return
        reply["maxrss_kb"] = _max_memory_used_kb()
        _end_of_output()
        _send(writer, reply)


if __name__ == "__main__":
    main()
