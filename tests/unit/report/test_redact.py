"""Redaction: every form of a known secret, runs of 12+ characters of one, JWTs and URL passwords.

The oracles are the decoders someone else wrote: after redaction, html.unescape, json, base64,
bytes.fromhex and urllib's unquote must not bring a secret back; nbformat must still validate a
redacted notebook; BeautifulSoup's text of a runbook must hold no secret; PyJWT mints the tokens.
"""
from __future__ import annotations

import base64
import errno
import html
import io
import json
import re
import secrets
from pathlib import Path
from urllib.parse import quote, quote_plus

import jwt
import nbformat
import pandas as pd
import pytest
from bs4 import BeautifulSoup

from tests.secrets_oracle import leaks
from workbook.report import redact

PASSPHRASE = 'pl&nted <pass> "phrase" 7f3c-1e9a'
TOKEN = secrets.token_urlsafe(32)
SECRETS = (PASSPHRASE, TOKEN)


def _every_form(secret: str) -> list[str]:
    data = secret.encode()
    json_once = json.dumps(secret)[1:-1]
    return [
        secret, json_once, json.dumps(json_once)[1:-1], html.escape(secret), html.escape(json_once),
        quote(secret, safe=""), quote_plus(secret), base64.b64encode(data).decode(),
        base64.urlsafe_b64encode(data).decode().rstrip("="), data.hex(), data.hex().upper(),
        base64.b64encode(b"user:" + data).decode(),                      # a Basic auth header: offset 5
        base64.b64encode(b'{"key": "' + data + b'"}').decode(),           # inside an encoded document
        secret[:20] + "\n" + secret[20:],                                 # a wrapped line
        secret[: len(secret) // 2] + "...",                               # a display's truncated prefix
        secret[7:],                                                       # the second half
    ]


@pytest.mark.parametrize("secret", SECRETS, ids=["passphrase-with-html-characters", "token"])
def test_every_form_of_a_secret_is_redacted(secret):
    # GIVEN a secret in raw, escaped, encoded, wrapped and truncated forms, inside ordinary text
    text = "\n".join(f"line {i}: value={form}; end" for i, form in enumerate(_every_form(secret)))
    # WHEN it is redacted
    clean = redact.Redactor(SECRETS).text(text)
    # THEN no decoder brings back 12 characters of it, and the text around it stays
    assert leaks(clean, secret) == []
    assert clean.count("line ") == len(_every_form(secret)) and clean.count("; end") == len(_every_form(secret))
    assert redact.REDACTED in clean


def test_pandas_display_of_a_secret_is_redacted_in_text_and_html():
    # GIVEN pandas' own displays of a long secret: cut short with "..." in text and HTML
    frame = pd.DataFrame({"name": ["jwt"], "value": [TOKEN + TOKEN]})
    with pd.option_context("display.max_colwidth", 30):
        shown = frame.to_string() + frame.to_html() + frame._repr_html_()
    assert "..." in shown or "…" in shown
    # WHEN redacted THEN not 12 characters of it survive, and the table's other cells do
    clean = redact.Redactor([TOKEN + TOKEN]).text(shown)
    assert leaks(clean, TOKEN + TOKEN) == [] and "jwt" in clean


def test_short_and_common_values_are_not_redacted():
    redactor = redact.Redactor(["testing", "short7!", "true", "x" * 7])
    assert redactor.secrets == frozenset()
    assert redactor.text("testing short7! true") == "testing short7! true"


def test_unknown_jwts_and_url_passwords_are_redacted():
    # GIVEN a token PyJWT minted and a connection string, neither known to the redactor
    token = jwt.encode({"sub": "power-tuning", "scope": "items:read"}, "k" * 32, algorithm="HS256")
    text = f"Authorization: Bearer {token}\nDATABASE_URL=postgresql://app:s3cret-pw@db:5432/app"
    # WHEN redacted
    clean = redact.Redactor().text(text)
    # THEN the token is gone, and only the password of the URL
    assert token not in clean and "s3cret-pw" not in clean
    assert "Bearer [redacted]" in clean and "postgresql://app:[redacted]@db:5432/app" in clean


def test_html_entities_are_never_cut_in_half():
    # GIVEN the HTML-escaped secret, where the redacted run would end inside "&quot;"
    secret = 'abcdefghijklmn"opq'
    text = f"<pre>{html.escape(secret[:15])}</pre>"
    clean = redact.Redactor([secret]).text(text)
    assert clean == "<pre>[redacted]</pre>"
    assert not re.search(r"&#?\w*(?![\w;])", clean.replace("[redacted]", ""))


def test_environment_secrets_widen_the_names(tmp_path):
    # GIVEN the names of the issue: keys, passes, URLs with credentials, a passphrase file, params' own name
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text("file-passphrase-0001\n")
    environ = {
        "JWT_SIGNING_KEY": "jwt-signing-key-0001", "LWB_PULUMI_PASS": PASSPHRASE,
        "DATABASE_URL": "postgresql://app:Db%2Fpass-0001@db.example:5432/app",
        "PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase_file), "TEAM_STACK_WORDS": "params-named-0001",
        "AWS_ACCESS_KEY_ID": "testing", "HOME": "/root", "PATH": "/usr/bin:/bin", "PWD": "/work/project",
    }
    # WHEN the secrets are collected, with params naming TEAM_STACK_WORDS as backend.passphrase_env
    found = redact.environment_secrets("TEAM_STACK_WORDS", environ)
    # THEN each secret is there (the URL's password decoded too), and nothing else
    assert {"jwt-signing-key-0001", PASSPHRASE, "Db/pass-0001", "file-passphrase-0001", "params-named-0001"} <= found
    assert not found & {"testing", "/root", "/usr/bin:/bin", "/work/project", str(passphrase_file)}


def test_params_passphrase_file_twin_is_read(tmp_path):
    path = tmp_path / "words"
    path.write_text("twin-file-words-0001")
    assert "twin-file-words-0001" in redact.environment_secrets("TEAM_WORDS", {"TEAM_WORDS_FILE": str(path)})


def test_secret_json_values_yield_their_secret_fields():
    values = redact._secret_string_values(json.dumps(
        {"host": "127.0.0.1", "port": 5432, "username": "postgres", "password": "pg-password-0001",
         "engine": "postgres", "api_keys": {"local": "api-key-0001-xyz"}}))
    assert values == {"pg-password-0001", "api-key-0001-xyz"}


def test_local_and_stack_secrets_are_read_from_secrets_manager(local_endpoint):
    # GIVEN secrets in the local endpoint (moto's server): one JSON, one plain
    from workbook import aws

    client = aws.client("secretsmanager")
    client.create_secret(Name="lwb-dev-d01-jwt", SecretString=json.dumps({"hs256_key": "hs256-key-0001-abcdef"}))
    client.create_secret(Name="plain", SecretString="plain-secret-0001")
    # WHEN they are read THEN every value is there; a missing one is a problem line, not an error
    assert redact.local_secrets() == {"hs256-key-0001-abcdef", "plain-secret-0001"}
    values, problems = redact.stack_secrets(["lwb-dev-d01-jwt", "missing-secret"])
    assert values == {"hs256-key-0001-abcdef"}
    assert problems == ["missing-secret: ResourceNotFoundException"]


def test_registered_values_reach_the_run_through_the_registry_file(tmp_path, monkeypatch):
    registry = tmp_path / "registered"
    monkeypatch.setenv(redact.REGISTRY_ENV, str(registry))
    monkeypatch.setattr(redact, "_REGISTERED", set())
    redact.register("minted-token-0001-abc", "short")
    monkeypatch.setattr(redact, "_REGISTERED", set())      # another process: only the file is shared
    assert redact.registered(registry) == {"minted-token-0001-abc"}


def _notebook_with(secret: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("print(key)", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text=f"key: {secret}\nnext line\n"),
        nbformat.v4.new_output("display_data", data={"text/html": f"<td>{html.escape(secret)}</td>",
                                                     "image/png": base64.b64encode(b"\x89PNG" * 40).decode()}),
        nbformat.v4.new_output("error", ename="RuntimeError", evalue=f"bad key {secret}",
                               traceback=[f"\x1b[0;31mRuntimeError\x1b[0m: bad key {secret}"]),
    ]))
    return nb


