"""gtag's user-provided data parameter `em`: decoded into sGTM `user_data`, encoded back.

gtag sends the data a page gave it for enhanced conversions (`gtag('set', 'user_data', ...)`)
normalized and hashed in the browser, as one parameter:

    em=tv.1~em.<hash>~pn.<hash>~fn0.<hash>~ln0.<hash>~pc0.<text>~co0.<text>

The rules are those of Google's own parser of this value (EnhancedMatchMapper in
google-ads-confidential-computing/confidential-match):
- tokens are split on `~`, each `key.value` with exactly one dot and both parts non-empty
  (other tokens are ignored); the whole value is at most MAX_CHARS characters;
- `tv` (tag version) must appear once, as `1`, or nothing is read;
- `em` (email) and `pn` (phone) may repeat; `fn<i>`, `ln<i>`, `pc<i>`, `co<i>` are the first and
  last name, postal code and country of address `i` (0-99);
- `em pn fn ln` are SHA-256 digests, as base64url without padding (43 characters, what gtag
  sends) or as 64 hex digits; `pc` and `co` are plain text;
- a value `e<digits>` is an error code (the page could not provide that field), not data.
Other keys (third-party notes mention `sa`, `ct`, `rg` for street, city, region) are not read
by Google's parser and are not kept.

sGTM key names: `user_data.sha256_email_address`, `.sha256_phone_number`, and
`user_data.address` with `sha256_first_name`, `sha256_last_name`, `postal_code`, `country`.
Digests are kept as lowercase hex, the form every sGTM tag (Google Ads, Meta) expects; a field
with one value is a string, with several a list; `address` is an object, or a list of them
when the hit names several addresses.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sgtm.kit.hashing import distinct, e164, sha256_hex
from sgtm.kit.mapping import values

from ..ga4_mp import normalize as google

MAX_CHARS = 20_000
MAX_VALUES = 10  # per field when encoding: sgtm's cap, as in the ga4_mp tag
HASHED_KEYS = {"em": "sha256_email_address", "pn": "sha256_phone_number"}
ADDRESS_KEYS = {
    "fn": "sha256_first_name",
    "ln": "sha256_last_name",
    "pc": "postal_code",
    "co": "country",
}
HASHED_ADDRESS_KEYS = frozenset({"fn", "ln"})
_ADDRESS_TOKEN = re.compile(r"(fn|ln|pc|co)([0-9]{1,2})")
_ERROR_CODE = re.compile(r"e[0-9]{1,5}")
_BASE64URL_DIGEST = re.compile(r"[A-Za-z0-9_-]{43}")
_HEX_DIGEST = re.compile(r"[0-9A-Fa-f]{64}")


def decode(raw: str) -> tuple[dict[str, Any], int]:
    """(`user_data` object, number of tokens that were invalid). An unreadable value (no `tv.1`,
    too long) gives ({}, 1)."""
    if len(raw) > MAX_CHARS:
        return {}, 1
    pairs = []
    for token in raw.split("~"):
        key, dot, value = token.partition(".")
        if dot and key and value and "." not in value:
            pairs.append((key, value))
    if [value for key, value in pairs if key == "tv"] != ["1"]:
        return {}, 1
    invalid = 0
    data: dict[str, Any] = {}
    hashed: dict[str, dict[str, None]] = {}  # field -> digests in order, a repeat kept once
    addresses: dict[int, dict[str, str]] = {}
    for key, value in pairs:
        if key == "tv" or _ERROR_CODE.fullmatch(value):
            continue
        if key in HASHED_KEYS:
            digest = hex_digest(value)
            if digest is None:
                invalid += 1
            else:
                hashed.setdefault(HASHED_KEYS[key], {})[digest] = None
        elif match := _ADDRESS_TOKEN.fullmatch(key):
            field, index = match[1], int(match[2])
            text = hex_digest(value) if field in HASHED_ADDRESS_KEYS else value
            if text is None:
                invalid += 1
            else:
                addresses.setdefault(index, {}).setdefault(ADDRESS_KEYS[field], text)
    for field, found in hashed.items():
        digests = list(found)
        data[field] = digests[0] if len(digests) == 1 else digests
    if addresses:
        entries = [addresses[i] for i in sorted(addresses)]
        data["address"] = entries[0] if len(entries) == 1 else entries
    return data, invalid


def merge(user_data: dict[str, Any], decoded: Mapping[str, Any]) -> None:
    """Add what `em` carried to a `user_data` object that may already hold `ep.user_data.*`
    values: `em`'s fields win, address `i` merges into the existing address `i`."""
    for key, value in decoded.items():
        if key != "address":
            user_data[key] = value
            continue
        existing = _entries(user_data.get("address"))
        for index, entry in enumerate(_entries(value)):
            if index < len(existing):
                existing[index] = {**existing[index], **entry}
            else:
                existing.append(dict(entry))
        user_data["address"] = existing[0] if len(existing) == 1 else existing


