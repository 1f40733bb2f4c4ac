"""SHA-256 hashing of personal data and the normalization several vendors share.

Each vendor documents its own normalization and they differ: a value normalized with the wrong
rules hashes to something that never matches. A vendor's own rules live with its tag (Meta's in
`sgtm_plugins.meta_capi.normalize`, Google's in `sgtm_plugins.ga4_mp.normalize`, Newtail's in
`sgtm_plugins.newtail.normalize`); what is here is what is the same for all of them. A function
returns None for a value that cannot be one of its kind (nothing is hashed then).

- `sha256_hex` hashes UTF-8 bytes to lowercase hex; a value that already is 64 hex characters
  (`is_sha256_hex`) is taken as hashed and only lower-cased (`hashed`), never hashed again.
- `e164`: a phone number in E.164 (`+<country code><number>`), which Google, Meta, Newtail and
  TikTok all ask for before hashing; `check_calling_code` checks the default country code a
  settings field gives it.
- `lower_without_spaces`: lowercase with every whitespace removed (`Ana Maria` -> `anamaria`),
  the text rule of Newtail and of TikTok's names and ZIP codes.
- `distinct`: the first few distinct digests of a list of values, at a cost bounded by how many
  are kept, not by how many a hit sent.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")

_SHA256_HEX = re.compile(r"[0-9A-Fa-f]{64}")
_NON_DIGITS = re.compile(r"[^0-9]")
_WHITESPACE = re.compile(r"\s+")
_CALLING_CODE = re.compile(r"[1-9][0-9]{0,2}")

# `distinct` looks at no more than this many values for each one it may keep: room for some
# invalid or repeated ones, while a hit listing thousands of addresses costs what ten would.
LOOKED_AT_PER_KEPT = 4

# E.164: a country code and subscriber number of at most 15 digits; shorter than 7 is no phone.
E164_MIN_DIGITS = 7
E164_MAX_DIGITS = 15


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_sha256_hex(value: object) -> bool:
    return isinstance(value, str) and _SHA256_HEX.fullmatch(value.strip()) is not None


def hashed(value: object) -> str | None:
    """An already hashed value, lower-cased; None if `value` is not 64 hex characters."""
    return value.strip().lower() if isinstance(value, str) and is_sha256_hex(value) else None


def distinct(values: Iterable[T], hash_one: Callable[[T], str | None], limit: int) -> list[str]:
    """The distinct results of `hash_one` over `values`, in order, None results skipped, at most
    `limit` of them; after `limit * LOOKED_AT_PER_KEPT` values the rest are dropped unread.

    Each value costs a normalization and a SHA-256, and every value of a list comes from the hit:
    the bound keeps a list of thousands as cheap as a short one, and the set keeps the
    duplicate check constant-time (a `not in list` per value was quadratic).
    """
    kept: dict[str, None] = {}
    for value in itertools.islice(values, limit * LOOKED_AT_PER_KEPT):
        one = hash_one(value)
        if one is not None:
            kept[one] = None
            if len(kept) == limit:
                break
    return list(kept)


# -- phones ------------------------------------------------------------------------------------


def check_calling_code(value: str | None, name: str = "phone_country_code") -> None:
    """For settings: ValueError naming `name` unless `value` is None or a country calling code
    (1 to 3 digits, no leading zero: `"55"`, `"1"`, `"351"`)."""
    if value is not None and not _CALLING_CODE.fullmatch(value):
        raise ValueError(f"{name}: a country calling code of 1-3 digits, e.g. '55'; got {value!r}")


def e164(value: object, default_country_code: str | None = None) -> str | None:
    """`+<digits>` in E.164, or None.

    - `+55 (11) 91234-5678` -> `+5511912345678`: a leading `+` keeps the digits as they are;
    - `0055 11 91234-5678` -> `+5511912345678`: a leading `00` is the international prefix;
    - `(11) 91234-5678` with `default_country_code="55"` -> `+5511912345678`: a national number
      gets the country code, without its leading zeros (the trunk prefix, as in `011 ...`);
    - `(11) 91234-5678` without a default: `+11912345678`, Google's literal rule ("remove all non
      digit characters, add + prefix"); give `default_country_code` for national numbers.
    Fewer than 7 or more than 15 digits is no phone number: None.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    digits = _NON_DIGITS.sub("", text)
    if text.startswith("+"):
        pass
    elif text.startswith("00"):
        digits = digits[2:]
    elif default_country_code:
        digits = default_country_code + digits.lstrip("0")
    if not E164_MIN_DIGITS <= len(digits) <= E164_MAX_DIGITS:
        return None
    return "+" + digits


# -- text --------------------------------------------------------------------------------------


def lower_without_spaces(value: object) -> str | None:
    """Lowercase with every whitespace character removed; None for no text or only spaces."""
    if not isinstance(value, str):
        return None
    text = _WHITESPACE.sub("", value.lower())
    return text or None
