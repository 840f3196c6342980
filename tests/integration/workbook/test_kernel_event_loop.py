"""Nothing the library does blocks the kernel's event loop: cells queued behind a plan still run.

JupyterLab's Run All sends every cell at once and the kernel queues them; Papermill sends one at a
time and never sees this. Pulumi's runtime pumps an asyncio loop, and run on the kernel's own loop
(ipykernel 7) it dropped every queued cell: the oracle here is the real kernel, driven as Lab drives it.
"""
from __future__ import annotations

import pytest
from jupyter_client.manager import start_new_kernel

CELLS = [
    "from workbook.deploy.plan import offline_plan\nplan = offline_plan('local')",
    "print(len(plan.resources))",
    "again = offline_plan('local')   # the same params: planned once per session",
    "print('done', len(again.resources) == len(plan.resources))",
]


@pytest.fixture
def kernel():
    manager, client = start_new_kernel(kernel_name="python3")
    yield client
    client.stop_channels()
    manager.shutdown_kernel(now=True)


def test_cells_queued_behind_the_offline_plan_all_run(kernel):
    # GIVEN four cells sent at once, as Run All sends them
    ids = [kernel.execute(code) for code in CELLS]
    # WHEN the kernel answers each
    replies = {}
    while len(replies) < len(ids):
        reply = kernel.get_shell_msg(timeout=300)
        if reply["parent_header"].get("msg_id") in ids:
            replies[reply["parent_header"]["msg_id"]] = reply["content"]
    # THEN every cell ran, in order, and none errored
    assert [replies[i]["status"] for i in ids] == ["ok"] * len(ids)
    assert [replies[i]["execution_count"] for i in ids] == sorted(replies[i]["execution_count"] for i in ids)
