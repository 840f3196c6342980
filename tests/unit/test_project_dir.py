"""The project folder is found from the working directory up, or from $WORKBOOK_PROJECT_DIR; never from site-packages."""
from __future__ import annotations

from pathlib import Path

import pytest

from infra import project
from infra.project import ENV_VAR, ProjectNotFoundError, find_project_dir, is_project_dir
from workbook import cli

REPO = Path(__file__).resolve().parents[2]


def _make_project(folder: Path, name: str = "lambda-workbook") -> Path:
    (folder / "params").mkdir(parents=True)
    (folder / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "0"\n')
    return folder


def test_the_checkout_is_a_project_folder():
    assert is_project_dir(REPO)


def test_found_from_the_working_directory_up(tmp_path):
    # GIVEN a project with a shell two folders below it
    root = _make_project(tmp_path / "proj")
    below = root / "notebooks" / "drafts"
    below.mkdir(parents=True)
    # THEN the nearest project folder above wins, as git finds its repository
    assert find_project_dir(below, environ={}, package_checkout=None) == root
    assert find_project_dir(root, environ={}, package_checkout=None) == root


def test_the_nearest_project_wins_over_an_outer_one(tmp_path):
    outer = _make_project(tmp_path)
    inner = _make_project(tmp_path / "work" / "copy")
    assert find_project_dir(inner / "params", environ={}, package_checkout=None) == inner
    assert find_project_dir(tmp_path / "work", environ={}, package_checkout=None) == outer


@pytest.mark.parametrize("layout", ["params only", "another project's pyproject", "broken toml"])
def test_a_folder_without_the_whole_marker_is_not_a_project(tmp_path, layout):
    (tmp_path / "params").mkdir()
    if layout == "another project's pyproject":
        (tmp_path / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    elif layout == "broken toml":
        (tmp_path / "pyproject.toml").write_text('[project\nname = "lambda-workbook"\n')
    assert not is_project_dir(tmp_path)


def test_the_variable_wins_over_the_working_directory(tmp_path):
    here = _make_project(tmp_path / "here")
    there = _make_project(tmp_path / "there")
    assert find_project_dir(here, environ={ENV_VAR: str(there)}, package_checkout=None) == there


def test_a_variable_pointing_elsewhere_is_an_error_naming_it(tmp_path):
    with pytest.raises(ProjectNotFoundError, match=rf"\${ENV_VAR}={tmp_path}: not a workbook project folder"):
        find_project_dir(tmp_path, environ={ENV_VAR: str(tmp_path)}, package_checkout=None)


def test_no_project_is_an_error_naming_the_folder_the_marker_and_the_variable(tmp_path):
    # GIVEN a working directory in no project, and a package installed in site-packages (not a project folder)
    site_packages = tmp_path / "venv" / "lib" / "python3.12" / "site-packages"
    site_packages.mkdir(parents=True)
    with pytest.raises(ProjectNotFoundError) as raised:
        find_project_dir(tmp_path, environ={}, package_checkout=site_packages)
    message = str(raised.value)
    assert str(tmp_path) in message and "pyproject.toml" in message and "params/" in message
    assert f"${ENV_VAR}" in message


def test_an_editable_checkout_is_the_last_resort(tmp_path):
    checkout = _make_project(tmp_path / "checkout")
    assert find_project_dir(tmp_path, environ={}, package_checkout=checkout) == checkout


def test_children_are_handed_the_folder(monkeypatch, tmp_path):
    root = _make_project(tmp_path / "proj")
    monkeypatch.chdir(root)
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert project.child_environment() == {ENV_VAR: str(root)}


def test_the_cli_says_so_outside_a_project(tmp_path, monkeypatch, capsys):
    # GIVEN a shell outside any project, and the package imported from site-packages (no checkout to fall back on)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv("WORKBOOK_STATE_DIR", raising=False)
    monkeypatch.setattr(project, "_PACKAGE_CHECKOUT", tmp_path / "site-packages")
    # WHEN a command needs the project folder
    code = cli.main(["local", "status"])
    # THEN bad input (2), one line naming the folder, the marker and the variable
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"no workbook project folder in {tmp_path}" in err and ENV_VAR in err and "Traceback" not in err
