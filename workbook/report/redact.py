"""Secrets never reach the outputs: every known secret, in every form it can take, becomes ``[redacted]``.

Which values are secrets (``environment_secrets``, ``local_secrets``, ``stack_secrets``, ``register``):
- environment variables whose names look secret (``*PASS*``, ``*TOKEN*``, ``*SECRET*``, ``*_KEY``,
  ``*CREDENTIAL*``, ...), the contents of the files that ``*_FILE`` variables (and secret-named
  variables holding a path) point at, the password inside any variable's URL, and the variable
  that params name in ``backend.passphrase_env`` (with its ``_FILE`` twin);
- for ``--env local``, every secret the local endpoint holds; on AWS, the stack's own secrets
  (read with the run's credentials; a warning when they cannot be read);
- values a run registers while it works (``register``: tokens minted for tuning).

What the ``Redactor`` replaces, in a file or a line of progress:
- each secret raw, JSON-escaped (once and twice), HTML-escaped (either quoting style), URL-encoded,
  and as base64, base64url or hex (at any byte alignment inside a longer encoded string);
- any run of ``MIN_RUN_CHARS`` (12) or more characters of one of those forms: a value split across
  lines, or cut short by a display (pandas' ``abc...``);
- JSON Web Tokens, and the password part of ``scheme://user:password@host``.

Values shorter than ``MIN_SECRET_CHARS`` (8) are not redacted: they are too common to replace
without harm. The search indexes every 4-character piece of every form, then looks at every 4th
character of the text, so one pass over the text finds every run of 8 or more.
"""
from __future__ import annotations

import base64
import html
import io
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

from workbook import aws

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 8
MIN_RUN_CHARS = 12
REGISTRY_ENV = "WORKBOOK_REDACT_REGISTRY"   # a file (outside the outputs) where a run's kernels register values
_GRAM = 4
_FILE_LIMIT = 64 * 1024
_SECRET_NAME = re.compile(r"PASS|TOKEN|SECRET|CREDENTIAL|PRIVATE|SIGNING|(^|_)KEY$|API_?KEY|ACCESS_KEY", re.I)
_FILE_SUFFIX = re.compile(r"_?FILE$", re.I)
_NOT_SECRET = {"testing", "true", "false", "none", "null", "undefined"}
_NOT_SECRET_FIELDS = {"host", "port", "dbname", "database", "username", "user", "engine", "region", "arn", "name"}
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}")
_URL_PASSWORD = re.compile(r"(?<=://)[^/\s:@'\"<>]+:([^/\s@'\"<>]+)@")
_DATA_URI = re.compile(r"data:image/[\w.+-]+;base64,[A-Za-z0-9+/=]+")
_IMAGE_KEYS = {"image/png", "image/jpeg", "image/gif", "image/webp"}
_REGISTERED: set[str] = set()


# -- which values are secrets -------------------------------------------------------------------
def environment_secrets(passphrase_env: str | None = None, environ: dict[str, str] | None = None) -> set[str]:
    """Secret values held by environment variables (names, ``*_FILE`` contents, URL passwords)."""
    environ = dict(os.environ if environ is None else environ)
    values: set[str] = set()
    for name, value in environ.items():
        values |= _url_passwords(value)
        stem = _FILE_SUFFIX.sub("", name)
        if name == passphrase_env or (_SECRET_NAME.search(stem) and stem != name):
            values |= _file_secrets(value) if stem != name else {value}
        elif _SECRET_NAME.search(name):
            path_values = _file_secrets(value) if value.startswith(("/", "~")) else set()
            values |= path_values or {value}
    if passphrase_env and environ.get(f"{passphrase_env}_FILE"):
        values |= _file_secrets(environ[f"{passphrase_env}_FILE"])
    return {v for v in values if _worth_redacting(v)}


