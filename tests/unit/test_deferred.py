"""The deferred rfc3987_syntax: nothing pays for its grammar until a check needs it, and the checks are unchanged.

Each case runs in a fresh interpreter: the deferral acts at import, which this test process did long ago.
"""
from __future__ import annotations

import json
import subprocess
import sys

from workbook import _deferred

VALUES = ["http://example.com/ä/ß?q=ü#frag", "https://[::1]:8080/x", "mailto:someone@example.org", "urn:isbn:0451450523",
          "not an iri", "http://exa mple.com", "", "//host/path", "relative/path?x=1", "http://%zz", "a:b", "ü:ö",
          "http://example.com/\u0000", "#", 42]

CHECKS = """
import json, sys
{first}
import jsonschema
checker = jsonschema.FormatChecker()
values = json.loads(sys.argv[1])
print(json.dumps([[checker.conforms(v, "iri"), checker.conforms(v, "iri-reference")] for v in values]))
"""


def _python(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_workbooks_imports_leave_the_grammar_unbuilt():
    # GIVEN a process that imports what `workbook run` imports (Papermill, nbformat and so jsonschema)
    out = _python("import sys, workbook.report.run, nbformat, scrapbook\n"
                  "print(sorted(m for m in sys.modules if m.startswith(('rfc3987_syntax', 'lark'))))")
    # THEN only the stand-in is there: no grammar was parsed, lark was never imported
    assert json.loads(out.replace("'", '"')) == ["rfc3987_syntax"]


def test_iri_checks_answer_as_the_real_package_does():
    # GIVEN jsonschema's iri and iri-reference checks, with the real package imported first, and with the stand-in
    real = _python(CHECKS.format(first="import rfc3987_syntax"), json.dumps(VALUES))
    deferred = _python(CHECKS.format(first="import workbook"), json.dumps(VALUES))
    # THEN every value gets the same answers (and some are refused, so the checks ran)
    assert json.loads(deferred) == json.loads(real)
    assert [False, False] in json.loads(real) and [True, True] in json.loads(real)


def test_the_first_use_loads_the_real_package_once_whatever_the_threads():
    out = _python("import sys, threading, workbook\nfrom workbook import _deferred\nseen = []\n"
                  "threads = [threading.Thread(target=lambda: seen.append(id(_deferred.real()))) for _ in range(8)]\n"
                  "[t.start() for t in threads]; [t.join() for t in threads]\n"
                  "print(len(set(seen)), getattr(sys.modules['rfc3987_syntax'], '__deferred__', False))")
    assert out.split() == ["1", "False"]


def test_defer_leaves_an_imported_package_alone():
    # GIVEN this test process, where the workbook deferred the package at its first import
    before = sys.modules.get(_deferred.NAME)
    # WHEN defer runs again, THEN the module in sys.modules (stand-in or real) is the same object
    _deferred.defer()
    assert sys.modules.get(_deferred.NAME) is before
