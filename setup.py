"""The compiled part of the package; everything else is in pyproject.toml.

One C file, no library: the first JSON fast path of ``parse_reports``
(``workbook/telemetry/jsoncompiled.py``), built by ``pip install -e .`` (``make bootstrap``) with
the machine's C compiler and Python headers. (pyproject.toml's own ``ext-modules`` table is still
experimental in setuptools.)
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("workbook.telemetry._reportjson", ["workbook/telemetry/_reportjson.c"],
                             extra_compile_args=["-O2"])])
