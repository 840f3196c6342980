"""Every option of the ``workbook`` command is checked before anything starts (issue 22).

Bad values get one line on stderr (``workbook: ...``, like params errors) and exit code 2; nothing
is started: the state folder of the local environment stays empty.
"""
from __future__ import annotations

import shutil
import warnings

import pytest
import yaml

from infra import config
from workbook import cli


@pytest.fixture
def no_local_environment(monkeypatch, tmp_path):
    """A state folder of our own: anything started would leave its state file there."""
    state = tmp_path / "state"
    monkeypatch.setenv("WORKBOOK_STATE_DIR", str(state))
    yield state
    assert not (state / "state.json").exists(), "a local environment was started"


def run_cli(argv: list[str]) -> int:
    """``workbook ARGV``'s exit code, whether argparse exits (option errors) or main returns."""
    try:
        return cli.main(argv)
    except SystemExit as exited:
        return int(exited.code)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("workbook: ") and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("options, says", [
    (["--power-values", "64,128"], "64 MB is outside Lambda's 128-10240 MB"),
    (["--power-values", "128,big"], "expected memory sizes in MB separated by commas"),
    (["--power-values", ","], "expected memory sizes in MB"),
    (["--num", "-1"], "--num: '-1': expected a whole number, 1 or more"),
    (["--num", "0"], "--num: '0': expected a whole number, 1 or more"),
    (["--num", "ten"], "--num: 'ten'"),
    (["--balanced-weight", "2"], "--balanced-weight: '2': expected a weight, from 0 to 1"),
    (["--balanced-weight", "nan"], "--balanced-weight: 'nan'"),
    (["--discard-top-bottom", "0.9"], "--discard-top-bottom: '0.9': expected a share of each end, from 0 to 0.4"),
    (["--discard-top-bottom", "-0.1"], "--discard-top-bottom: '-0.1'"),
    (["--num", "1", "--discard-top-bottom", "0.4"], None),   # 1 - 2 * int(0.4) = 1 left: allowed
    (["--strategy", "cheapest"], "invalid choice: 'cheapest'"),
])
def test_tune_checks_its_options_before_starting_the_local_environment(options, says, capsys, no_local_environment,
                                                                      monkeypatch):
    if says is None:   # a good combination reaches the command: stop it there, before any invoker exists
        from workbook.tuning import invokers

        def refuse(*_args, **_kwargs):
            raise cli.BadInput("stopped before the invoker, as the test wants")
        monkeypatch.setattr(invokers, "make_invoker", refuse)
        says = "stopped before the invoker"
    code = run_cli(["tune", "--env", "local", "--function", "api-processor", *options])
    assert code == 2
    assert says in one_line_error(capsys)


def test_discard_that_leaves_no_invocation_is_refused(capsys, no_local_environment):
    # 10 invocations, 0.4 at each end: 4 + 4 dropped, 2 left (allowed); 2 invocations at 0.5 is out of range anyway
    code = cli.main(["tune", "--env", "local", "--function", "api-processor", "--num", "3",
                     "--discard-top-bottom", "0.4", "--payload", "not json"])
    assert code == 2 and "--payload is not valid JSON" in one_line_error(capsys)


def test_since_with_a_leading_dash_gets_the_tools_own_message(capsys, no_local_environment):
    assert cli.main(["run", "--env", "dev", "--since", "-5m"]) == 2
    assert "--since '-5m': expected a positive number of minutes, hours or days" in one_line_error(capsys)


def test_function_takes_several_keys_like_only():
    parser = cli.build_parser()
    args = parser.parse_args(["run", "--env", "dev", "--function", "api-processor", "scheduler",
                              "--only", "02-metrics", "05-tuning"])
    assert args.functions == ["api-processor", "scheduler"] and args.only == ["02-metrics", "05-tuning"]
    args = parser.parse_args(["run", "--env", "dev", "--function", "api-processor", "--function", "scheduler"])
    assert args.functions == ["api-processor", "scheduler"]


def test_traffic_seconds_outside_local_is_an_error(capsys, no_local_environment):
    assert cli.main(["run", "--env", "dev", "--traffic-seconds", "5"]) == 2
    assert "--traffic-seconds applies to --env local only" in one_line_error(capsys)


def test_an_unknown_environment_names_the_ones_the_schema_takes(capsys):
    assert cli.main(["plan", "--env", "nope"]) == 2
    err = one_line_error(capsys)
    assert "params/nope.yaml" in err and "local, dev, staging, prod" in err and "create" not in err


def test_the_suggestion_for_a_missing_params_file_works_when_followed(tmp_path):
    # GIVEN a params folder with dev.yaml only
    shutil.copy(config.params_path("dev"), tmp_path / "dev.yaml")
    with pytest.raises(config.ParamsError) as missing:
        config.load("staging", params_dir=tmp_path)
    assert "create" in str(missing.value) and "from params/dev.yaml and set environment: staging" in str(missing.value)
    # WHEN the user does what it says
    raw = yaml.safe_load((tmp_path / "dev.yaml").read_text())
    raw["environment"] = "staging"
    (tmp_path / "staging.yaml").write_text(yaml.safe_dump(raw))
    # THEN the environment loads
    assert config.load("staging", params_dir=tmp_path).env == "staging"


def test_a_bad_choice_anywhere_is_one_line_with_exit_2(capsys):
    assert run_cli(["nope"]) == 2
    assert one_line_error(capsys).startswith("workbook: argument COMMAND: invalid choice: 'nope'")
    assert run_cli(["plan", "--env", "local", "--format", "xml"]) == 2
    assert "plan: argument --format: invalid choice: 'xml'" in one_line_error(capsys)


def test_library_notes_reach_the_user_as_one_line_not_a_warning(capsys):
    with cli._notes_as_lines():
        warnings.warn("workbook.events: the Pulumi CLI is not installed; using the offline plan's names",
                      UserWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert err == "workbook: note: the Pulumi CLI is not installed; using the offline plan's names\n"


def test_a_local_tune_says_nothing_about_the_pulumi_cli(monkeypatch):
    # --env local takes the plan's names, which are the real ones there: no note at all
    from workbook.tuning import payloads

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        event = payloads.sample_event(config.load("local"), "data-processor")
    assert event["Records"]


def test_run_on_aws_without_credentials_stops_at_once(capsys, monkeypatch, tmp_path):
    # GIVEN no AWS credentials from any source boto3 reads
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("WORKBOOK_OUTPUTS_DIR", str(tmp_path / "outputs"))
    # WHEN a run on dev is asked for, THEN it stops before any kernel or folder, saying what to do
    assert run_cli(["run", "--env", "dev"]) == 2
    assert "--env dev: no AWS credentials found" in one_line_error(capsys)
    assert not (tmp_path / "outputs" / "dev").exists()
