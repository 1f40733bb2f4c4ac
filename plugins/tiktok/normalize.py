"""TikTok's normalization of personal data for the Events API 2.0 `user` object. Each function
returns None for a value that cannot be one of its kind.

TikTok's portal pages were not at hand, so the rules are those of the strictest public
integration, Segment's TikTok Conversions, which Stape's and RudderStack's agree with where they
overlap:
- `tiktok_email`: trim, lowercase, must look like `local@domain.tld` (no Gmail rule).
- phones: `sgtm.kit.hashing.e164`, hashed with the `+`: the same text Google hashes, so Google's
  `sha256_phone_number` is TikTok's hash too.
- `tiktok_external_id`: trim, lowercase.
- first and last name, ZIP code: `sgtm.kit.hashing.lower_without_spaces` (lowercase, every
  whitespace removed).
- `tiktok_location` (city, state, country, sent in clear): ASCII letters and digits, lowercased.
"""

from __future__ import annotations

import re

_WHITESPACE = re.compile(r"\s")
_NOT_ASCII_ALNUM = re.compile(r"[^a-z0-9]")


def tiktok_email(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or "@" in local or "." not in domain or _WHITESPACE.search(text):
        return None
    return text


def tiktok_external_id(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    return value.strip().lower() or None


def tiktok_location(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return _NOT_ASCII_ALNUM.sub("", value.lower()) or None
