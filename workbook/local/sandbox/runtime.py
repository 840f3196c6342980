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

import base64
import decimal
import importlib
import logging
import math
import resource
import time
import traceback

if _RLIMIT_AS > 0:  # the unprivileged fallback of the memory limit
    resource.setrlimit(resource.RLIMIT_AS, (_RLIMIT_AS, _RLIMIT_AS))

# Marks the end of one invocation's output on stdout, so the sandbox writes END after the logs.
DONE_MARK = b"\x1eLWB-DONE\n"

_LOG_FORMAT = os.environ.get("AWS_LAMBDA_LOG_FORMAT", "Text").upper()
_request_id = ""

# What follows mirrors awslambdaric 4.2.2 (``bootstrap.py``, ``lambda_context.py``,
# ``lambda_runtime_log_utils.py``, ``lambda_runtime_marshaller.py``), the runtime client of Lambda's
# managed Python runtimes; tests/functional/sandbox/test_runtime_differential.py checks each
# behaviour against it, handler for handler.
ERROR_LOG_IDENT = "\u00a0"   # leading spaces of a stack trace line, so CloudWatch keeps them
_UNHANDLED_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code. However, in rare "
    "cases, a Lambda runtime update can cause unexpected function behavior. For functions using managed runtimes, "
    "runtime updates can be triggered by a function change, or can be applied automatically. To determine if the "
    "runtime has been updated, check the runtime version in the INIT_START log entry. If this error correlates with "
    "a change in the runtime version, you may be able to mitigate this error by temporarily rolling back to the "
    "previous runtime version. For more information, see https://docs.aws.amazon.com/lambda/latest/dg/"
    "runtimes-update.html\r")
# Responses keep non-ASCII characters from python3.12 on (awslambdaric's Encoder).
_ENSURE_ASCII = os.environ.get("AWS_EXECUTION_ENV", "") not in {
    "AWS_Lambda_python3.12", "AWS_Lambda_python3.13", "AWS_Lambda_python3.14", "AWS_Lambda_python3.15"}


class FaultError(Exception):
    """An error the runtime reports under its own type (``Runtime.*``), as awslambdaric's FaultException."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type, self.message, self.trace = error_type, message, trace


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]


class Client:
    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name"]


class ClientContext:
    __slots__ = ["custom", "env", "client"]


def _from_dict(cls, values: dict | None):
    if values is None:
        return None
    obj = cls()
    for name in cls.__slots__:
        setattr(obj, name, values.get(name))
    return obj


class LambdaContext:
    """The ``context`` argument, as Lambda's Python runtime builds it."""

    def __init__(self, request: dict) -> None:
        self.aws_request_id = request["request_id"]
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = request["function_arn"]
        self.tenant_id = None
        client_context = request.get("client_context")
        if isinstance(client_context, dict):
            client_context = dict(client_context)
            w3c = client_context.pop("w3c", None)
        else:
            w3c = None
        self._w3c_fields = {key: value for key, value in (w3c or {}).items()
                            if key in ("traceparent", "tracestate", "baggage") and isinstance(value, str)} \
            if isinstance(w3c, dict) else {}
        self.client_context = _from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _from_dict(Client, self.client_context.client)
        self.identity = _from_dict(CognitoIdentity, {})
        identity = request.get("identity")
        if identity is not None:
            self.identity.cognito_identity_id = identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = identity.get("cognitoIdentityPoolId")
        self._deadline_ms = request["deadline_ms"]

    def get_remaining_time_in_millis(self) -> int:
        return max(int(self._deadline_ms - time.time() * 1000), 0)

    def w3c(self) -> dict:
        return dict(self._w3c_fields)

    def log(self, msg) -> None:
        sys.stdout.write(str(msg))


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _request_id
        record.tenant_id = None
        return True


class _TextFormatter(logging.Formatter):
    """Lambda's text format; newlines become carriage returns so a record stays one log event."""

    def __init__(self) -> None:
        super().__init__("[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
                         "%Y-%m-%dT%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", "\r")


_RESERVED_FIELDS = {"name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info",
                    "exc_text", "stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated", "thread",
                    "threadName", "processName", "process", "aws_request_id", "tenant_id", "_frame_type", "taskName"}


class _JsonFormatter(logging.Formatter):
    """Lambda's JSON application log format: errors at the top level, dict messages kept, ``extra`` fields added."""

    def __init__(self) -> None:
        super().__init__(datefmt="%Y-%m-%dT%H:%M:%SZ")

    def format(self, record: logging.LogRecord) -> str:
        record.levelno = min(50, max(0, record.levelno)) // 10 * 10
        record.levelname = logging.getLevelName(record.levelno)
        exc_info = record.exc_info
        entry = {
            "timestamp": self.formatTime(record, self.datefmt),
            "level": record.levelname,
            "message": record.msg if isinstance(record.msg, dict) and not record.args else record.getMessage(),
            "logger": record.name,
            "stackTrace": traceback.format_tb(exc_info[2]) if exc_info else None,
            "errorType": exc_info[0].__name__ if exc_info else None,
            "errorMessage": str(exc_info[1]) if exc_info else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": f"{record.pathname}:{record.funcName}:{record.lineno}" if exc_info else None,
        }
        entry.update((key, value) for key, value in record.__dict__.items()
                     if key not in _RESERVED_FIELDS and key not in entry)
        entry = {key: value for key, value in entry.items() if value is not None}
        return json.dumps(entry, ensure_ascii=False, default=str).replace("\n", "\r")


