"""Power tuning on AWS, as aws-lambda-power-tuning does it: temporary versions and aliases, then cleanup.

Infrastructure as code stays the source of truth: the invoker only creates temporary versions
and aliases, deletes them, and restores the function's memory and description.
"""
from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pandas as pd

from workbook import aws
from workbook.telemetry.reports import parse_reports
from workbook.tuning.analysis import TuningError
from workbook.tuning.runner import InvocationResult

__all__ = ["AwsLambdaInvoker"]


class AwsLambdaInvoker:
    """Power tuning on AWS, as aws-lambda-power-tuning does it.

    For each memory value: UpdateFunctionConfiguration, wait (``function_updated_v2``),
    PublishVersion, point the alias ``RAM<mb>`` at it; Invoke with ``LogType=Tail`` and read
    the REPORT from the tail. ``cleanup()`` deletes every alias and version it made and
    restores the original memory and description, whatever happened before.
    """

    def __init__(self, function_name: str, region: str | None = None, client: Any = None, alias_prefix: str = "RAM") -> None:
        self.function_name = function_name
        self.client = client or aws.client("lambda", region)
        self.alias_prefix = alias_prefix
        config = self.client.get_function_configuration(FunctionName=function_name)
        self.original_memory_mb = int(config["MemorySize"])
        self.original_description = config.get("Description", "")
        self.architecture = (config.get("Architectures") or ["x86_64"])[0]
        self.aliases: list[str] = []
        self.versions: list[str] = []
        self._alias: str | None = None
        self._changed = False

    def set_memory(self, memory_mb: int) -> None:
        self._changed = True
        self.client.update_function_configuration(
            FunctionName=self.function_name, MemorySize=int(memory_mb),
            # a new description makes every publish a new version, hence fresh environments
            Description=f"power tuning {memory_mb} MB {uuid.uuid4().hex[:8]}",
        )
        self._wait_updated()
        version = self.client.publish_version(FunctionName=self.function_name)["Version"]
        self.versions.append(version)
        alias = f"{self.alias_prefix}{memory_mb}"
        try:
            self.client.update_alias(FunctionName=self.function_name, Name=alias, FunctionVersion=version)
        except self.client.exceptions.ResourceNotFoundException:
            self.client.create_alias(FunctionName=self.function_name, Name=alias, FunctionVersion=version)
        if alias not in self.aliases:
            self.aliases.append(alias)
        self._alias = alias

    def _wait_updated(self) -> None:
        waiter = self.client.get_waiter("function_updated_v2")
        waiter.wait(FunctionName=self.function_name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})

    def invoke(self, payload: Any) -> InvocationResult:
        body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload if payload is not None else {})
        answer = self.client.invoke(
            FunctionName=self.function_name, Qualifier=self._alias or "$LATEST",
            Payload=body.encode() if isinstance(body, str) else body, LogType="Tail",
        )
        stream = answer.get("Payload")
        response = stream.read() if hasattr(stream, "read") else None
        tail = base64.b64decode(answer.get("LogResult") or b"").decode("utf-8", "replace")
        reports = parse_reports(tail.splitlines())
        error = answer.get("FunctionError")
        if reports.empty:
            return InvocationResult(float("nan"), float("nan"), None, None, error or "no REPORT line in the log tail",
                                    response)
        row = reports.iloc[-1]
        if error is None and row["status"] != "ok":
            error = str(row["status"])
        init = row["init_duration_ms"]
        return InvocationResult(float(row["duration_ms"]), float(row["billed_duration_ms"]),
                                None if pd.isna(init) else float(init), float(row["max_memory_used_mb"]), error, response)

    def cleanup(self) -> None:
        problems = []
        for alias in self.aliases:
            try:
                self.client.delete_alias(FunctionName=self.function_name, Name=alias)
            except Exception as exc:  # noqa: BLE001 - keep cleaning: one failure must not leave the rest behind
                problems.append(f"alias {alias}: {exc}")
        for version in self.versions:
            try:
                self.client.delete_function(FunctionName=self.function_name, Qualifier=version)
            except Exception as exc:  # noqa: BLE001 - keep cleaning: one failure must not leave the rest behind
                problems.append(f"version {version}: {exc}")
        if self._changed:
            try:
                self.client.update_function_configuration(
                    FunctionName=self.function_name, MemorySize=self.original_memory_mb,
                    Description=self.original_description,
                )
                self._wait_updated()
            except Exception as exc:  # noqa: BLE001 - keep cleaning: one failure must not leave the rest behind
                problems.append(f"restoring {self.original_memory_mb} MB: {exc}")
        self.aliases, self.versions, self._alias, self._changed = [], [], None, False
        if problems:
            raise TuningError(f"power-tuning cleanup of {self.function_name} left: " + "; ".join(problems))
