"""Run All on every notebook, as JupyterLab sends it: every code cell queued at once to a real kernel.

Papermill sends one cell at a time and never sees a cell dropped behind a blocked event loop; Lab's
Run All does. The oracle is the real ipykernel, driven through ``jupyter_client`` as Lab drives it:
every cell must answer ``ok``, in order.

Every code cell of every notebook is sent, in one kernel per notebook, as a user would run the
notebooks one after another in one Lab session. Before 01-deploy (the first to open a session) and
05-tuning (the longest queue) no local environment runs, so the session cell starts one (which plans
the stack) while every later cell waits in the queue: cold. Every other notebook's session must
join the environment running (warm): the test checks the engine is the same process before and
after it. Which notebooks start cold does not change what is checked: every notebook opens its
session with the same call (``session_cell`` checks where), so one cold start under a long queue
and one under the first notebook's cover the path. 05-tuning's parameters are narrowed as a user
may (two sizes, four invocations): the queue does not depend on the sweep's size; the default sweep
runs whole through Papermill in tests/notebooks.
"""
from __future__ import annotations

import json

import pytest
from jupyter_client.manager import start_new_kernel

from tests.notebooks.lab import NOTEBOOKS, code_cells, make_folders, narrow_the_tuning, stop_local

pytestmark = pytest.mark.timeout(2400)


def run_all(cells: list[str], env: dict[str, str], cwd: str, timeout_s: float = 900) -> list[dict]:
    """Send every cell at once (Run All) and collect each reply, with the errors shown on the way."""
    manager, client = start_new_kernel(kernel_name="python3", env=env, cwd=cwd)
    try:
        ids = [client.execute(code, allow_stdin=False) for code in cells]
        replies: dict[str, dict] = {}
        errors: list[str] = []
        while len(replies) < len(ids):
            reply = client.get_shell_msg(timeout=timeout_s)
            parent = reply["parent_header"].get("msg_id")
            if parent in ids:
                replies[parent] = reply["content"]
        while True:   # the error outputs, for a failure's message
            try:
                message = client.get_iopub_msg(timeout=1)
            except Exception:  # noqa: BLE001 - queue.Empty: every output read
                break
            if message["msg_type"] == "error":
                errors.append(f"{message['content']['ename']}: {message['content']['evalue']}")
        return [dict(replies[i], errors=errors) for i in ids]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def session_cell(cells: list[str]) -> int | None:
    """The index of the cell that opens the notebook's session: the second code cell, after the
    parameters; None for a notebook that needs no environment (00-summary reads a run's folder)."""
    opening = [i for i, code in enumerate(cells) if "open_session(" in code]
    assert opening in ([], [1]), f"expected the session to be opened once, in the cell after the parameters: {opening}"
    return opening[0] if opening else None


def _engine_pid(folders) -> int:
    return json.loads((folders.state / "state.json").read_text())["engine"]["pid"]


COLD = ("01-deploy", "05-tuning")   # the environment is stopped before these


def test_every_cell_of_every_notebook_answers_ok_when_queued(tmp_path):
    # GIVEN a Lab-like session with its own params, state and outputs folders, and no local environment
    folders = make_folders(tmp_path)
    narrow_the_tuning(folders.notebooks / "05-tuning.ipynb")
    results, paths = {}, {}
    try:
        for notebook in NOTEBOOKS:
            if notebook.stem in COLD:
                stopped = stop_local(folders)
                assert stopped.returncode == 0, stopped.stderr[-2000:]
            before = _engine_pid(folders) if (folders.state / "state.json").exists() else None
            cells = code_cells(folders.notebooks / notebook.name)
            opening = session_cell(cells)
            # WHEN every code cell is sent at once, as Run All does
            replies = run_all(cells, folders.env, str(folders.notebooks))
            results[notebook.stem] = [r["status"] for r in replies]
            # THEN every cell answered ok, in the order sent
            assert results[notebook.stem] == ["ok"] * len(cells), (notebook.stem, results[notebook.stem],
                                                                   replies[-1]["errors"][:3])
            counts = [r["execution_count"] for r in replies]
            assert counts == sorted(counts), (notebook.stem, counts)
            # AND a session started the environment only where none ran; elsewhere it joined the running one
            if opening is not None:
                after = _engine_pid(folders)
                paths[notebook.stem] = "cold" if before is None else "warm"
                assert before is None or after == before, (notebook.stem, before, after)
        assert set(results) == {p.stem for p in NOTEBOOKS}
        assert paths == {"01-deploy": "cold", "02-metrics": "warm", "03-cold-starts": "warm", "04-cost": "warm",
                         "05-tuning": "cold"}, paths
    finally:
        stop_local(folders)
