"""Finding canaries in a request a tag built: where each one is, and in which form.

A request is taken apart into leaves, each a place and its text: the URL path, every query
parameter, every header, and the body: every key and value of a JSON body (by JSON path), every
field of a form body, or the whole text. A canary is found in a leaf

- in clear: a mark of the field, or one of its usual normalizations (below) of at least
  MIN_NORMAL_CLEAR characters, appears in any case in the leaf or in its percent-decoded text;
- as SHA-256: the SHA-256 of one of the usual normalizations of a mark appears, in hex (any
  case) or base64 (standard or URL-safe, padded or not: gtag's `em`), for normalizations as is,
  trimmed, lower-cased, without whitespace, digits only, `+` and digits, digits without leading
  zeros, letters and digits only, letters only, upper-cased: what vendors' rules for e-mails,
  phones, names and addresses produce from values already in their normal form;
- anonymized: one of the field's `anonymized` values appears (a truncated IP, a URL without
  its query).

Marks shorter than MIN_SUBSTRING characters (`QZ`) must be the whole leaf. In one leaf a field
counts once, in its most revealing form.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit

import msgspec

from sgtm.plugin import Outbound, PersonalData

Form = Literal["clear", "sha256", "anonymized"]
FORMS: tuple[Form, ...] = ("clear", "sha256", "anonymized")  # most revealing first
MIN_SUBSTRING = 6
MIN_NORMAL_CLEAR = 10

_WHITESPACE = re.compile(r"\s+")
_NON_DIGITS = re.compile(r"[^0-9]")
_NON_ALNUM = re.compile(r"[^a-z0-9]")
_NON_ALPHA = re.compile(r"[^a-z]")
_HEX_RUN = re.compile(r"[0-9a-f]{64,}")
# Both base64 alphabets; a SHA-256 digest is 43 characters without its `=`.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{43,}")
HEX_CHARS, BASE64_CHARS = 64, 43
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# A body whose every line is `name=value&...` (form posts, GA4-style hit lines).
_FORM_LINE = re.compile(r"[^\s=&]+=[^\s&]*(?:&[^\s=&]+=[^\s&]*)*")


@dataclass(frozen=True, slots=True)
class Needle:
    field: PersonalData
    form: Form
    text: str  # lower-case
    exact: bool


@dataclass(frozen=True, slots=True)
class Found:
    field: PersonalData
    form: Form
    where: str


def normal_forms(mark: str) -> set[str]:
    lower = mark.strip().lower()
    digits = _NON_DIGITS.sub("", mark)
    forms = {
        mark,
        mark.strip(),
        lower,
        _WHITESPACE.sub("", lower),
        digits,
        "+" + digits,
        digits.lstrip("0"),
        _NON_ALNUM.sub("", lower),
        _NON_ALPHA.sub("", lower),
        mark.strip().upper(),
    }
    return {form for form in forms if len(form) >= 2 and form != "+"}


@dataclass(frozen=True, slots=True)
class Needles:
    """What to look for: marks and anonymized values as text, digests by their hex (lower case)
    and by their base64 forms (case matters there)."""

    texts: list[Needle]
    digests: dict[str, list[Needle]]
    base64_digests: dict[str, list[Needle]]


def needles(fields: tuple[PersonalData, ...]) -> Needles:
    texts: list[Needle] = []
    digests: dict[str, list[Needle]] = {}
    base64_digests: dict[str, list[Needle]] = {}
    for field in fields:
        for mark in field.marks or (field.value,):
            forms = normal_forms(mark)
            # Normalized text sent as it is counts as clear too (a phone as digits only), when
            # long enough not to turn up by chance.
            clear = {mark.lower(), *(f.lower() for f in forms if len(f) >= MIN_NORMAL_CLEAR)}
            for text in sorted(clear):
                texts.append(Needle(field, "clear", text, len(text) < MIN_SUBSTRING))
            for form in sorted(forms):
                raw = hashlib.sha256(form.encode("utf-8")).digest()
                needle = Needle(field, "sha256", raw.hex(), False)
                digests.setdefault(raw.hex(), []).append(needle)
                for encode in (base64.b64encode, base64.urlsafe_b64encode):
                    key = encode(raw).decode("ascii").rstrip("=")
                    base64_digests.setdefault(key, []).append(needle)
        for value in field.anonymized:
            exact = len(value) < MIN_SUBSTRING
            texts.append(Needle(field, "anonymized", value.lower(), exact))
    return Needles(texts, digests, base64_digests)


def find(outbound: Outbound, search: Needles) -> list[Found]:
    """Every field found in the request, once per place, in its most revealing form."""
    found: list[Found] = []
    for where, text in leaves(outbound):
        best: dict[str, Needle] = {}
        # Percent-decoded both ways: `+` is a space in a form, a base64 digit elsewhere.
        originals = (
            {text, unquote(text), unquote_plus(text)} if "%" in text or "+" in text else {text}
        )
        for original in originals:
            variant = original.lower()
            hits = [
                n for n in search.texts if (variant == n.text if n.exact else n.text in variant)
            ]
            # Digests are looked up, not searched: every window of a digest's length in every
            # run of hex (case ignored) or base64 digits (case kept).
            hits.extend(_windows(variant, _HEX_RUN, HEX_CHARS, search.digests))
            hits.extend(_windows(original, _BASE64_RUN, BASE64_CHARS, search.base64_digests))
            for needle in hits:
                known = best.get(needle.field.name)
                if known is None or FORMS.index(needle.form) < FORMS.index(known.form):
                    best[needle.field.name] = needle
        found.extend(Found(n.field, n.form, where) for n in best.values())
    return found


def _windows(
    text: str, run: re.Pattern[str], size: int, table: dict[str, list[Needle]]
) -> Iterator[Needle]:
    for found in run.findall(text):
        for start in range(len(found) - size + 1):
            yield from table.get(found[start : start + size], ())


def leaves(outbound: Outbound) -> Iterator[tuple[str, str]]:
    url = urlsplit(outbound.url)
    yield "url path", unquote(url.path)
    for name, value in parse_qsl(url.query, keep_blank_values=True):
        yield f"query {name}", value
    for name, value in outbound.headers.items():
        yield f"header {name}", value
    yield from body_leaves(outbound.body, _content_type(outbound.headers))


def body_leaves(body: bytes, content_type: str) -> Iterator[tuple[str, str]]:
    if not body:
        return
    text = body.decode("utf-8", "replace")
    if text.lstrip()[:1] in ("{", "["):
        try:
            document = msgspec.json.decode(body)
        except (msgspec.DecodeError, RecursionError):  # not JSON, or nested beyond parsing
            pass
        else:
            yield from json_leaves(document)
            return
    lines = [line for line in text.splitlines() if line.strip()]
    if content_type == "application/x-www-form-urlencoded" or (
        lines and all(_FORM_LINE.fullmatch(line.strip()) for line in lines)
    ):
        for line in lines:
            for name, value in parse_qsl(line.strip(), keep_blank_values=True):
                yield f"body {name}", value
        return
    yield "body", text


def json_leaves(document: Any) -> Iterator[tuple[str, str]]:
    """(`body $.a.b[0]`, text) for every scalar, and (`... (key)`, key) for every object key."""
    stack: list[tuple[str, Any]] = [("$", document)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            children = []
            for key, value in node.items():
                child = (
                    f"{path}.{key}" if _PLAIN_KEY.fullmatch(key) else f"{path}[{json.dumps(key)}]"
                )
                yield f"body {child} (key)", key
                children.append((child, value))
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([(f"{path}[{i}]", value) for i, value in enumerate(node)]))
        elif node is not None and not isinstance(node, bool):
            yield f"body {path}", str(node)


def _content_type(headers: dict[str, str]) -> str:
    for name, value in headers.items():
        if name.lower() == "content-type":
            return value.split(";")[0].strip().lower()
    return ""