def test_a_redacted_notebook_still_validates_and_keeps_its_images(tmp_path):
    # GIVEN an executed notebook with the secret in a stream, an HTML table and an error
    path = tmp_path / "02-metrics.ipynb"
    nb = _notebook_with(PASSPHRASE)
    nbformat.write(nb, str(path))
    image = nb.cells[0].outputs[1].data["image/png"]
    # WHEN the folder is redacted
    outcome = redact.redact_folder(tmp_path, SECRETS)
    # THEN nbformat still reads and validates it, the secret is gone, the image is untouched
    assert outcome.changed == [path]
    clean = nbformat.read(str(path), as_version=4)
    nbformat.validate(clean)
    assert leaks(path.read_text(), PASSPHRASE) == []
    assert clean.cells[0].outputs[1].data["image/png"] == image
    assert clean.cells[0].outputs[0].text == "key: [redacted]\nnext line\n"


def test_runbook_text_holds_no_secret(tmp_path):
    # GIVEN an HTML page as nbconvert writes it: escaped text, attributes, a wrapped line
    page = (f'<html><body><pre>{html.escape(PASSPHRASE)}</pre><a title="{html.escape(PASSPHRASE)}">x</a>'
            f"<pre>{html.escape(TOKEN[:20])}\n{TOKEN[20:]}</pre></body></html>")
    (tmp_path / "runbook.html").write_text(page)
    redact.redact_folder(tmp_path, SECRETS)
    soup = BeautifulSoup((tmp_path / "runbook.html").read_text(), "html.parser")
    seen = soup.get_text() + " ".join(str(a.get("title")) for a in soup.find_all("a"))
    assert PASSPHRASE not in seen and TOKEN[:20] not in seen and TOKEN[20:] not in seen


