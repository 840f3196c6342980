"""The compiled part of the package; everything else is in pyproject.toml.

One C file, no library: the first JSON fast path of ``parse_reports``
(``workbook/telemetry/jsoncompiled.py``), built by ``pip install -e .`` (``make bootstrap``) with
the machine's C compiler and Python headers. Optional: where it cannot be built (no compiler), the
install goes on with a warning and ``parse_reports`` reads JSON records with its other paths, the
same rows more slowly (``tests/unit/telemetry/test_json_fast_differential.py`` then fails, saying
so). pyproject.toml's own ``ext-modules`` table is still experimental in setuptools.
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("workbook.telemetry._reportjson", ["workbook/telemetry/_reportjson.c"],
                             extra_compile_args=["-O2"], optional=True)])
