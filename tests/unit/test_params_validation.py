"""params/<env>.yaml validation: every bad file names the file, the field and the fix."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from infra import config
from infra.config import ParamsError

PARAMS = Path(__file__).resolve().parents[2] / "params"


@pytest.fixture
def params_dir(tmp_path: Path) -> Path:
    for env in config.ENVIRONMENTS:
        shutil.copy(PARAMS / f"{env}.yaml", tmp_path / f"{env}.yaml")
    return tmp_path


def write(params_dir: Path, env: str, mutate) -> None:
    raw = yaml.safe_load((PARAMS / f"{env}.yaml").read_text())
    mutate(raw)
    (params_dir / f"{env}.yaml").write_text(yaml.safe_dump(raw))


def error(params_dir: Path, env: str = "dev") -> str:
    with pytest.raises(ParamsError) as info:
        config.load(env, params_dir)
    return str(info.value)


@pytest.mark.parametrize("env", config.ENVIRONMENTS)
def test_shipped_params_are_valid(env):
    settings = config.load(env)
    assert settings.env == env
    assert settings.prefix.startswith(f"{settings.params.project_name}-{env}-")


def test_unknown_key_is_named(params_dir):
    write(params_dir, "dev", lambda r: r["task_queue"].update(visiblity_timeout_s=10))
    message = error(params_dir)
    assert "dev.yaml" in message and "task_queue.visiblity_timeout_s" in message and "unknown field" in message


@pytest.mark.parametrize("memory", [64, 127, 10241, 20000])
def test_memory_out_of_range(params_dir, memory):
    write(params_dir, "dev", lambda r: r["functions"]["api-processor"].update(memory_mb=memory))
    message = error(params_dir)
    assert "functions.api-processor.memory_mb" in message and "128..10240" in message and str(memory) in message


@pytest.mark.parametrize("memory", [128, 10240])
def test_memory_bounds_are_inclusive(params_dir, memory):
    write(params_dir, "dev", lambda r: r["functions"]["api-processor"].update(memory_mb=memory))
    assert config.load("dev", params_dir).function("api-processor").memory_mb == memory


def test_timeout_above_900(params_dir):
    write(params_dir, "dev", lambda r: r["functions"]["file-processor"].update(timeout_s=901))
    message = error(params_dir)
    assert "functions.file-processor.timeout_s" in message and "1..900" in message


def test_visibility_timeout_below_six_times_the_consumer_timeout(params_dir):
    write(params_dir, "dev", lambda r: r["task_queue"].update(visibility_timeout_s=3599))
    message = error(params_dir)
    assert "task_queue.visibility_timeout_s" in message and "3600" in message and "data-processor" in message


def test_raising_a_timeout_without_the_visibility_timeout_is_caught(params_dir):
    write(params_dir, "prod", lambda r: r["functions"].setdefault("notification-handler", {}).update(timeout_s=120))
    message = error(params_dir, "prod")
    assert "notification_queue.visibility_timeout_s" in message and "720" in message


@pytest.mark.parametrize("expression, reason", [
    ("cron(0 2 * * *)", "6 fields"),
    ("cron(0 25 * * ? *)", "hours"),
    ("cron(0 2 * * * *)", "exactly one of day-of-month and day-of-week"),
    ("cron(61 2 * * ? *)", "minutes"),
    ("rate(0 minutes)", "at least 1"),
    ("rate(1 minutes)", "rate(1 minute)"),
    ("every 5 minutes", "expected"),
])
def test_bad_schedule_expressions(params_dir, expression, reason):
    write(params_dir, "dev", lambda r: r["schedules"][0].update(expression=expression))
    message = error(params_dir)
    assert "schedules.0.expression" in message and reason in message


@pytest.mark.parametrize("expression", ["cron(*/5 * * * ? *)", "cron(0 2 ? * MON-FRI *)", "cron(0 12 L * ? *)",
                                        "rate(1 hour)", "rate(15 minutes)", "cron(0 8 ? * 2#1 *)"])
def test_good_schedule_expressions(expression):
    assert config.validate_schedule_expression(expression) == expression


def test_unknown_function_key(params_dir):
    write(params_dir, "dev", lambda r: r["functions"].update({"image-resizer": {"memory_mb": 512}}))
    message = error(params_dir)
    assert "image-resizer" in message and "api-processor" in message


def test_missing_required_field(params_dir):
    write(params_dir, "dev", lambda r: r.pop("deployment_id"))
    assert "field 'deployment_id' is required" in error(params_dir)


def test_not_yaml(params_dir):
    (params_dir / "dev.yaml").write_text("functions: [unclosed\n")
    message = error(params_dir)
    assert "not valid YAML" in message and "line" in message


def test_not_a_mapping(params_dir):
    (params_dir / "dev.yaml").write_text("- a\n- b\n")
    assert "expected a mapping" in error(params_dir)


def test_unknown_environment_lists_the_known_ones(params_dir):
    message = error(params_dir, "qa")
    assert "qa.yaml" in message and "dev" in message and "prod" in message


def test_invalid_environment_name():
    with pytest.raises(ParamsError, match="not a valid name"):
        config.load("../etc/passwd")


def test_environment_field_must_match_the_file(params_dir):
    write(params_dir, "staging", lambda r: r.update(environment="prod"))
    message = error(params_dir, "staging")
    assert "environment" in message and "staging" in message


def test_rs256_requires_a_public_key(params_dir):
    write(params_dir, "dev", lambda r: r["jwt"].update(algorithms=["HS256", "RS256"]))
    assert "jwt.public_key_pem" in error(params_dir)


def test_region_without_secrets_extension_layer(params_dir):
    write(params_dir, "prod", lambda r: r.update(aws_region="ap-southeast-2"))
    message = error(params_dir, "prod")
    assert "secrets_extension_layer_arns" in message and "ap-southeast-2" in message


def test_provisioned_concurrency_min_above_max(params_dir):
    def mutate(raw):
        raw["functions"]["api-processor"]["provisioned_concurrency"] = {"min_capacity": 5, "max_capacity": 2}
    write(params_dir, "prod", mutate)
    assert "min_capacity" in error(params_dir, "prod")


def test_bad_input_loses_nothing(params_dir):
    before = (params_dir / "dev.yaml").read_text()
    write(params_dir, "dev", lambda r: r.update(bogus=True))
    bad = (params_dir / "dev.yaml").read_text()
    error(params_dir)
    assert (params_dir / "dev.yaml").read_text() == bad != before


def test_overrides_resolve_against_the_spec_table():
    prod = config.load("prod")
    dev = config.load("dev")
    assert prod.function("api-processor").timeout_s == 30
    assert dev.function("api-processor").timeout_s == 60
    assert dev.function("api-processor").memory_mb == 512
