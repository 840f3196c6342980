"""Third-party imports that cost start-up time in every process and are rarely used: deferred to first use.

``rfc3987_syntax`` (installed with JupyterLab: jupyter-events asks for ``jsonschema[format-nongpl]``)
builds an Earley parser of RFC 3987's grammar when it is imported, and jsonschema imports it for its
``iri`` format check whenever nbformat is imported. So every ``workbook`` command that runs notebooks,
every Papermill client and every kernel that records results (scrapbook imports nbformat) paid about
1.1 s of CPU for a check none of them makes (nbformat's schemas have no ``iri`` field); on a loaded
machine, several seconds. Here the module is replaced, before anything imports it, by a stand-in
whose functions import the real package at their first call: the check still works, as before, when
something does make it (``bench/startup.py`` measures the difference; ``tests/unit/test_deferred.py``
compares the checks with the real package's).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import Any

NAME = "rfc3987_syntax"
_lock = threading.Lock()


class _Deferred(types.ModuleType):
    """Stands in for the package until a function or attribute of it is used."""

    __deferred__ = True

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return getattr(real(), attribute)


def defer() -> None:
    """Put the stand-in in ``sys.modules`` (nothing to do if the package is absent or already imported)."""
    with _lock:
        if NAME in sys.modules or importlib.util.find_spec(NAME) is None:
            return
        stand_in = _Deferred(NAME, "deferred by workbook._deferred: imported at first use")
        # jsonschema binds these two by name at its own import: they must exist before the real package does.
        stand_in.is_valid_syntax = lambda term, value: real().is_valid_syntax(term, value)
        stand_in.parse = lambda term, value: real().parse(term, value)
        sys.modules[NAME] = stand_in


def real() -> types.ModuleType:
    """The real package, imported now if only the stand-in was."""
    with _lock:
        module = sys.modules.get(NAME)
        if module is None or getattr(module, "__deferred__", False):
            sys.modules.pop(NAME, None)
            module = importlib.import_module(NAME)
        return module
