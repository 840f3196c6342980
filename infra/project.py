"""The project folder: where params, handlers, notebooks and the local state live.

The one source of truth for it. The installed package is never that folder: after ``pip install .``
the code sits in site-packages, away from ``params/``. So the folder is, in order:

1. ``$WORKBOOK_PROJECT_DIR``, when set (it must be a project folder);
2. the working directory or the nearest folder above it that is one, as git finds its repository;
3. the source checkout this package was imported from, when it is one (an editable install).

A project folder holds a ``pyproject.toml`` whose ``[project] name`` is ``lambda-workbook`` and a
``params/`` folder. The processes the workbook starts in other folders (the local engine, notebook
kernels) are handed the folder found in ``$WORKBOOK_PROJECT_DIR`` (``child_environment``).
"""
from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

ENV_VAR = "WORKBOOK_PROJECT_DIR"
PROJECT_NAME = "lambda-workbook"
MARKER = f"pyproject.toml with [project] name = {PROJECT_NAME!r}, beside a params/ folder"
# Where this package was imported from: the project folder itself for an editable install or a
# checkout on the path, site-packages (never a project folder) for a regular install.
_PACKAGE_CHECKOUT = Path(__file__).resolve().parent.parent


class ProjectNotFoundError(ValueError):
    """No project folder: not in the environment variable, the working directory or above it."""


def is_project_dir(path: Path) -> bool:
    """Whether ``path`` is a workbook project folder (the marker is there)."""
    pyproject = path / "pyproject.toml"
    if not (pyproject.is_file() and (path / "params").is_dir()):
        return False
    try:
        return tomllib.loads(pyproject.read_text()).get("project", {}).get("name") == PROJECT_NAME
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False


def find_project_dir(start: Path | None = None, environ: Mapping[str, str] | None = None,
                     package_checkout: Path | None = None) -> Path:
    """The project folder for a process in ``start`` (the working directory) with ``environ``.

    Raises ``ProjectNotFoundError`` naming the working directory, the marker and the variable.
    """
    environ = os.environ if environ is None else environ
    override = environ.get(ENV_VAR)
    if override:
        path = Path(override).expanduser().resolve()
        if not is_project_dir(path):
            raise ProjectNotFoundError(f"${ENV_VAR}={override}: not a workbook project folder (no {MARKER}); "
                                       f"point it at the folder holding the project's pyproject.toml and params/, "
                                       f"or unset it to search from the working directory")
        return path
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if is_project_dir(folder):
            return folder
    if package_checkout is not None and is_project_dir(package_checkout):
        return package_checkout
    raise ProjectNotFoundError(f"no workbook project folder in {start} or above it (looked for a {MARKER}); "
                               f"run from the project folder, or set ${ENV_VAR} to it")


def project_dir(start: Path | None = None) -> Path:
    """The project folder for this process: ``$WORKBOOK_PROJECT_DIR``, else from ``start`` (the working
    directory) up, else the checkout this package was imported from when it is a project folder."""
    return find_project_dir(start, package_checkout=_PACKAGE_CHECKOUT)


def child_environment() -> dict[str, str]:
    """What a process the workbook starts needs to find the same project folder from any working directory."""
    return {ENV_VAR: str(project_dir())}