def _url_passwords(value: str) -> set[str]:
    if "://" not in value or "@" not in value:
        return set()
    try:
        password = urlsplit(value.strip()).password
    except ValueError:
        return set()
    return {password, unquote(password)} if password else set()


def _file_secrets(path: str) -> set[str]:
    """The lines of a small text file (and the value part of ``key = value`` lines); nothing if unreadable."""
    try:
        file = Path(path).expanduser()
        if not file.is_file() or file.stat().st_size > _FILE_LIMIT:
            return set()
        text = file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    values = {text.strip()} if "\n" not in text.strip() else set()
    for line in (raw.strip() for raw in text.splitlines()):
        pair = re.match(r"^[\w.\-\[\] ]+?\s*[=:]\s*(.+)$", line)
        values.add(pair.group(1).strip() if pair else line)
    return values


def local_secrets() -> set[str]:
    """Every secret string the local endpoint holds (whole values, or their JSON fields). Raises on failure."""
    client = aws.client("secretsmanager")
    values: set[str] = set()
    for page in client.get_paginator("list_secrets").paginate():
        for entry in page.get("SecretList", []):
            values |= _secret_string_values(client.get_secret_value(SecretId=entry["ARN"]).get("SecretString") or "")
    return values


def stack_secrets(names: Iterable[str], region: str | None = None) -> tuple[set[str], list[str]]:
    """The values of the named Secrets Manager secrets, and a line per secret that could not be read."""
    client = aws.client("secretsmanager", region)
    values: set[str] = set()
    problems: list[str] = []
    for name in names:
        try:
            values |= _secret_string_values(client.get_secret_value(SecretId=name).get("SecretString") or "")
        except Exception as exc:  # noqa: BLE001 - any failure (denied, missing, offline) is a warning, not a stop
            problems.append(f"{name}: {type(exc).__name__}")
    return values, problems


def _secret_string_values(secret: str) -> set[str]:
    try:
        parsed = json.loads(secret)
    except ValueError:
        return {secret}
    return set(_secret_leaves(parsed)) if isinstance(parsed, dict | list) else {secret}