def encode(user_data: Any) -> str | None:
    """The `em` value for a `user_data` object, or None when it holds nothing gtag would send.

    Digests (`sha256_*`, hex or base64url) are sent as they are; plain values (`email_address`,
    `phone_number`, `first_name`, ...) are normalized and hashed first by Google's rules, as gtag
    does in the browser. Street, city and region are not sent: Google's parser reads none.
    """
    if not isinstance(user_data, dict):
        return None
    tokens = []
    emails = _digests(
        values(user_data, "sha256_email_address", "email_address", "email"), google.google_email
    )
    tokens += [f"em.{digest}" for digest in emails]
    phones = _digests(values(user_data, "sha256_phone_number", "phone_number", "phone"), e164)
    tokens += [f"pn.{digest}" for digest in phones]
    for index, entry in enumerate(_entries(user_data.get("address"))[:MAX_VALUES]):
        tokens += _address_tokens(index, entry)
    return "~".join(["tv.1", *tokens]) if tokens else None


def hex_digest(value: str) -> str | None:
    """A SHA-256 digest given as base64url (43 characters) or hex (64), as lowercase hex."""
    if _HEX_DIGEST.fullmatch(value):
        return value.lower()
    if _BASE64URL_DIGEST.fullmatch(value):
        return base64.urlsafe_b64decode(value + "=").hex()
    return None


def base64url(hex_value: str) -> str:
    return base64.urlsafe_b64encode(bytes.fromhex(hex_value)).decode().rstrip("=")


def _address_tokens(index: int, entry: Mapping[str, Any]) -> list[str]:
    tokens = []
    for key, (digest_field, plain_field) in (
        ("fn", ("sha256_first_name", "first_name")),
        ("ln", ("sha256_last_name", "last_name")),
    ):
        found = _digests(values(entry, digest_field, plain_field), google.google_name)
        if found:
            tokens.append(f"{key}{index}.{found[0]}")
    for key, field, normalize in (
        ("pc", "postal_code", google.google_postal_code),
        ("co", "country", google.google_country),
    ):
        text = normalize(entry.get(field))
        if text and "." not in text:  # a dot would split the token
            tokens.append(f"{key}{index}.{text}")
    return tokens


def _digests(values: Iterable[Any], normalize: Callable[[Any], str | None]) -> list[str]:
    """base64url digests: given ones as they are, plain values normalized then hashed."""

    def digest_of(value: Any) -> str | None:
        digest = hex_digest(value.strip()) if isinstance(value, str) else None
        if digest is None:
            normalized = normalize(value)
            digest = sha256_hex(normalized) if normalized else None
        return base64url(digest) if digest is not None else None

    return distinct(values, digest_of, MAX_VALUES)


def _entries(address: Any) -> list[dict[str, Any]]:
    entries = address if isinstance(address, list) else [address]
    return [entry for entry in entries if isinstance(entry, dict)]
