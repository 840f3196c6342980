"""The run's watchdog process: ``python -m workbook.report.watchdog FD``.

It reads what the run tells it over the pipe ``FD`` (JSON lines: the run folder and results so far,
the secrets the run knows, the local environment it started, its process mark). A ``done`` line
ends it quietly. If the pipe closes without one, the run's process died without finishing (SIGKILL,
a crash); the watchdog then ends the run's kernels, learns the local secrets while the environment
is up, stops the environment if the run started it, and finishes the folder as ``interrupted``
exactly as the run would have. It ignores SIGINT, SIGTERM and SIGHUP, so stopping a whole process
group (Ctrl-C in a terminal, systemd's stop) leaves it to do that.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from workbook.report import guard


def listen(fd: int) -> dict[str, Any] | None:
    """What the run said, or None when it said ``done``."""
    told: dict[str, Any] = {"secrets": []}
    with os.fdopen(fd, "rb") as pipe:
        for line in pipe:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("done"):
                return None
            told["secrets"] += message.pop("secrets", [])
            told.update(message)
    return told


def finish_abandoned(told: dict[str, Any]) -> None:
    """Finish a run whose process is gone, the way ``workbook.report.run`` finishes its own."""
    # Deferred: the watchdog idles beside every run; these (Papermill, nbconvert, pandas, boto3) took
    # 5.1 s of CPU to import here (time.process_time, 3 runs, 2 busy cores) against 0.04 s for the
    # watchdog itself, and only a run that dies needs them.
    from workbook.local import manager  # noqa: PLC0415 - see above
    from workbook.report import ownership, redact  # noqa: PLC0415 - see above
    from workbook.report.finish import finalize  # noqa: PLC0415 - see above
    from workbook.report.notebooks import RunResult  # noqa: PLC0415 - see above

    def say(message: str) -> None:
        print(f"watchdog: {redactor.text(message)}", file=sys.stderr, flush=True)

    redactor = redact.Redactor(told["secrets"])
    redactor.add(redact.environment_secrets(told.get("passphrase_env")))
    lease = ownership.Lease(**told["lease"]) if told.get("lease") else None
    if lease is not None:
        if ownership.still_there(lease):
            manager.activate()
            redactor.add(redact.local_secrets())
        ownership.release(lease, say, told.get("mark"))
    if told.get("mark"):
        guard.reap(told["mark"])
    private = Path(told["private"]) if told.get("private") else None
    if private is not None:
        redactor.add(redact.registered(private / "registered"))
    if told.get("result"):
        result = RunResult.from_dict(told["result"])
        result.status = "interrupted"
        result.reason = (f"the workbook process ended during {told.get('phase', 'the run')} without finishing "
                         "(killed with SIGKILL, or crashed); its watchdog stopped what it started and finished "
                         "this folder")
        outputs_dir = Path(told["outputs_dir"]) if told.get("outputs_dir") else None
        finalize(result, redactor, say, int(told.get("retention", 1)), outputs_dir)
    if private is not None:
        shutil.rmtree(private, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    for number in guard.STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    told = listen(int((argv if argv is not None else sys.argv[1:])[0]))
    if told is not None:
        finish_abandoned(told)
    return 0


if __name__ == "__main__":
    sys.exit(main())
