"""The engine process of a local environment: the sandbox, its event sources and its endpoints.

``python -m workbook.local.engine --state-dir DIR`` reads ``DIR/state.json`` (the endpoint and the
ports chosen by ``start``) and ``DIR/topology.json`` (what provisioning derived from the plan),
then runs until SIGTERM or SIGINT, when it ends every execution environment it started.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from workbook import aws
from workbook.local import endpoints, sources
from workbook.local.sandbox import FunctionConfig, LogFormat, PlatformSettings, Sandbox, Telemetry, detect


def function_config(entry: dict) -> FunctionConfig:
    """A topology function entry -> the sandbox's FunctionConfig."""
    return FunctionConfig(
        key=entry["key"], function_name=entry["function_name"], memory_mb=int(entry["memory_mb"]),
        timeout_s=float(entry["timeout_s"]), handler=entry["handler"], environment=dict(entry["environment"]),
        code_paths=tuple(entry["code_paths"]), reserved_concurrency=entry.get("reserved_concurrency"),
        log_format=LogFormat.JSON if str(entry.get("log_format", "Text")).upper() == "JSON" else LogFormat.TEXT,
        log_group=entry.get("log_group", ""), application_log_level=entry.get("application_log_level"),
        tracing_active=bool(entry.get("tracing_active")), region=entry.get("region", "us-east-1"))


#: The environment variable naming the listening sockets ``start`` bound and handed over: ``{name: fd}``.
LISTENERS_ENV = "LWB_ENGINE_LISTENERS"
#: The environment variable carrying the control endpoint's per-start token (also in the 0600 state file).
CONTROL_TOKEN_ENV = "LWB_CONTROL_TOKEN"


def inherited_listeners() -> dict[str, socket.socket]:
    """The sockets the parent bound before starting this process, by endpoint name."""
    named = json.loads(os.environ.get(LISTENERS_ENV) or "{}")
    return {name: socket.socket(fileno=int(fd)) for name, fd in named.items()}


class Engine:
    """Everything that runs inside the engine process, wired from the topology."""

    def __init__(self, state: dict, topology: dict, control_token: str) -> None:
        self.state, self.topology = state, topology
        self.client = aws.client
        self.stop_event = threading.Event()
        ports = state["engine"]["ports"]
        self.telemetry = Telemetry(aws.client)
        runtime = topology.get("runtime") or {}
        platform = PlatformSettings(endpoint_url=state["endpoint_url"], region=state.get("region", "us-east-1"),
                                    extension_port=ports["extension"], owner=state["owner"],
                                    python=runtime.get("python"),
                                    runtime_paths=tuple(runtime["paths"]) if "paths" in runtime else None)
        self.sandbox = Sandbox(platform, self.telemetry, idle_expiry_s=float(topology.get("idle_expiry_s", 300)))
        for entry in topology["functions"]:
            self.sandbox.register(function_config(entry))
        clock_factor = float(topology.get("clock_factor", 1.0))
        self.async_invoker = sources.AsyncInvoker(self.sandbox, topology.get("async_configs", {}), aws.client,
                                                  self.stop_event, clock_factor=clock_factor)
        self.queue_metrics = sources.QueueMetrics(topology, aws.client, self.telemetry, self.stop_event)
        self.workers: list[threading.Thread] = [self.async_invoker, self.queue_metrics]
        for mapping in topology.get("event_source_mappings", []):
            if not mapping.get("enabled", True):
                continue
            for index in range(int(mapping.get("maximum_concurrency", 2))):
                self.workers.append(sources.SqsPoller(self.sandbox, mapping, aws.client, self.stop_event, index,
                                                      platform.region, on_age=self.queue_metrics.observe_age))
        for route in topology.get("s3_notifications", []):
            self.workers.append(sources.S3NotificationRouter(route, aws.client, self.async_invoker, self.stop_event))
        for rule in topology.get("rules", []):
            if rule.get("queue_url"):
                self.workers.append(sources.RuleForwarder(rule, aws.client, self.async_invoker, self.stop_event))
        self.schedules = sources.ScheduleClock(topology.get("rules", []), self.async_invoker, aws.client,
                                               self.stop_event, clock_factor, platform.region)
        self.workers.append(self.schedules)
        self.webhook = endpoints.WebhookSink()
        listeners = inherited_listeners()

        def serve(app: Any, name: str) -> Any:
            return endpoints.serve(app, ports[name], listener=listeners.get(name))

        self.servers = [
            serve(endpoints.Control(self.sandbox, self.status, self.async_invoker.submit, self.shutdown, self.webhook,
                               token=control_token), "control"),
            serve(endpoints.SecretsExtension(aws.client, self.sandbox.session_token_valid), "extension"),
            serve(self.webhook, "webhook"),
        ]
        if topology.get("http_api"):
            self.servers.append(serve(endpoints.HttpApi(self.sandbox, topology["http_api"], ports["api"]), "api"))
        for url in topology.get("function_urls", [])[:1]:
            self.servers.append(serve(endpoints.FunctionUrl(self.sandbox, url, ports["function_url"]), "function_url"))
        self.started = time.time()

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def status(self) -> dict[str, Any]:
        cpu_mode, memory_mode = detect()
        return {
            "uptime_s": round(time.time() - self.started, 1),
            "cpu_limit": cpu_mode.value,
            "memory_limit": memory_mode.value,
            "functions": {config.key: {"function_name": config.function_name, "memory_mb": config.memory_mb,
                                       "timeout_s": config.timeout_s,
                                       "reserved_concurrency": config.reserved_concurrency,
                                       "warm_environments": self.sandbox.warm_environments(config.function_name),
                                       "in_flight": self.sandbox.concurrency(config.function_name)}
                          for config in self.sandbox.functions},
            "async_pending": self.async_invoker.pending(),
            "schedules_fired": self.schedules.fired,
            "virtual_time": self.schedules.virtual_now().isoformat(),
            "webhook_deliveries": len(self.webhook.deliveries),
        }

    def shutdown(self) -> None:
        self.stop_event.set()

    def close(self) -> None:
        self.stop_event.set()
        for server in self.servers:
            server.shutdown()
            server.server_close()
        self.sandbox.close()
        self.telemetry.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workbook.local.engine")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--owner", default=None, help="the environment's owner token (names its processes)")
    args = parser.parse_args(argv)
    folder = Path(args.state_dir)
    # A stop may come while the engine is still being built: note it, and end before starting anything.
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state = json.loads((folder / "state.json").read_text())
    topology = json.loads((folder / "topology.json").read_text())
    os.environ["AWS_ENDPOINT_URL"] = state["endpoint_url"]
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["AWS_REGION"] = state.get("region", "us-east-1")
    aws.reset_clients()
    # Out of the environment at once: nothing the engine starts (function processes) inherits it.
    control_token = os.environ.pop(CONTROL_TOKEN_ENV, "")
    if not control_token:
        parser.error(f"{CONTROL_TOKEN_ENV} is not set: the engine is started by `workbook local start`")
    engine = Engine(state, topology, control_token)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: engine.shutdown())
    if stopping.is_set():
        engine.close()
        return 0
    engine.start()
    (folder / "engine.ready").write_text(json.dumps({"pid": os.getpid()}))
    try:
        while not engine.stop_event.wait(0.1):
            pass
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
