"""Does a text still show a secret? Asked of the decoders someone else wrote, not of the redactor.

``leaks(text, secret)`` reads ``text`` whole, HTML-unescaped (twice), URL-unquoted, JSON-unescaped,
and each token of it base64-, base64url- and hex-decoded, and returns every run of 12 characters
of ``secret`` that any of those readings still shows.
"""
from __future__ import annotations

import base64
import binascii
import html
import json
import re
from urllib.parse import unquote, unquote_plus

RUN_CHARS = 12


def decodings(text: str) -> list[str]:
    """``text`` as every decoder would read it: whole, and each token decoded every way that works."""
    views = [text, html.unescape(text), html.unescape(html.unescape(text)), unquote(text), unquote_plus(text)]
    try:
        views.append(json.loads(f'"{text}"'))
    except ValueError:
        pass
    for token in re.findall(r"[A-Za-z0-9+/=_\-]{12,}", text):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            for pad in ("", "=", "=="):
                try:
                    views.append(decode(token + pad).decode("utf-8", errors="ignore"))
                except (binascii.Error, ValueError):
                    pass
        try:
            views.append(bytes.fromhex(token).decode("utf-8", errors="ignore"))
        except ValueError:
            pass
    return views


def leaks(text: str, secret: str, run: int = RUN_CHARS) -> list[str]:
    """Runs of ``run`` characters of ``secret`` (the whole of a shorter one) that a decoding of ``text`` shows."""
    run = min(run, len(secret))
    pieces = {secret[i:i + run] for i in range(len(secret) - run + 1)}
    return sorted({p for view in decodings(text) for p in pieces if p in view})


def leaked(text: str, secrets: set[str] | list[str], run: int = RUN_CHARS) -> dict[str, list[str]]:
    """``leaks`` for many secrets at once (the text is decoded once): secret -> the runs it still shows."""
    views = decodings(text)
    found = {}
    for secret in secrets:
        size = min(run, len(secret))
        pieces = {secret[i:i + size] for i in range(len(secret) - size + 1)}
        shown = sorted({p for view in views for p in pieces if p in view})
        if shown:
            found[secret] = shown
    return found