def _secret_leaves(value: Any, key: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _secret_leaves(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _secret_leaves(v, key)
    elif isinstance(value, str) and key.lower() not in _NOT_SECRET_FIELDS:
        yield from _url_passwords(value) if value.startswith(("http://", "https://")) else (value,)


def register(*values: str) -> None:
    """Add values minted during a run (a signed token, a generated password) to what is redacted.

    In a run's kernels the values also go to the run's registry file, which the run reads before
    it redacts; the file lives outside the outputs and is deleted when the run ends.
    """
    fresh = [v for v in values if isinstance(v, str) and _worth_redacting(v) and v not in _REGISTERED]
    _REGISTERED.update(fresh)
    target = os.environ.get(REGISTRY_ENV)
    if fresh and target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.writelines(json.dumps(v) + "\n" for v in fresh)


def registered(path: str | Path | None = None) -> set[str]:
    """Values registered in this process, and in the registry file at ``path`` (a run's kernels)."""
    values = set(_REGISTERED)
    if path and Path(path).is_file():
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            try:
                values.add(json.loads(line))
            except ValueError:
                continue
    return values


def known_secrets(passphrase_env: str | None = "PULUMI_CONFIG_PASSPHRASE") -> set[str]:
    """Environment secrets, registered values and, when the local endpoint is active, its secrets."""
    values = environment_secrets(passphrase_env) | registered(os.environ.get(REGISTRY_ENV))
    if aws.is_local():
        values |= local_secrets()
    return values


def _worth_redacting(value: object) -> bool:
    return isinstance(value, str) and len(value.strip()) >= MIN_SECRET_CHARS and value.lower() not in _NOT_SECRET


# -- the forms a value takes in an output ---------------------------------------------------------
def encoded_forms(secret: str) -> set[str]:
    """``secret`` as it can appear in a notebook, a runbook, a log or a URL."""
    json_once = json.dumps(secret)[1:-1]
    textual = {secret, json_once, json.dumps(json_once)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
               repr(secret)[1:-1]}
    for form in list(textual):
        textual |= {html.escape(form), html.escape(form, quote=False),
                    form.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                        .replace('"', "&#34;").replace("'", "&#39;")}
    data = secret.encode("utf-8")
    encoded = {quote(secret, safe=""), quote(secret), quote_plus(secret), data.hex(), data.hex().upper()}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        encoded |= _base64_forms(data, encode)
    return {form for form in textual | encoded if len(form) >= MIN_SECRET_CHARS}


def _base64_forms(data: bytes, encode) -> set[str]:
    """The whole encoding, and the part that stays the same at each byte offset inside a longer string."""
    forms = {encode(data).decode(), encode(data).decode().rstrip("=")}
    for offset in range(3):
        text = encode(b"\0" * offset + data).decode().rstrip("=")
        start = 4 if offset else 0
        end = len(text) - 4 if (offset + len(data)) % 3 else len(text)
        forms.add(text[start:end])
    return forms


# -- the redactor ---------------------------------------------------------------------------------
class Redactor:
    """Replaces known secrets (every form, and runs of 12+ characters of one), JWTs and URL passwords."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._known: set[str] = set()
        self._forms: list[str] = []
        self._form_set: set[str] = set()
        self._index: dict[str, list[tuple[int, int]]] = {}
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        for secret in secrets:
            if not _worth_redacting(secret) or secret in self._known:
                continue
            self._known.add(secret)
            for form in sorted(encoded_forms(secret) - self._form_set):
                self._form_set.add(form)
                self._forms.append(form)
                number = len(self._forms) - 1
                for offset in range(len(form) - _GRAM + 1):
                    self._index.setdefault(form[offset:offset + _GRAM], []).append((number, offset))

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(self._known)

    def text(self, text: str) -> str:
        """``text`` with every secret (and JWT, and URL password) replaced by ``[redacted]``."""
        spans = [span for start, end in _scannable(text) for span in self._spans(text, start, end)]
        spans += [m.span() for m in _JWT.finditer(text)] + [m.span(1) for m in _URL_PASSWORD.finditer(text)]
        return _replace(text, spans) if spans else text

    def _spans(self, text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
        index = self._index
        if not index:
            return
        for i in range(start, end - _GRAM + 1, _GRAM):
            for number, offset in index.get(text[i:i + _GRAM], ()):
                span = self._extend(text, end, i, self._forms[number], offset)
                if span:
                    yield span

    @staticmethod
    def _extend(text: str, end: int, i: int, form: str, offset: int) -> tuple[int, int] | None:
        """The longest run of ``form`` through text[i] = form[offset]; None when shorter than required."""
        left = 0
        while left < offset and left < i and text[i - left - 1] == form[offset - left - 1]:
            left += 1
        right = _GRAM
        limit = min(len(form) - offset, end - i)
        while right < limit and text[i + right] == form[offset + right]:
            right += 1
        if left + right >= min(MIN_RUN_CHARS, len(form)):
            return i - left, i + right
        return None


def _scannable(text: str) -> Iterator[tuple[int, int]]:
    """The parts of ``text`` outside inline images (``data:image/...;base64,...``)."""
    position = 0
    for image in _DATA_URI.finditer(text):
        yield position, image.start()
        position = image.end()
    yield position, len(text)


def _replace(text: str, spans: list[tuple[int, int]]) -> str:
    merged: list[list[int]] = []
    for start, end in sorted(_widen(text, s, e) for s, e in spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    pieces, last = [], 0
    for start, end in merged:
        pieces += [text[last:start], REDACTED]
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def _widen(text: str, start: int, end: int) -> tuple[int, int]:
    """Never leave half an HTML entity (``&qu`` ... ``ot;``) at either edge of a redacted span."""
    before = re.search(r"&#?\w{0,7}$", text[max(0, start - 9):start])
    if before:
        start -= len(before.group(0))
    inside = re.search(r"&#?\w{0,7}$", text[max(start, end - 9):end])
    after = re.match(r"#?\w{0,7};", text[end:end + 9])
    if inside and after:
        end += len(after.group(0))
    return start, end


# -- files and streams ----------------------------------------------------------------------------
@dataclass
class FolderRedaction:
    """What a pass over a folder did: the files it changed, and the files it had to delete."""

    changed: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)


def redact_folder(folder: Path, secrets: Redactor | Iterable[str]) -> FolderRedaction:
    """Redact every text file under ``folder``; a file that cannot be rewritten is deleted, never left."""
    redactor = secrets if isinstance(secrets, Redactor) else Redactor(secrets)
    outcome = FolderRedaction()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            state = redact_file(path, redactor)
            if state == "changed":
                outcome.changed.append(path)
            elif state == "removed":
                outcome.removed.append(path)
    return outcome


def redact_file(path: Path, redactor: Redactor) -> str:
    """Redact one file in place: ``changed``, ``unchanged``, ``binary`` or ``removed``."""
    try:
        data = path.read_bytes()
    except OSError:
        return "removed" if _remove(path) else "unchanged"
    if b"\0" in data[:8192]:
        return "binary"
    text = data.decode("utf-8", errors="surrogateescape")
    clean = _redact_json(text, redactor, path.suffix) if path.suffix in (".ipynb", ".json") else None
    if clean is None:
        clean = redactor.text(text)
    if clean == text:
        return "unchanged"
    return "changed" if _write_back(path, clean) else "removed"


def _redact_json(text: str, redactor: Redactor, suffix: str) -> str | None:
    """Redact a JSON file string by string (escapes stay whole); None when it is not valid JSON."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    changed = False

    def walk(value: Any, key: str = "") -> Any:
        nonlocal changed
        if isinstance(value, str):
            clean = value if key in _IMAGE_KEYS else redactor.text(value)
            changed = changed or clean != value
            return clean
        if isinstance(value, dict):
            return {walk(k): walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        return value

    clean = walk(document)
    if not changed:
        return text
    if suffix == ".ipynb":   # nbformat's own layout
        return json.dumps(clean, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    return json.dumps(clean, indent=2)


def _write_back(path: Path, text: str) -> bool:
    """Replace the file atomically; on a full disk overwrite it in place; failing both, delete it."""
    data = text.encode("utf-8", errors="surrogateescape")
    temporary = path.with_name(f".{path.name}.redacting")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
        return True
    except OSError:
        temporary.unlink(missing_ok=True)
    try:
        if len(data) <= path.stat().st_size:
            with open(path, "r+b") as handle:
                handle.write(data)
                handle.truncate()
            return True
    except OSError:
        pass
    _remove(path)
    return False


def _remove(path: Path) -> bool:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        return False
    return True


class RedactingWriter(io.TextIOBase):
    """A text stream that redacts each line before it reaches the terminal (and a log file, if given)."""

    def __init__(self, target: IO[str], redactor: Redactor, log: IO[str] | None = None) -> None:
        super().__init__()
        self._target, self._redactor, self._log = target, redactor, log
        self._pending = ""

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._target.isatty()

    @property
    def encoding(self) -> str:   # type: ignore[override]
        return getattr(self._target, "encoding", "utf-8")

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = re.split(r"(?<=[\n\r])", self._pending)
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._emit(self._pending)
            self._pending = ""
        self._target.flush()
        if self._log:
            self._log.flush()

    def _emit(self, line: str) -> None:
        clean = self._redactor.text(line)
        self._target.write(clean)
        if self._log and clean.strip() and not clean.endswith("\r"):   # progress bars stay on the terminal
            self._log.write(f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {clean.rstrip()}\n")
