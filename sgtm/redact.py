"""Keeping secrets out of logs, error messages and `sgtm emulate` output, and visitors' data out
of logs.

A container's secrets (values of settings declared `Secret`, of environment variables the config
lists under `secrets:` or whose names look secret) are replaced by `${NAME}` wherever text leaves
the process, in their plain and URL-encoded forms. Requests are logged by shape (`log_view`):
the URL's path, the query's names and the body's size, never a string a visitor could have sent.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

from sgtm import placeholders
from sgtm.plugin import Outbound

# Secrets shorter than this are matched only as whole tokens: masking every "s" in a log line
# because a test's secret is "s" would hide everything and protect nothing.
SHORT = 8


def alternation(forms: Collection[str]) -> str:
    """A regex matching any of `forms`, the longest first; short ones only as whole tokens."""

    def one(form: str) -> str:
        escaped = re.escape(form)
        return escaped if len(form) >= SHORT else rf"(?<![A-Za-z0-9]){escaped}(?![A-Za-z0-9])"

    return "|".join(one(f) for f in sorted(forms, key=len, reverse=True))


class Redactor:
    def __init__(self, secrets: Mapping[str, str]) -> None:
        variants: dict[str, str] = {}
        for value, name in secrets.items():
            for form in (value, quote(value, safe=""), quote_plus(value)):
                variants.setdefault(form, name)
        self._names = variants
        self._pattern = re.compile(alternation(variants)) if variants else None

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(lambda m: "${" + self._names[m.group(0)] + "}", text)

    def __bool__(self) -> bool:
        return self._pattern is not None


_LOG_BODY_LIMIT = 4096


def log_view(outbound: Outbound, redact: Redactor, *, full: bool = False) -> dict[str, Any]:
    """How a request appears in a log line. By default its URL without the query string, the
    query's parameter names and the body's size: no value a visitor could have sent, and cheap
    enough for a line per request. `full=True` (debug level) keeps the URL and body whole;
    secrets are masked either way."""
    if full:
        body = outbound.body[:_LOG_BODY_LIMIT].decode("utf-8", "replace")
        return {
            "url": placeholders.for_display(redact(outbound.url)),
            "body": placeholders.for_display(redact(body)),
        }
    origin, path, query = _url_shape(outbound.url)
    view: dict[str, Any] = {"url": f"{origin}{redact(path)}"}
    if query is not None:
        view["query"] = list(query)
    if outbound.body:
        view["bytes"] = len(outbound.body)
    return view


@functools.lru_cache(maxsize=256)
def _url_shape(url: str) -> tuple[str, str, tuple[str, ...] | None]:
    """`scheme://netloc`, the path and the query's parameter names (None without a query):
    split once per URL, as most tags send every event to the same few."""
    parts = urlsplit(url)
    names = None
    if parts.query:
        names = tuple(name for name, _ in parse_qsl(parts.query, keep_blank_values=True))
    return f"{parts.scheme}://{parts.netloc}", parts.path, names


HIDDEN = "'…'"
_REASON_LIMIT = 300


def hide_values(text: str) -> str:
    """A message with the values it quotes hidden, for log lines that tags and plugins word:
    `value '12,50' is not a number` -> `value '…' is not a number`. Tags quote what an event
    carries with `!r` (docs/plugins.md), so a quoted run is a visitor's value; as a safety net,
    words with an `@` (e-mail addresses) or seven digits or more (phone numbers, ids) are hidden
    too, and control characters become spaces. One pass, linear in the text; at most 300
    characters. The same words with other values give the same text, which is what lets a log
    line be rate-limited per reason."""
    out: list[str] = []
    i, n = 0, len(text)
    word: list[str] = []

    def end_word() -> None:
        if word:
            token = "".join(word)
            digits = sum(c.isdigit() for c in token)
            out.append(HIDDEN if "@" in token or digits >= 7 else token)
            word.clear()

    while i < n:
        c = text[i]
        opens = c in "'\"" and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_"))
        if opens:
            end_word()
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(HIDDEN)
            i = j + 1
            continue
        if c.isspace() or ord(c) < 32 or ord(c) == 127:
            end_word()
            out.append(" ")
        else:
            word.append(c)
        i += 1
    end_word()
    hidden = "".join(out)
    return hidden if len(hidden) <= _REASON_LIMIT else hidden[: _REASON_LIMIT - 1] + "…"
