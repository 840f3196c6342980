"""workbook.deploy: stack config, backend, passphrase, prod safety, errors, masking, Jupyter and the CLI.

Most tests run without the Pulumi CLI: the Automation API's stack is replaced by a fake (``fake_auto``),
or the real Automation API drives a stub ``pulumi`` executable (``stub_cli``) that answers the commands
it issues and writes engine events. Tests marked ``pulumi_cli`` need the real CLI and skip without it.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import textwrap
import threading
from importlib import metadata
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from pulumi import automation as auto
from pulumi.automation import CommandResult, EngineEvent, OutputValue

from infra import config
from workbook import cli
from workbook import deploy as automation
from workbook.deploy import engine, operations, stacks
from workbook.deploy.errors import INSTALL_URL
from workbook.deploy.plan import offline_plan
from workbook.errors import WorkbookError

PASSPHRASE = "correct-horse-battery-staple-4217"
SECRET_VALUE = "db-password-that-must-never-show-9931"
ENDPOINT = "http://127.0.0.1:4566"


# ---------------------------------------------------------------------------------------------
# Factories.
# ---------------------------------------------------------------------------------------------
def settings_for(env: str, **backend: Any) -> config.Settings:
    """The env's real params, with the backend overridden (e.g. a file backend under tmp_path)."""
    raw = yaml.safe_load((config.PARAMS_DIR / f"{env}.yaml").read_text())
    if backend:
        raw["backend"] = {**raw.get("backend", {}), **backend}
    return config.from_mapping(raw, source=f"params/{env}.yaml")


def event(**body: Any) -> EngineEvent:
    return EngineEvent.from_json({"sequence": 1, "timestamp": 0, **body})


def step(kind: str, op: str, type_token: str, name: str, project: str = "lwb-compute") -> EngineEvent:
    urn = f"urn:pulumi:local::{project}::{type_token}::{name}"
    return event(**{kind: {"metadata": {"op": op, "urn": urn, "type": type_token, "provider": ""}}})


def resource_events(op: str) -> list[EngineEvent]:
    resources = [("aws:sqs/queue:Queue", "task-queue"), ("aws:sqs/queue:Queue", "task-dlq"),
                 ("aws:lambda/function:Function", "api-processor")]
    events = [step("resourcePreEvent", op, t, n) for t, n in resources]
    events += [step("resOutputsEvent", op, t, n) for t, n in resources]
    events.append(event(summaryEvent={"maybeCorrupt": False, "durationSeconds": 1, "resourceChanges": {op: 3}}))
    return events


class FakeStack:
    """Stands in for auto.Stack: records calls, replays engine events, returns outputs."""

    def __init__(self, name: str, project: str, calls: list, *, fail: dict | None = None,
                 on_run: Any = None, diagnostics: list | None = None) -> None:
        self.name, self.project, self.calls = name, project, calls
        self.fail = fail if fail is not None else {}
        self.on_run = on_run
        self.diagnostics = diagnostics if diagnostics is not None else []
        self.config: dict[str, str] = {}

    def _maybe_fail(self, operation: str, on_event=None) -> None:
        self.calls.append((self.project, operation))
        if self.on_run:
            self.on_run(operation)
        if operation in self.fail:
            for diagnostic in self.diagnostics:
                if on_event:
                    on_event(diagnostic)
            raise self.fail[operation]

    def get_all_config(self) -> dict:
        return {k: auto.ConfigValue(v) for k, v in self.config.items()}

    def remove_all_config(self, keys: list[str], path: bool = False) -> None:
        self.calls.append((self.project, "config rm-all", tuple(keys)))
        for key in keys:
            self.config.pop(key, None)

    def set_all_config(self, values: dict, path: bool = False) -> None:
        self.calls.append((self.project, "config set-all", path))
        self.config.update({k: v.value for k, v in values.items()})

    def _replay(self, op: str, on_output=None, on_event=None) -> None:
        if on_output:
            on_output(f"{op}ing (passphrase is {PASSPHRASE})")   # a leak the workbook must scrub
        for engine_event in resource_events(op):
            if on_event:
                on_event(engine_event)

    def preview(self, on_output=None, on_event=None, color=None):
        self._maybe_fail("preview", on_event)
        self._replay("create", on_output, on_event)
        return SimpleNamespace(change_summary={"create": 3}, stdout="", stderr="")

    def up(self, on_output=None, on_event=None, color=None):
        self._maybe_fail("up", on_event)
        self._replay("create", on_output, on_event)
        return SimpleNamespace(summary=SimpleNamespace(resource_changes={"create": 3}), outputs=self.outputs(record=False))

    def refresh(self, clear_pending_creates=None, on_output=None, on_event=None, color=None):
        self._maybe_fail("refresh", on_event)
        self._replay("same", on_output, on_event)
        return SimpleNamespace(summary=SimpleNamespace(resource_changes={"same": 3}))

    def destroy(self, on_output=None, on_event=None, color=None):
        self._maybe_fail("destroy", on_event)
        self._replay("delete", on_output, on_event)
        return SimpleNamespace(summary=SimpleNamespace(resource_changes={"delete": 3}))

    def outputs(self, record: bool = True) -> dict:
        if record:
            self._maybe_fail("outputs")
        return {"apiUrl": OutputValue("https://api.local", False), "dbPassword": OutputValue(SECRET_VALUE, True)}


@pytest.fixture
def fake_auto(monkeypatch, tmp_path):
    """The CLI 'present', workspaces under tmp_path, and the Automation API's stacks replaced by FakeStack."""
    state = SimpleNamespace(calls=[], opened=[], fail={}, on_run=None, stacks={}, diagnostics=[])
    monkeypatch.setattr(stacks, "cli_path", lambda: "/opt/pulumi/bin/pulumi")
    monkeypatch.setattr(stacks, "WORKSPACES_DIR", tmp_path / "workspaces")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("AWS_ENDPOINT_URL", ENDPOINT)

    def opener(mode: str):
        def open_stack(stack_name, project_name, program, opts):
            state.opened.append(SimpleNamespace(mode=mode, stack_name=stack_name, project=project_name,
                                                program=program, opts=opts))
            key = (project_name, stack_name)
            if key not in state.stacks:
                state.stacks[key] = FakeStack(stack_name, project_name, state.calls, fail=state.fail,
                                              on_run=state.on_run, diagnostics=state.diagnostics)
            return state.stacks[key]
        return open_stack

    monkeypatch.setattr(auto, "create_or_select_stack", opener("create_or_select"))
    monkeypatch.setattr(auto, "select_stack", opener("select"))
    state.settings = lambda env: settings_for(env, url=f"file://{tmp_path / 'state'}")
    return state


