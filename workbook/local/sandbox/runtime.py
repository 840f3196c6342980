"""The start of one execution environment: AWS's runtime client, ``awslambdaric``, on the function's path.

The sandbox starts this file isolated and without ``site`` (``python -I -S``), so neither its own
folder nor the interpreter's site-packages are on the path: the function's package and its layer come
first, then the runtime's own packages (awslambdaric, boto3), then the standard library, as on Lambda.
``awslambdaric`` then does what it does on Lambda: imports the handler (INIT), asks the
Runtime API (``AWS_LAMBDA_RUNTIME_API``, served by the sandbox on loopback) for invocations, and
posts each response or error; its log records go to the telemetry descriptor
(``_LAMBDA_TELEMETRY_LOG_FD``), what the function prints to stdout.

argv: rlimit_as_bytes code_path[:code_path...] handler [--owner=...]
"""
import os
import site
import sys

site.setquit()    # exit() and quit() exist in a handler, as where site runs; no path is added

_RLIMIT_AS = int(sys.argv[1])
sys.path[0:0] = [path for path in sys.argv[2].split(os.pathsep) if path]

if _RLIMIT_AS > 0:  # the unprivileged fallback of the memory limit
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (_RLIMIT_AS, _RLIMIT_AS))

from awslambdaric.__main__ import main

if __name__ == "__main__":
    main(["awslambdaric", sys.argv[3]])