def _configure_logging() -> None:
    logging.Formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    handler.setFormatter(_JsonFormatter() if _LOG_FORMAT == "JSON" else _TextFormatter())
    level = {"": "", "TRACE": "DEBUG"}.get(os.environ.get("AWS_LAMBDA_LOG_LEVEL", ""),
                                           os.environ.get("AWS_LAMBDA_LOG_LEVEL", "")).upper()
    if level in logging._nameToLevel:
        root.setLevel(level)
    root.addHandler(handler)


def _to_json(obj) -> str:
    """awslambdaric's encoder: a Decimal as its digits (``1.50``), NaN allowed, non-ASCII kept from python3.12."""
    raw: dict[str, str] = {}

    def default(value):
        if isinstance(value, decimal.Decimal):
            if value.is_nan():
                return math.nan
            token = f"\x00decimal-{len(raw)}\x00"
            raw[json.dumps(token, ensure_ascii=_ENSURE_ASCII)] = str(value)
            return token
        raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")

    text = json.dumps(obj, default=default, ensure_ascii=_ENSURE_ASCII, allow_nan=True)
    for quoted, digits in raw.items():
        text = text.replace(quoted, digits)
    return text


def _marshal(result) -> tuple[bytes, str]:
    if isinstance(result, bytes):
        return result, "application/unknown"
    try:
        return _to_json(result).encode(), "application/json"
    except Exception as exc:  # noqa: BLE001 - any encoding failure is Lambda's MarshalError
        raise FaultError("Runtime.MarshalError", f"Unable to marshal response: {exc}") from None


def _error(message: str, error_type: str, trace: list[str] | None, request_id: str = "") -> dict:
    return {"errorMessage": message or "", "errorType": error_type or "", "requestId": request_id,
            "stackTrace": trace or []}


def _user_frames(tb) -> list[str]:
    """The stack trace without the runtime's own leading frames (awslambdaric drops its bootstrap's)."""
    frames = traceback.extract_tb(tb)
    for index, frame in enumerate(frames):
        if frame.filename != __file__:
            frames = frames[index:]
            break
    # As plain tuples, as awslambdaric formats them: no column carets.
    return traceback.format_list([(frame.filename, frame.lineno, frame.name, frame.line) for frame in frames])


def _log_error(error: dict) -> None:
    if _LOG_FORMAT == "JSON":
        line = _to_json({"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": "ERROR", **error})
    else:
        description = "[ERROR]"
        if error.get("errorType"):
            description += " " + error["errorType"]
        if error.get("errorMessage"):
            description += (":" if error.get("errorType") else "") + " " + error["errorMessage"]
        lines = [description, "Traceback (most recent call last):"]
        for element in error.get("stackTrace") or []:
            if element == "":
                lines.append("")
                continue
            for trace_line in element.splitlines():
                stripped = trace_line.lstrip(" ")
                lines.append(ERROR_LOG_IDENT * (len(trace_line) - len(stripped)) + stripped)
        line = "\r".join(lines)
    sys.stdout.write(line.replace("\n", "\r") + "\n")


def _load_handler(handler: str):
    """Import the handler's module and find the function: INIT, as awslambdaric's ``_get_handler``."""
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as exc:
        raise FaultError("Runtime.MalformedHandlerName", f"Bad handler '{handler}': {exc}") from None
    try:
        if module_name.split(".")[0] in sys.builtin_module_names:
            raise FaultError("Runtime.BuiltInModuleConflict",
                             f"Cannot use built-in module {module_name} as a handler module")
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise FaultError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise FaultError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}",
                         trace) from None
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise FaultError("Runtime.HandlerNotFound",
                         f"Handler '{function_name}' missing on module '{module_name}'") from None


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
    error = None
    try:
        _configure_logging()
        handler = _load_handler(os.environ["_HANDLER"])
    except FaultError as exc:
        error = _error(exc.message, exc.error_type, exc.trace)
    except Exception as exc:  # noqa: BLE001 - an error at module level is the function's INIT error
        error = _error(str(exc), type(exc).__name__, _user_frames(exc.__traceback__))
    if error is not None:
        logging.warning(_UNHANDLED_WARNING)
        _log_error(error)
        _end_of_output()
        _send(writer, {"t": "init", "ok": False, "error": error})
        sys.exit(1)
    _end_of_output()
    _send(writer, {"t": "init", "ok": True, "maxrss_kb": _max_memory_used_kb()})

    while True:
        line = reader.readline()
        if not line:
            return
        request = json.loads(line)
        _request_id = request["request_id"]
        os.environ["_X_AMZN_TRACE_ID"] = request.get("trace_id", "")
        # SystemExit and other BaseExceptions are not caught: the runtime exits, and the platform
        # answers Runtime.ExitError, as on Lambda.
        try:
            context = LambdaContext(request)
            payload, content_type = _marshal(handler(request["event"], context))
            reply = {"t": "result", "ok": True, "content_type": content_type}
            if content_type == "application/json":
                reply["payload"] = payload.decode()
            else:
                reply["payload_b64"] = base64.b64encode(payload).decode()
        except FaultError as exc:
            error = _error(exc.message, exc.error_type, exc.trace, _request_id)
            _log_error(error)
            reply = {"t": "result", "ok": False, "error": error}
        except MemoryError as exc:
            error = _error(str(exc), type(exc).__name__, _user_frames(exc.__traceback__), _request_id)
            reply = {"t": "result", "ok": False, "error": error, "memory_error": True}
        except Exception as exc:  # noqa: BLE001 - any error of the handler is the invocation's error, as on Lambda
            error = _error(str(exc), type(exc).__name__, _user_frames(exc.__traceback__), _request_id)
            _log_error(error)
            reply = {"t": "result", "ok": False, "error": error}
        reply["maxrss_kb"] = _max_memory_used_kb()
        _end_of_output()
        _send(writer, reply)


if __name__ == "__main__":
    main()
