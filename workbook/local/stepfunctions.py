"""Step Functions in the local environment: moto's own executor, with its Lambda steps run by the sandbox.

moto 5 ships an executor for the Amazon States Language (``moto/stepfunctions/parser``, ported
from LocalStack). A server turns it on with ``POST /moto-api/config`` and
``{"stepfunctions": {"execute_state_machine": true}}``; it must be on before a state machine is
created (moto keeps executable state machines in a backend of their own). Its task states call
other services through boto3 at ``localhost:$MOTO_PORT``: moto's own server, where
``moto_router.py`` answers Lambda's Invoke API from the sandbox engine and passes everything
else (the steps' SNS publishes) to moto.

What it means for timing: moto's executor sleeps between retries in real time
(``IntervalSeconds`` x ``BackoffRate``^n, capped by ``MaxDelaySeconds``, then uniform in [0, that]
for ``JitterStrategy: FULL``), not on the environment's accelerated clock, so
``params/local.yaml`` keeps the pipeline's retry intervals short instead.
"""
from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import requests

from workbook.local.errors import ProvisioningError

T_STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
EXECUTOR_CONFIG = {"stepfunctions": {"execute_state_machine": True}}
IN_PROCESS_API = "http://motoapi.amazonaws.com"


def enable_executor(endpoint_url: str) -> None:
    """Turn on moto's ASL executor on the server at ``endpoint_url``.

    A client without a loopback endpoint is moto in-process (``mock_aws``, the unit tests): its
    documented address for the same API is ``http://motoapi.amazonaws.com``, which the mock intercepts.
    """
    if not endpoint_url.startswith(("http://127.0.0.1", "http://localhost")):
        requests.post(f"{IN_PROCESS_API}/moto-api/config", json=EXECUTOR_CONFIG, timeout=10).raise_for_status()
        return
    request = urllib.request.Request(f"{endpoint_url.rstrip('/')}/moto-api/config", method="POST",
                                     data=json.dumps(EXECUTOR_CONFIG).encode(),
                                     headers={"Content-Type": "application/json"})
    # moto answers with its config, but (5.2) without the stepfunctions key: a 2xx is all there is to check.
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
    except OSError as exc:
        raise ProvisioningError(f"moto's server at {endpoint_url} did not enable its Step Functions executor "
                                f"(POST /moto-api/config): {exc}") from exc


def provision(plan: dict, client: Callable[[str], Any]) -> list[dict[str, str]]:
    """Create the plan's state machines, executable; return ``[{"name", "arn"}]``.

    The definitions are the plan's own (``infra/pipeline.py``): their Lambda ARNs resolve in the
    sandbox (it knows every function by name, key and ARN) and their topic ARNs are moto's.
    """
    machines = [r for r in plan.get("resources", []) if r.get("type") == T_STATE_MACHINE]
    if not machines:
        return []
    sfn = client("stepfunctions")
    enable_executor(sfn.meta.endpoint_url)
    created = []
    for resource in machines:
        inputs = resource["inputs"]
        name = inputs.get("name") or resource["name"]
        definition = inputs["definition"]
        arguments = {"name": name, "definition": definition if isinstance(definition, str) else json.dumps(definition),
                     "roleArn": inputs["roleArn"], "type": inputs.get("type") or "STANDARD"}
        tracing = inputs.get("tracingConfiguration")
        if tracing:
            arguments["tracingConfiguration"] = {"enabled": bool(tracing.get("enabled"))}
        try:
            arn = sfn.create_state_machine(**arguments)["stateMachineArn"]
        except sfn.exceptions.StateMachineAlreadyExists:
            arn = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if m["name"] == name)
            sfn.update_state_machine(stateMachineArn=arn, definition=arguments["definition"],
                                     roleArn=arguments["roleArn"])
        created.append({"name": name, "arn": arn})
    return created


def start_execution(client: Callable[[str], Any], arn: str, payload: Any) -> str:
    """An EventBridge target's delivery to a state machine: one execution with the event as its input.

    AWS names such an execution with a UUID. moto's executor would name it ``None`` (it does not
    generate a name), and every later one would collide with it, so the name is given here.
    """
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return client("stepfunctions").start_execution(stateMachineArn=arn, name=str(uuid.uuid4()),
                                                   input=body)["executionArn"]