def test_a_file_that_cannot_be_rewritten_is_overwritten_in_place(tmp_path, monkeypatch):
    # GIVEN a full disk: no new file can be written
    path = tmp_path / "kernels.log"
    path.write_text(f"started with {TOKEN}\n")

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", full)
    # WHEN redacted THEN the file is overwritten in place (it shrinks), and holds no secret
    assert redact.redact_file(path, redact.Redactor(SECRETS)) == "changed"
    assert path.read_text() == "started with [redacted]\n"


def test_a_file_that_cannot_be_redacted_is_removed(tmp_path, monkeypatch):
    # GIVEN a full disk and a redaction that would make the file longer (a short secret)
    path = tmp_path / "summary.txt"
    path.write_text("pw=abcdefgh")

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", full)
    # WHEN redacted THEN it is deleted rather than left with the secret
    assert redact.redact_file(path, redact.Redactor(["abcdefgh"])) == "removed"
    assert not path.exists()


def test_redacting_writer_redacts_lines_and_logs_them(tmp_path):
    # GIVEN a terminal, a log, and a secret learnt after the writer was made
    terminal, log = io.StringIO(), io.StringIO()
    redactor = redact.Redactor()
    writer = redact.RedactingWriter(terminal, redactor, log)
    redactor.add([TOKEN])
    # WHEN a line arrives in pieces, and a progress bar redraws with \r
    writer.write(f"[1/6] 01-deploy FAILED at cell 3: RuntimeError: {TOKEN[:10]}")
    writer.write(f"{TOKEN[10:]}\nprogress 50%\r")
    writer.flush()
    # THEN the terminal and the log get the redacted line; the log has no progress bar
    assert TOKEN[:12] not in terminal.getvalue() and "[redacted]" in terminal.getvalue()
    assert "progress 50%\r" in terminal.getvalue()
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith("RuntimeError: [redacted]")
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", lines[0])
