"""common.config: the environment contract, validated once at INIT."""
from __future__ import annotations

import pytest
from handler_kit import function_env


@pytest.mark.parametrize("env_name", ["local", "dev", "staging", "prod"])
def test_every_function_environment_from_infra_satisfies_its_config(env_name):
    # GIVEN the variables infra/environment.py gives each function, for each environment's params
    from common import config
    from infra import environment, specs
    from infra.config import load as load_settings

    settings = load_settings(env_name)
    for key in specs.FUNCTION_KEYS:
        refs = {name: f"value-of-{name}" for name in environment.REF_NAMES}
        env = {name: str(value) for name, value in environment.function_environment(settings, key, refs).items()}
        # WHEN the handler's config reads them, THEN it validates, and it requires exactly what infra gives
        loaded = config.load(key, env)
        assert loaded.function == key
        refs_given = {ref.upper() for ref in environment.refs_for(key)}
        assert refs_given <= set(env) and set(config.REQUIRED[key]) <= set(env)
        assert {n for n in config.REQUIRED[key] if n.endswith(("_ARN", "_URL", "_BUCKET", "_NAME"))} <= refs_given


def test_missing_variable_names_the_variable_and_the_fix():
    from common import config
    from common.errors import ConfigError

    env = function_env("scheduler")
    del env["TASK_QUEUE_URL"]
    with pytest.raises(ConfigError, match="TASK_QUEUE_URL.*infra/environment.py"):
        config.load("scheduler", env)


@pytest.mark.parametrize("key, overrides, message", [
    ("auth-handler", {"JWT_ALGORITHMS": "HS256,none"}, "JWT_ALGORITHMS"),
    ("auth-handler", {"JWT_ALGORITHMS": "RS256"}, "JWT_PUBLIC_KEY"),
    ("auth-handler", {"JWT_LEEWAY_S": "soon"}, "not an integer"),
    ("auth-handler", {"JWT_LEEWAY_S": "9999"}, "out of range"),
    ("api-processor", {"CORS_ALLOW_ORIGIN": "*"}, "not a wildcard"),
    ("file-processor", {"MAX_OBJECT_BYTES": "0"}, "out of range"),
    ("scheduler", {"SAFETY_MARGIN_MS": "-1"}, "out of range"),
])
def test_malformed_values_are_rejected_at_init(key, overrides, message):
    from common import config
    from common.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        config.load(key, function_env(key, **overrides))


def test_handler_import_fails_fast_on_bad_config(handler_factory):
    from common.errors import ConfigError  # noqa: F401 - the class is re-imported by the handler

    with pytest.raises(Exception, match="DB_SECRET_ARN"):
        handler_factory("api_processor", DB_SECRET_ARN="")