@pytest.fixture
def no_cli(monkeypatch):
    monkeypatch.setattr(stacks, "cli_path", lambda: None)


def ops(calls: list) -> list[tuple[str, str]]:
    return [c for c in calls if c[1] in ("preview", "up", "refresh", "destroy", "outputs")]


# ---------------------------------------------------------------------------------------------
# Stack config derived from params.
# ---------------------------------------------------------------------------------------------
def test_local_config_points_every_service_at_the_local_endpoint():
    derived = automation.stack_config(config.load("local"), endpoint_url=ENDPOINT)

    assert derived["aws:region"] == "us-east-1"
    for flag in ("skipCredentialsValidation", "skipRequestingAccountId", "skipMetadataApiCheck", "s3UsePathStyle"):
        assert derived[f"aws:{flag}"] == "true"
    assert derived["aws:accessKey"] and derived["aws:secretKey"]
    endpoints = {k.rsplit(".", 1)[1]: v for k, v in derived.items() if k.startswith("aws:endpoints[0].")}
    assert set(endpoints) == set(stacks.ENDPOINT_SERVICES)
    assert set(endpoints.values()) == {ENDPOINT}
    # every service family the programs use has its endpoint
    assert {"lambda", "sqs", "sns", "s3", "events", "sfn", "logs", "cloudwatch", "iam", "sts", "ec2", "rds",
            "secretsmanager", "kms", "apigatewayv2", "appautoscaling"} <= set(endpoints)


def test_local_endpoint_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:39999")
    derived = automation.stack_config(config.load("local"))
    assert derived["aws:endpoints[0].lambda"] == "http://127.0.0.1:39999"


