"""Placeholders for values that must never be stored or come from a hit: secrets and run-time
credentials.

A stored request holds `{{secret.NAME@N}}` where a configured secret was, and `{{credential@N}}`
(or `{{credential.NAME@N}}`) where a tag wants a run-time token; the delivery engine puts the real
values back just before sending. `N` is a nonce drawn when the request was built and kept with
the job, outside the request's text. Only placeholders carrying their job's nonce are filled, so
text that came from a hit (`ep.uid={{secret.CRM_SECRET}}`) can never become a secret: the hit was
written before the nonce existed, and the nonce is never shown to it.

Shown to people (`sgtm emulate`, dry-run logs), placeholders lose their nonce: `{{credential}}`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Collection

NONCE_BYTES = 12  # 96 bits: not guessable, and short enough to cost nothing in a stored request

# Jobs stored before nonces existed hold placeholders without one; they are filled only for such
# jobs (whose nonce set is {LEGACY}), never for a job that has a nonce.
LEGACY = ""

# A placeholder: kind (secret|credential), optional name, optional form, nonce.
_PLACEHOLDER_RE = re.compile(
    r"\{\{(secret|credential)(?:\.([A-Za-z_][A-Za-z0-9_]*))?(\|url\+?)?(?:@([0-9a-f]{1,64}))?\}\}"
)
_NONCE_SUFFIX_RE = re.compile(
    r"(\{\{(?:secret|credential)(?:\.[A-Za-z_][A-Za-z0-9_]*)?(?:\|url\+?)?)@[0-9a-f]{1,64}\}\}"
)


def new_nonce() -> str:
    return secrets.token_hex(NONCE_BYTES)


def credential(nonce: str, name: str | None = None) -> str:
    return f"{{{{credential.{name}@{nonce}}}}}" if name else f"{{{{credential@{nonce}}}}}"


def secret(nonce: str, name: str, form: str = "") -> str:
    """`form` is "" (the value as it is), "|url" (percent-encoded) or "|url+" (form-encoded)."""
    return f"{{{{secret.{name}{form}@{nonce}}}}}"


# (kind, name, form) -> the real text, or None to leave the placeholder as it is.
Resolver = Callable[[str, str | None, str], str | None]


def fill(text: str, nonces: Collection[str], resolve: Resolver) -> str:
    """`text` with every placeholder of one of `nonces` replaced by what `resolve` gives."""
    if "{{" not in text or not nonces:
        return text

    def replace(match: re.Match[str]) -> str:
        kind, name, form, nonce = match.groups()
        if (nonce or LEGACY) not in nonces:
            return match.group(0)
        real = resolve(kind, name, form or "")
        return match.group(0) if real is None else real

    return _PLACEHOLDER_RE.sub(replace, text)


def fill_bytes(body: bytes, nonces: Collection[str], resolve: Resolver) -> bytes:
    if b"{{" not in body or not nonces:
        return body
    text = body.decode("utf-8", "surrogateescape")
    return fill(text, nonces, resolve).encode("utf-8", "surrogateescape")


def contains(text: str, kind: str, nonces: Collection[str]) -> bool:
    """Whether `text` holds a placeholder of `kind` for one of `nonces`."""
    if "{{" + kind not in text:
        return False
    return any(
        m.group(1) == kind and (m.group(4) or LEGACY) in nonces
        for m in _PLACEHOLDER_RE.finditer(text)
    )


def for_display(text: str) -> str:
    """Placeholders without their nonce, as people read them: `{{credential.instance_url}}`."""
    if "@" not in text or "{{" not in text:
        return text
    return _NONCE_SUFFIX_RE.sub(r"\1}}", text)