def test_local_without_a_running_endpoint_says_how_to_start_one(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with pytest.raises(automation.LocalEndpointMissing, match="workbook local start"):
        automation.stack_config(config.load("local"))


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_aws_envs_get_region_and_params_and_nothing_else(env):
    derived = automation.stack_config(config.load(env))
    assert set(derived) == {"workbook:env", "workbook:params", "aws:region"}
    assert derived["aws:region"] == config.load(env).params.aws_region


@pytest.mark.parametrize("env", config.ENVIRONMENTS)
def test_workbook_params_round_trips_through_from_mapping(env):
    settings = config.load(env)
    derived = automation.stack_config(settings, endpoint_url=ENDPOINT)

    restored = config.from_mapping(json.loads(derived["workbook:params"]), source="stack config")

    assert restored.params == settings.params
    assert restored.prefix == settings.prefix


def test_config_sync_removes_hand_edits_and_rebuilds_structured_keys():
    stack = FakeStack("local", "lwb-compute", [])
    stack.config = {"aws:region": "eu-west-1", "workbook:handEdited": "x", "aws:endpoints": "[{\"s3\":\"old\"}]"}

    stacks._apply_config(stack, automation.stack_config(config.load("local"), endpoint_url=ENDPOINT))

    removed = next(c[2] for c in stack.calls if c[1] == "config rm-all")
    assert set(removed) == {"workbook:handEdited", "aws:endpoints"}
    assert stack.config["aws:region"] == "us-east-1"
    assert ("lwb-compute", "config set-all", True) in stack.calls   # --path for the endpoints list


def run_program_under_mocks(settings: config.Settings, kind: automation.StackKind, derived: dict[str, str]):
    """Run the inline program the Automation API would run, under Pulumi's mocks, with ``derived`` as config."""
    import pulumi
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from infra import artifacts
    from infra.mocks import PlanMocks
    from workbook.deploy.plan import PULUMI_LOCK as _LOCK

    foundation_outputs = offline_plan(settings.env, settings).foundation_outputs
    referenced = {name: foundation_outputs for name in settings.params.foundation.stacks.model_dump().values()}
    mocks = PlanMocks(settings.params.aws_region, referenced)
    with _LOCK:
        previous, artifacts.OFFLINE = artifacts.OFFLINE, True
        try:
            pulumi.runtime.set_mocks(mocks, project=f"lwb-{kind.value}", stack=settings.env, preview=False)
            pulumi.runtime.set_all_config({k: v for k, v in derived.items() if "[" not in k})
            _sync_await(run_pulumi_func(stacks._program(kind)))
        finally:
            artifacts.OFFLINE = previous
            pulumi.runtime.set_all_config({})
    return mocks.resources


@pytest.mark.parametrize("env", ["dev", "local"])
def test_inline_programs_build_from_the_derived_config(env):
    settings = config.load(env)
    derived = automation.stack_config(settings, endpoint_url=ENDPOINT)
    planned = automation.plan_summary(offline_plan(env, settings))

    resources = run_program_under_mocks(settings, automation.StackKind.COMPUTE, derived)

    expected = int(planned[planned["stack"] == "compute"]["count"].sum())
    assert len(resources) == expected


def test_inline_program_refuses_a_region_that_disagrees_with_params():
    settings = config.load("dev")
    derived = {**automation.stack_config(settings), "aws:region": "eu-west-1"}
    with pytest.raises(config.ParamsError, match="aws_region"):
        run_program_under_mocks(settings, automation.StackKind.COMPUTE, derived)


# ---------------------------------------------------------------------------------------------
# Backend and passphrase.
# ---------------------------------------------------------------------------------------------
def test_relative_file_backend_resolves_against_the_repo_root():
    backend = automation.resolve_backend(config.load("local"))   # file://.state/pulumi
    assert backend.url == f"file://{config.REPO_ROOT}/.state/pulumi"
    assert backend.path == config.REPO_ROOT / ".state" / "pulumi"
    assert backend.self_managed


def test_home_file_backend_expands_tilde(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    backend = automation.resolve_backend(settings_for("dev", url="file://~/.pulumi-workbook?no_tmp_dir=true"))
    assert backend.url == f"file://{tmp_path}/.pulumi-workbook?no_tmp_dir=true"


@pytest.mark.parametrize("url, scheme, self_managed", [
    ("file:///var/lib/pulumi", "file", True),
    ("s3://lwb-pulumi-state-prod?region=us-east-1", "s3", True),
    ("https://api.pulumi.com", "https", False),
])
def test_backend_urls_pass_through(url, scheme, self_managed):
    backend = automation.resolve_backend(settings_for("dev", url=url))
    assert (backend.url, backend.scheme, backend.self_managed) == (url, scheme, self_managed)


@pytest.mark.parametrize("url", ["ftp://host/state", "s3://", "file://", "/just/a/path"])
def test_bad_backend_url_names_file_field_and_forms(url):
    with pytest.raises(automation.BackendError) as caught:
        automation.resolve_backend(settings_for("dev", url=url))
    message = str(caught.value)
    assert "params/dev.yaml" in message and "backend.url" in message and "file://" in message


def test_fully_qualified_names_use_the_diy_organization():
    names = [t.fully_qualified_name for t in automation.targets(config.load("local"))]
    assert names == ["organization/lwb-foundation/local", "organization/lwb-compute/local"]
    assert [t.kind.value for t in automation.targets(config.load("local"), order="destroy")] == ["compute", "foundation"]
    assert [t.fully_qualified_name for t in automation.targets(config.load("prod"))] == ["organization/lwb-compute/prod"]


def test_foundation_stack_only_where_standalone():
    with pytest.raises(automation.StackChoiceError, match="foundation.standalone"):
        automation.targets(config.load("staging"), "foundation")


def test_missing_passphrase_is_a_clear_error_and_nothing_is_written(fake_auto, monkeypatch, tmp_path):
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)

    with pytest.raises(automation.PassphraseMissing) as caught:
        automation.preview(fake_auto.settings("local"), echo=None)

    assert "export PULUMI_CONFIG_PASSPHRASE=" in str(caught.value)
    assert "backend.passphrase_env" in str(caught.value)
    assert fake_auto.opened == []
    assert not (tmp_path / "workspaces").exists() and not (tmp_path / "state").exists()


def test_passphrase_variable_name_comes_from_params(fake_auto, monkeypatch):
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    settings = settings_for("dev", url="file:///tmp/unused", passphrase_env="LWB_DEV_PASSPHRASE")
    with pytest.raises(automation.PassphraseMissing, match="LWB_DEV_PASSPHRASE"):
        automation.preview(settings, echo=None)

    monkeypatch.setenv("LWB_DEV_PASSPHRASE", PASSPHRASE)
    automation.preview(fake_auto.settings("dev").__class__(settings.params, settings.source), echo=None)
    opts = fake_auto.opened[-1].opts
    assert opts.env_vars["PULUMI_CONFIG_PASSPHRASE"] == PASSPHRASE


def test_passphrase_only_reaches_the_cli_environment(fake_auto, tmp_path):
    automation.preview(fake_auto.settings("local"), echo=None)

    for opened in fake_auto.opened:
        assert opened.opts.env_vars["PULUMI_CONFIG_PASSPHRASE"] == PASSPHRASE
        assert opened.opts.secrets_provider == "passphrase"
        assert opened.opts.project_settings.backend.url == f"file://{tmp_path / 'state'}"
        assert opened.opts.work_dir.startswith(str(tmp_path / "workspaces"))
    for stack in fake_auto.stacks.values():
        assert PASSPHRASE not in json.dumps(stack.config)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert PASSPHRASE not in path.read_text(errors="replace")


# ---------------------------------------------------------------------------------------------
# Operations, order, summary and progress (fake stacks).
# ---------------------------------------------------------------------------------------------
def test_up_deploys_foundation_first_and_destroy_tears_compute_down_first(fake_auto):
    settings = fake_auto.settings("local")
    automation.up(settings, echo=None)
    automation.destroy(settings, echo=None)

    assert ops(fake_auto.calls) == [("lwb-foundation", "up"), ("lwb-compute", "up"),
                                    ("lwb-compute", "destroy"), ("lwb-foundation", "destroy")]
    assert {o.stack_name for o in fake_auto.opened} == {"local"}
    assert [o.mode for o in fake_auto.opened] == ["create_or_select"] * 2 + ["select"] * 2


def test_preview_streams_output_reports_progress_and_returns_a_summary_frame(fake_auto):
    lines: list[str] = []
    seen: list[engine.Progress] = []

    run = automation.preview(fake_auto.settings("local"), stack="compute", echo=lines.append, progress=seen.append)

    assert lines and all(PASSPHRASE not in line for line in lines)
    assert [(p.done, p.total) for p in seen if not p.final] == [(1, 3), (2, 3), (3, 3)]
    assert seen[-1].final and str(seen[-1]) == "[compute preview] 3/3 resources"
    summary = run.summary
    assert list(summary.columns) == ["stack", "operation", "type", "count"]
    assert summary.set_index("type")["count"].to_dict() == {"aws:lambda/function:Function": 1, "aws:sqs/queue:Queue": 2}
    assert set(run.changes["name"]) == {"task-queue", "task-dlq", "api-processor"}
    assert run.counts() == {"create": 3}
    assert not run.applied


def test_derived_config_is_applied_before_each_operation(fake_auto):
    automation.refresh(fake_auto.settings("local"), stack="compute", echo=None)
    stack = fake_auto.stacks[("lwb-compute", "local")]
    assert stack.config["aws:endpoints[0].sqs"] == ENDPOINT
    assert json.loads(stack.config["workbook:params"])["environment"] == "local"
    assert ("lwb-compute", "config set-all", True) in fake_auto.calls


# ---------------------------------------------------------------------------------------------
# Prod safety.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("confirm", [None, "", "prod", "organization/lwb-compute/dev"])
def test_prod_destroy_needs_the_fully_qualified_name_before_any_workspace(fake_auto, confirm):
    with pytest.raises(automation.ProdSafetyError) as caught:
        automation.destroy(fake_auto.settings("prod"), confirm_destroy=confirm, echo=None)
    assert "organization/lwb-compute/prod" in str(caught.value)
    assert fake_auto.opened == []


def test_prod_destroy_on_pulumi_cloud_needs_the_organization(fake_auto, monkeypatch):
    monkeypatch.delenv("PULUMI_ORG", raising=False)
    settings = settings_for("prod", url="https://api.pulumi.com", secrets_provider="default")
    with pytest.raises(automation.ProdSafetyError, match="PULUMI_ORG"):
        automation.destroy(settings, confirm_destroy="acme/lwb-compute/prod", echo=None)

    monkeypatch.setenv("PULUMI_ORG", "acme")
    automation.destroy(settings, confirm_destroy="acme/lwb-compute/prod", echo=None)
    assert fake_auto.opened[-1].stack_name == "acme/lwb-compute/prod"
    assert fake_auto.opened[-1].opts.secrets_provider is None      # Pulumi Cloud's own secrets manager


def test_prod_destroy_guard_comes_before_the_cli_check(no_cli):
    with pytest.raises(automation.ProdSafetyError):
        automation.destroy("prod", echo=None)


def test_prod_destroy_with_the_right_name_proceeds(fake_auto):
    automation.destroy(fake_auto.settings("prod"), confirm_destroy="organization/lwb-compute/prod", echo=None)
    assert ops(fake_auto.calls) == [("lwb-compute", "destroy")]


def test_non_prod_destroy_needs_no_confirmation(fake_auto):
    automation.destroy(fake_auto.settings("staging"), echo=None)
    assert ops(fake_auto.calls) == [("lwb-compute", "destroy")]


def test_prod_up_previews_shows_and_stops_without_approval(fake_auto):
    shown: list[str] = []
    with pytest.raises(automation.ProdSafetyError, match="approve=True") as caught:
        automation.up(fake_auto.settings("prod"), echo=shown.append)

    assert ops(fake_auto.calls) == [("lwb-compute", "preview")]
    assert any("Preview of prod" in line for line in shown)
    assert caught.value.preview is not None and caught.value.preview.counts() == {"create": 3}


def test_prod_up_with_approval_previews_then_applies(fake_auto):
    run = automation.up(fake_auto.settings("prod"), approve=True, echo=None)
    assert ops(fake_auto.calls) == [("lwb-compute", "preview"), ("lwb-compute", "up")]
    assert run.applied


def test_non_prod_up_applies_without_a_preview(fake_auto):
    automation.up(fake_auto.settings("staging"), echo=None)
    assert ops(fake_auto.calls) == [("lwb-compute", "up")]


# ---------------------------------------------------------------------------------------------
# CLI missing: a clear error, and the offline-plan fallback.
# ---------------------------------------------------------------------------------------------
def test_cli_missing_message_says_how_to_get_it_and_what_works_without(no_cli):
    with pytest.raises(automation.PulumiCliMissing) as caught:
        automation.preview("dev", echo=None)
    message = str(caught.value)
    assert "not on PATH" in message and INSTALL_URL in message and "offline plan" in message
    assert isinstance(caught.value, WorkbookError)


def test_deploy_or_plan_falls_back_to_the_offline_plan(no_cli):
    result = automation.deploy_or_plan("local", "up")

    assert result.mode == "offline-plan" and result.mode is automation.Mode.OFFLINE_PLAN
    assert result.message.startswith("Only a plan") and "nothing was deployed" in result.message
    assert not result.applied and result.run is None and result.plan is not None
    assert list(result.summary.columns) == ["stack", "operation", "type", "count"]
    assert set(result.summary["stack"]) == {"foundation", "compute"}
    assert result.summary["count"].sum() == len(result.resources) == len(result.plan.resources)
    assert {"taskQueueUrl", "uploadsBucketName"} <= set(result.outputs)


def test_results_record_as_json(no_cli):
    record = automation.deploy_or_plan("staging").to_record()
    again = json.loads(json.dumps(record))
    assert again["mode"] == "offline-plan" and again["resources"] and again["summary"]
    assert set(again["resources"][0]) == {"stack", "operation", "type", "name"}


def test_aws_envs_never_follow_a_local_endpoint_left_in_the_environment(fake_auto, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", ENDPOINT)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", ENDPOINT)
    automation.preview(fake_auto.settings("staging"), echo=None)
    env_vars = fake_auto.opened[-1].opts.env_vars
    assert env_vars["AWS_ENDPOINT_URL"] == "" and env_vars["AWS_ENDPOINT_URL_S3"] == ""

    automation.preview(fake_auto.settings("local"), stack="compute", echo=None)
    assert "AWS_ENDPOINT_URL" not in fake_auto.opened[-1].opts.env_vars


def test_deploy_or_plan_uses_the_automation_api_when_the_cli_is_there(fake_auto):
    result = automation.deploy_or_plan(fake_auto.settings("local"), "preview", echo=None)
    assert result.mode == "automation"
    assert "nothing was changed" in result.message and "plan" not in result.message.lower()
    assert result.outputs["dbPassword"] == "[secret]"


def test_deploy_or_plan_prod_up_without_approval_returns_the_preview(fake_auto):
    result = automation.deploy_or_plan(fake_auto.settings("prod"), "up", echo=None)
    assert result.mode == "automation" and not result.applied
    assert "approve=True" in result.message and "nothing was applied" in result.message
    assert ops(fake_auto.calls)[0] == ("lwb-compute", "preview")
    assert ("lwb-compute", "up") not in ops(fake_auto.calls)


def test_deploy_or_plan_rejects_other_operations():
    with pytest.raises(ValueError, match="preview' or 'up"):
        automation.deploy_or_plan("dev", "destroy")


# ---------------------------------------------------------------------------------------------
# Error translation: realistic CLI output in the Automation API's own error classes.
# ---------------------------------------------------------------------------------------------
LOCK_STDERR = (
    "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete "
    "the lock file with `pulumi cancel`.\n  file:///work/main/.state/pulumi/.pulumi/locks/organization/lwb-compute/"
    "local/3f1c.json: created by ana@build-7 (pid 4242) at 2026-11-27T03:12:09Z")
PENDING_STDERR = textwrap.dedent("""\
    error: the current deployment has 1 resource(s) with pending operations:
      * urn:pulumi:local::lwb-compute::aws:lambda/function:Function::api-processor, interrupted while creating

    These resources are in an unknown state because the Pulumi CLI was interrupted while
    waiting for changes to these resources to complete.""")
PROGRAM_STDOUT = textwrap.dedent("""\
    Updating (local):
     +  pulumi:pulumi:Stack lwb-compute-local creating (0s) error: Program failed with an unhandled exception:
        Traceback (most recent call last):
          File "/work/main/infra/config.py", line 480, in from_pulumi_config
        infra.config.ParamsError: stack config workbook:params (local): field 'aws_region' is 'us-east-1' but the stack's aws:region is 'eu-west-1'
    error: an unhandled error occurred: python inline source runtime error: an unhandled error occurred""")


def target(env: str = "local", kind: str = "compute") -> automation.StackTarget:
    return next(t for t in automation.targets(config.load(env)) if t.kind.value == kind)


def command_error(cls, stderr: str = "", stdout: str = "", code: int = 255):
    return cls(CommandResult(stdout=stdout, stderr=stderr, code=code))


def test_diy_lock_gives_the_cancel_and_refresh_commands():
    error = automation.translate_error(command_error(auto.ConcurrentUpdateError, LOCK_STDERR), target(), "up")

    assert isinstance(error, automation.StackLockedError)
    message = str(error)
    assert "pulumi cancel --yes --stack organization/lwb-compute/local" in message
    assert "workbook refresh --env local --stack compute" in message
    assert "ana@build-7 (pid 4242)" in message      # who holds the lock
    assert error.stderr == LOCK_STDERR


def test_cloud_conflict_is_a_locked_stack_too():
    stderr = "error: [409] Conflict: Another update is currently in progress."
    error = automation.translate_error(command_error(auto.ConcurrentUpdateError, stderr), target("prod"), "up")
    assert isinstance(error, automation.StackLockedError) and "pulumi cancel" in str(error)


def test_pending_operations_give_refresh_and_export_import():
    error = automation.translate_error(command_error(auto.CommandError, PENDING_STDERR), target(), "up")

    assert isinstance(error, automation.PendingOperationsError)
    message = str(error)
    assert "--clear-pending-creates" in message
    assert "pulumi stack export --stack organization/lwb-compute/local" in message
    assert "pulumi stack import" in message


def test_missing_stack_says_deploy_first():
    stderr = "error: no stack named 'local' found"
    error = automation.translate_error(command_error(auto.StackNotFoundError, stderr), target(), "outputs")
    assert isinstance(error, automation.StackNotFound) and "workbook deploy --env local" in str(error)


def test_program_failure_names_the_params_fix():
    error = automation.translate_error(
        command_error(auto.InlineSourceRuntimeError, stdout=PROGRAM_STDOUT), target(), "up")
    assert isinstance(error, automation.ProgramError)
    assert "aws_region" in str(error) and "params/local.yaml" in str(error)


def test_wrong_passphrase_is_named():
    stderr = ("error: getting secrets manager: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or "
              "PULUMI_CONFIG_PASSPHRASE_FILE environment variables")
    error = automation.translate_error(command_error(auto.CommandError, stderr), target(), "preview")
    assert isinstance(error, automation.PassphraseMissing) and "PULUMI_CONFIG_PASSPHRASE" in str(error)


def test_s3_backend_access_problem_is_a_backend_error():
    stderr = ("error: failed to load checkpoint: blob (key \".pulumi/meta.yaml\") (code=Unknown): "
              "AccessDenied: Access Denied")
    error = automation.translate_error(command_error(auto.CommandError, stderr), target("prod"), "preview")
    assert isinstance(error, automation.BackendError) and "s3://lwb-pulumi-state-prod" in str(error)


def test_other_failures_keep_the_error_lines_and_exit_code():
    stderr = "error: 1 error occurred:\n\t* creating SQS Queue (lwb-dev-d01-task): InvalidParameterValue"
    error = automation.translate_error(command_error(auto.CommandError, stderr, code=255), target("dev"), "up")
    assert type(error) is automation.DeployError
    assert "exit code 255" in str(error) and "InvalidParameterValue" in str(error)


def test_engine_diagnostics_are_the_detail_of_a_failed_run(fake_auto):
    fake_auto.diagnostics.append(event(diagnosticEvent={
        "message": "creating SQS Queue (lwb-staging-s01-task): operation error SQS: CreateQueue, AccessDenied\n",
        "color": "never", "severity": "error"}))
    fake_auto.fail["up"] = command_error(auto.CommandError, "error: update failed", code=255)

    with pytest.raises(automation.DeployError, match="CreateQueue, AccessDenied") as caught:
        automation.up(fake_auto.settings("staging"), echo=None)
    assert "exit code 255" in str(caught.value)


def test_secrets_are_scrubbed_from_translated_errors():
    stderr = f"error: decrypting with {PASSPHRASE} failed: something"
    error = automation.translate_error(command_error(auto.CommandError, stderr), target(), "up", [PASSPHRASE])
    assert PASSPHRASE not in str(error) and PASSPHRASE not in error.stderr


def test_failures_inside_an_operation_are_translated(fake_auto):
    fake_auto.fail["up"] = command_error(auto.ConcurrentUpdateError, LOCK_STDERR)
    with pytest.raises(automation.StackLockedError, match="pulumi cancel"):
        automation.up(fake_auto.settings("dev"), echo=None)


def test_a_first_ctrl_c_waits_for_pulumi_and_says_how_to_recover(monkeypatch):
    interrupts = iter([KeyboardInterrupt()])
    release = threading.Event()

    def wait(worker: threading.Thread) -> None:
        for pending in interrupts:
            raise pending
        release.set()
        worker.join()

    monkeypatch.setattr(engine, "_wait", wait)
    monkeypatch.setattr(engine, "_terminal_delivered_sigint", lambda: True)
    build = operations._interrupted([target()], automation.Operation.UP)

    with pytest.raises(automation.DeployInterrupted) as caught:
        engine.off_loop(lambda: release.wait(10), build)
    message = str(caught.value)
    assert "finished its in-flight operations" in message
    assert "workbook refresh --env local" in message and "pulumi cancel" in message


# ---------------------------------------------------------------------------------------------
# Secrets masked in everything returned or printed.
# ---------------------------------------------------------------------------------------------
def test_mask_outputs():
    masked = automation.mask_outputs({"url": OutputValue("https://x", False), "token": OutputValue("t0k", True),
                                      "plain": 3})
    assert masked == {"url": "https://x", "token": "[secret]", "plain": 3}


def test_outputs_mask_secrets(fake_auto):
    values = automation.outputs(fake_auto.settings("dev"))
    assert values == {"apiUrl": "https://api.local", "dbPassword": "[secret]"}
    assert fake_auto.opened[-1].mode == "select"


def test_up_result_and_printed_output_mask_secrets(fake_auto, capsys):
    run = automation.up(fake_auto.settings("dev"))
    printed = capsys.readouterr().out
    assert run.outputs["dbPassword"] == "[secret]"
    assert SECRET_VALUE not in repr(run) and SECRET_VALUE not in printed
    assert PASSPHRASE not in printed and PASSPHRASE not in run.stacks[0].stdout


# ---------------------------------------------------------------------------------------------
# Jupyter: the operations run off the caller's event loop.
# ---------------------------------------------------------------------------------------------
def test_runs_inside_a_live_asyncio_loop(fake_auto):
    threads: list[str] = []

    def on_run(operation: str) -> None:
        threads.append(threading.current_thread().name)
        asyncio.run(asyncio.sleep(0))   # what the Pulumi runtime does; fails on a thread with a running loop

    fake_auto.on_run = on_run

    async def notebook_cell():
        asyncio.get_running_loop()      # a loop is running, as in Jupyter
        return automation.preview(fake_auto.settings("staging"), echo=None)

    run = asyncio.run(notebook_cell())

    assert run.counts() == {"create": 3}
    assert threads == ["workbook-automation"]


def test_deploy_or_plan_inside_a_live_asyncio_loop_without_the_cli(no_cli):
    async def notebook_cell():
        return automation.deploy_or_plan("dev")

    result = asyncio.run(notebook_cell())
    assert result.mode == "offline-plan" and not result.summary.empty


# ---------------------------------------------------------------------------------------------
# Differences from the last run.
# ---------------------------------------------------------------------------------------------
def test_diff_outputs():
    frame = automation.diff_outputs({"a": 1, "b": [1, 2], "gone": "x"}, {"a": 1, "b": [1, 3], "new": "y"})
    assert frame.set_index("name")["change"].to_dict() == {"b": "changed", "gone": "removed", "new": "added"}
    assert automation.diff_outputs(None, {"a": 1})["change"].tolist() == ["added"]
    assert automation.diff_outputs({"a": 1}, {"a": 1}, include_unchanged=True)["change"].tolist() == ["unchanged"]


def test_diff_resources_by_type_and_name():
    before = [{"stack": "compute", "type": "aws:sqs/queue:Queue", "name": "task", "inputs": {"delay": 0, "tags": {"a": 1}}},
              {"stack": "compute", "type": "aws:sqs/queue:Queue", "name": "old", "inputs": {}},
              {"stack": "compute", "type": "aws:sns/topic:Topic", "name": "n", "inputs": {"x": 1}}]
    after = [{"stack": "compute", "type": "aws:sqs/queue:Queue", "name": "task", "inputs": {"delay": 5, "tags": {"a": 1}}},
             {"stack": "compute", "type": "aws:sns/topic:Topic", "name": "n", "inputs": {"x": 1}},
             {"stack": "compute", "type": "aws:s3/bucket:Bucket", "name": "b", "inputs": {}}]
    frame = automation.diff_resources(before, after)
    rows = {(r.type, r.name): (r.change, r.changed_keys) for r in frame.itertuples()}
    assert rows == {("aws:sqs/queue:Queue", "task"): ("changed", ["delay"]),
                    ("aws:sqs/queue:Queue", "old"): ("removed", []),
                    ("aws:s3/bucket:Bucket", "b"): ("added", [])}


def test_diff_resources_accepts_tables_without_inputs(no_cli):
    plan = automation.deploy_or_plan("dev").resources
    fewer = plan.iloc[1:]
    frame = automation.diff_resources(fewer, plan)
    assert frame["change"].tolist() == ["added"] and frame["name"].tolist() == [plan.iloc[0]["name"]]


# ---------------------------------------------------------------------------------------------
# CLI sub-commands: exit codes and messages.
# ---------------------------------------------------------------------------------------------
def test_cli_unknown_env_exits_2(capsys):
    assert cli.main(["deploy", "--env", "qa"]) == 2
    assert "known environments" in capsys.readouterr().err


def test_cli_prod_destroy_without_confirmation_exits_2_and_names_the_stack(capsys):
    assert cli.main(["destroy", "--env", "prod"]) == 2
    err = capsys.readouterr().err
    assert "--confirm-destroy organization/lwb-compute/prod" in err


def test_cli_deploy_without_the_pulumi_cli_exits_1_with_the_install_hint(no_cli, capsys):
    assert cli.main(["deploy", "--env", "dev"]) == 1
    assert INSTALL_URL in capsys.readouterr().err


def test_cli_preview_without_the_pulumi_cli_shows_the_plan(no_cli, capsys):
    assert cli.main(["preview", "--env", "dev"]) == 0
    captured = capsys.readouterr()
    assert "aws:lambda/function:Function" in captured.out
    assert "Only a plan" in captured.err


def test_cli_foundation_on_a_non_standalone_env_exits_2(capsys):
    assert cli.main(["preview", "--env", "staging", "--stack", "foundation"]) == 2
    assert "foundation.standalone" in capsys.readouterr().err


def test_cli_rejects_an_unknown_stack_choice(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["preview", "--env", "dev", "--stack", "network"])
    assert caught.value.code == 2


def test_cli_prod_deploy_without_approval_previews_and_exits_2(fake_auto, monkeypatch, capsys):
    monkeypatch.setattr(config, "load", lambda env: fake_auto.settings(env))
    assert cli.main(["deploy", "--env", "prod", "--quiet"]) == 2
    captured = capsys.readouterr()
    assert "--approve" in captured.err
    assert "aws:sqs/queue:Queue" in captured.out          # the preview's summary was shown
    assert ops(fake_auto.calls) == [("lwb-compute", "preview")]


def test_cli_outputs_json_masks_secrets(fake_auto, monkeypatch, capsys):
    monkeypatch.setattr(config, "load", lambda env: fake_auto.settings(env))
    assert cli.main(["outputs", "--env", "dev", "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["dbPassword"] == "[secret]" and SECRET_VALUE not in out


def test_cli_lock_error_exits_1_with_the_recovery_command(fake_auto, monkeypatch, capsys):
    monkeypatch.setattr(config, "load", lambda env: fake_auto.settings(env))
    fake_auto.fail["refresh"] = command_error(auto.ConcurrentUpdateError, LOCK_STDERR)
    assert cli.main(["refresh", "--env", "staging", "--quiet"]) == 1
    assert "pulumi cancel --yes --stack organization/lwb-compute/staging" in capsys.readouterr().err


def test_cli_registers_every_deploy_command():
    parser = cli.build_parser()
    for command in ("preview", "deploy", "refresh", "destroy", "outputs"):
        args = parser.parse_args([command, "--env", "dev"])
        assert args.func is cli.cmd_deploy and args.operation == command
    assert parser.parse_args(["deploy", "--env", "prod", "--yes"]).approve
    assert parser.parse_args(["deploy", "--env", "prod", "--approve"]).approve
    assert parser.parse_args(["destroy", "--env", "prod", "--confirm-destroy", "x"]).confirm_destroy == "x"


# ---------------------------------------------------------------------------------------------
# The real Automation API against a stub `pulumi` executable (no real CLI needed).
# ---------------------------------------------------------------------------------------------
STUB_CLI = r'''
import json, os, sys
state_dir = os.environ["STUB_PULUMI_STATE"]
log = os.path.join(state_dir, "calls.jsonl")
db_path = os.path.join(state_dir, "db.json")
args = [a for a in sys.argv[1:] if a != "--non-interactive"]
with open(log, "a") as f:
    f.write(json.dumps({"args": args, "cwd": os.getcwd(),
                        "passphrase": os.environ.get("PULUMI_CONFIG_PASSPHRASE")}) + "\n")
db = json.load(open(db_path)) if os.path.exists(db_path) else {"stacks": {}}
def save():
    json.dump(db, open(db_path, "w"))
def opt(name):
    return args[args.index(name) + 1] if name in args else None
stack = os.path.basename(os.getcwd()) + "/" + (opt("--stack") or "")   # one project per workspace folder
if args[:1] == ["version"]:
    print("v3.190.0"); sys.exit(0)
if args[:2] == ["stack", "select"]:
    if stack not in db["stacks"]:
        print(f"error: no stack named '{stack}' found", file=sys.stderr); sys.exit(255)
    sys.exit(0)
if args[:2] == ["stack", "init"]:
    db["stacks"][os.path.basename(os.getcwd()) + "/" + args[2]] = {"config": {}, "outputs": {}}; save(); sys.exit(0)
if args[:1] == ["config"] and "--json" in args and len(args) > 1 and args[1] == "--show-secrets":
    print(json.dumps({k: {"value": v, "secret": False} for k, v in db["stacks"][stack]["config"].items()})); sys.exit(0)
if args[:2] == ["config", "rm-all"]:
    for key in args[4:]:
        if key != "--path":
            db["stacks"][stack]["config"].pop(key, None)
    save(); sys.exit(0)
if args[:2] == ["config", "set-all"]:
    rest = args[2:]
    for i, a in enumerate(rest):
        if a == "--plaintext":
            key, _, value = rest[i + 1].partition("=")
            db["stacks"][stack]["config"][key] = value
    db["stacks"][stack]["path"] = "--path" in rest
    save(); sys.exit(0)
if args[:1] in (["preview"], ["up"], ["refresh"], ["destroy"]):
    op = {"preview": "create", "up": "create", "refresh": "same", "destroy": "delete"}[args[0]]
    events = []
    names = [("aws:sqs/queue:Queue", "task-queue"), ("aws:lambda/function:Function", "api-processor")]
    for kind in ("resourcePreEvent", "resOutputsEvent"):
        for t, n in names:
            urn = f"urn:pulumi:{stack}::proj::{t}::{n}"
            events.append({kind: {"metadata": {"op": op, "urn": urn, "type": t, "provider": ""}}})
    events.append({"summaryEvent": {"maybeCorrupt": False, "durationSeconds": 1, "resourceChanges": {op: 2}}})
    events.append({"cancelEvent": {}})
    with open(opt("--event-log"), "a") as f:
        for i, e in enumerate(events):
            f.write(json.dumps({"sequence": i, "timestamp": 0, **e}) + "\n")
    print(f"{args[0]} of {stack}: 2 resources")
    if args[0] == "up":
        db["stacks"][stack]["outputs"] = {"apiUrl": "https://api.local", "dbPassword": "SECRET-VALUE"}
        save()
    sys.exit(0)
if args[:2] == ["stack", "output"]:
    outputs = db["stacks"].get(stack, {}).get("outputs", {})
    if "--show-secrets" not in args:
        outputs = {k: ("[secret]" if k == "dbPassword" else v) for k, v in outputs.items()}
    print(json.dumps(outputs)); sys.exit(0)
if args[:3] == ["plugin", "install", "resource"]:
    sys.exit(0)
if args[:2] == ["stack", "history"]:
    print(json.dumps([{"kind": "update", "startTime": "2026-11-27T03:00:00.000Z", "message": "", "environment": {},
                       "config": {}, "result": "succeeded", "endTime": "2026-11-27T03:00:01.000Z",
                       "resourceChanges": {"create": 2}}])); sys.exit(0)
print("stub pulumi: unexpected " + " ".join(args), file=sys.stderr); sys.exit(2)
'''


@pytest.fixture
def stub_cli(monkeypatch, tmp_path):
    bin_dir, state_dir = tmp_path / "bin", tmp_path / "stub-state"
    bin_dir.mkdir()
    state_dir.mkdir()
    executable = bin_dir / "pulumi"
    executable.write_text(f"#!{sys.executable}\n{STUB_CLI}")
    executable.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STUB_PULUMI_STATE", str(state_dir))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("AWS_ENDPOINT_URL", ENDPOINT)
    monkeypatch.setattr(stacks, "WORKSPACES_DIR", tmp_path / "workspaces")

    def calls() -> list[dict]:
        return [json.loads(line) for line in (state_dir / "calls.jsonl").read_text().splitlines()]

    return SimpleNamespace(calls=calls, db=lambda: json.loads((state_dir / "db.json").read_text()),
                           settings=lambda env: settings_for(env, url=f"file://{tmp_path / 'state'}"),
                           tmp=tmp_path)


def test_real_automation_api_against_a_stub_cli(stub_cli):
    settings = stub_cli.settings("local")
    lines: list[str] = []
    seen: list[engine.Progress] = []

    run = automation.up(settings, echo=lines.append, progress=seen.append)

    # stacks were created with the passphrase provider, config derived with --path, events parsed
    calls = stub_cli.calls()
    inits = [c["args"] for c in calls if c["args"][:2] == ["stack", "init"]]
    assert [a[2] for a in inits] == ["local", "local"] and all("passphrase" in a for a in inits)
    db = stub_cli.db()
    assert set(db["stacks"]) == {"lwb-foundation/local", "lwb-compute/local"}
    config_local = db["stacks"]["lwb-compute/local"]["config"]
    assert config_local["aws:endpoints[0].lambda"] == ENDPOINT and db["stacks"]["lwb-compute/local"]["path"]
    assert json.loads(config_local["workbook:params"])["environment"] == "local"
    assert run.counts() == {"create": 4}
    assert [s.kind for s in run.stacks] == ["foundation", "compute"]
    assert run.outputs == {"apiUrl": "https://api.local", "dbPassword": "[secret]"}
    assert any("up of lwb-compute/local" in line for line in lines)
    assert seen[-1].final and (seen[-1].done, seen[-1].total) == (2, 2)
    # the workspace holds the project with its backend, and the passphrase is nowhere on disk
    project = yaml.safe_load((stub_cli.tmp / "workspaces" / "local" / "lwb-compute" / "Pulumi.yaml").read_text())
    assert project["name"] == "lwb-compute" and project["backend"]["url"] == f"file://{stub_cli.tmp / 'state'}"
    assert {c["passphrase"] for c in calls if c["args"][:1] != ["version"]} == {PASSPHRASE}
    for path in (stub_cli.tmp / "workspaces").rglob("*"):
        if path.is_file():
            assert PASSPHRASE not in path.read_text()
    # provider plugins pinned to the installed SDKs
    installs = {tuple(c["args"][3:5]) for c in calls if c["args"][:3] == ["plugin", "install", "resource"]}
    assert ("aws", f"v{metadata.version('pulumi_aws')}") in installs


def test_passphrase_never_shows_in_a_repr(fake_auto, tmp_path):
    automation.preview(fake_auto.settings("staging"), echo=None)
    opts = fake_auto.opened[-1].opts
    assert opts.env_vars["PULUMI_CONFIG_PASSPHRASE"] == PASSPHRASE          # the CLI gets the real value
    # LocalWorkspace's repr prints its env_vars; a workspace shown in a notebook or traceback must not leak it
    workspace = auto.LocalWorkspace(work_dir=str(tmp_path), env_vars=opts.env_vars,
                                    pulumi_command=SimpleNamespace(version=None))
    assert "PULUMI_CONFIG_PASSPHRASE" in repr(workspace) and PASSPHRASE not in repr(workspace)


def test_real_automation_api_outputs_of_a_missing_stack(stub_cli):
    with pytest.raises(automation.StackNotFound, match="nothing is deployed there yet"):
        automation.outputs(stub_cli.settings("dev"))


# ---------------------------------------------------------------------------------------------
# With the real Pulumi CLI (skipped here: none can be installed on the build machines).
# ---------------------------------------------------------------------------------------------
requires_cli = pytest.mark.skipif(shutil.which("pulumi") is None, reason="Pulumi CLI not on PATH")


@pytest.mark.pulumi_cli
@requires_cli
def test_real_cli_creates_the_stack_and_derives_its_config(monkeypatch, tmp_path):
    monkeypatch.setattr(stacks, "WORKSPACES_DIR", tmp_path / "workspaces")
    monkeypatch.setattr(stacks, "_install_plugins", lambda stack: None)   # no download in this test
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", PASSPHRASE)
    settings = settings_for("dev", url=f"file://{tmp_path / 'state'}")
    target_ = automation.targets(settings)[0]

    opened = stacks.open_stack(target_, "preview", create=True, configure=True)

    values = {k: v.value for k, v in opened.stack.get_all_config().items()}
    assert values["aws:region"] == settings.params.aws_region
    restored = config.from_mapping(json.loads(values["workbook:params"]))
    assert restored.params == settings.params
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert PASSPHRASE not in path.read_text(errors="replace")


@pytest.mark.pulumi_cli
@requires_cli
def test_real_cli_outputs_of_a_fresh_stack_are_empty(monkeypatch, tmp_path):
    monkeypatch.setattr(stacks, "WORKSPACES_DIR", tmp_path / "workspaces")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", PASSPHRASE)
    settings = settings_for("dev", url=f"file://{tmp_path / 'state'}")
    with pytest.raises(automation.StackNotFound):
        automation.outputs(settings)


@pytest.mark.pulumi_cli
@requires_cli
def test_real_cli_preview_of_the_local_env(monkeypatch, tmp_path):
    """A full preview of --env local against the local endpoint (start it with `workbook local start`)."""
    if not os.environ.get("AWS_ENDPOINT_URL"):
        pytest.skip("no local endpoint: run `workbook local start` and export AWS_ENDPOINT_URL")
    monkeypatch.setattr(stacks, "WORKSPACES_DIR", tmp_path / "workspaces")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", PASSPHRASE)
    settings = settings_for("local", url=f"file://{tmp_path / 'state'}")
    run = automation.preview(settings, stack="foundation", echo=None)
    assert not run.summary.empty
