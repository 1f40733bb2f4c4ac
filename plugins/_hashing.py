"""Normalizing and SHA-256 hashing of personal data, per vendor, for the tags that send it.

Each vendor documents its own normalization and they differ: a value normalized with the wrong
rules hashes to something that never matches. Every function below says exactly which rules it
applies and where they come from; a function returns None for a value that cannot be one of its
kind (nothing is hashed then). Meta's rules live in `sgtm_plugins.meta_capi.normalize` (a port of
Meta's own normalizer). Tag authors may add functions here; keep one vendor's rules per function.

Shared by all: `sha256_hex` hashes UTF-8 bytes to lowercase hex; a value that already is 64 hex
characters (`is_sha256_hex`) is taken as hashed and only lower-cased (`hashed`), never hashed
again.

Google (GA4 Measurement Protocol `user_data`, developers.google.com/analytics/devguides/collection/
ga4/uid-data, the same rules as Google Ads enhanced conversions):
- `google_email`: trim, lowercase, remove every space; for `gmail.com` and `googlemail.com`
  addresses remove the dots before the `@` (not the `+tag`: that is the Data Manager API's rule,
  not this page's).
- `e164`: the phone number in E.164 (see there); Google then hashes it with its `+`.
- `google_name` (first and last name): remove digits and symbols, lowercase, trim.
- `google_street`: remove symbols (digits stay), lowercase, trim.
- `google_city`, `google_region`: like names (digits and symbols removed), sent in clear.
- `google_postal_code`: trim, remove `.` and `~`; sent in clear.
- `google_country`: a two-letter ISO 3166-1 alpha-2 code, upper-cased; sent in clear.
"Symbols" are taken as everything that is not a letter (any script, accents kept), a combining
mark or whitespace; `Jean-Luc O'Neil` becomes `jeanluc oneil`.

Newtail / VTEX Ads (conversion `*_hashed` fields; old_doc/reference_segmentacao-por-pii.md):
- `newtail_text` (email, first and last name): lowercase, then remove every whitespace character
  ("remover todos os ESPAÇOS e converter para MINÚSCULO"): `Ana Maria` -> `anamaria`.
- `e164` for phones ("formatá-lo no padrão E.164 e incluir o código de chamada do país").
- `newtail_social_id` (CPF / CNPJ): only letters and digits, lowercased; 11 characters (CPF) or
  14 (CNPJ, alphanumeric from July 2026).

TikTok (Events API 2.0 `user`; TikTok's portal pages were not at hand, so the rules are those of
the strictest public integration, Segment's TikTok Conversions, which Stape's and RudderStack's
agree with where they overlap):
- `tiktok_email`: trim, lowercase, must look like `local@domain.tld` (no Gmail rule).
- `e164` for phones, hashed with the `+`: the same text Google hashes, so Google's
  `sha256_phone_number` is TikTok's hash too.
- `tiktok_external_id`: trim, lowercase.
- `lower_without_spaces` (first and last name, ZIP code): lowercase, every whitespace removed,
  Newtail's text rule too.
- `tiktok_location` (city, state, country, sent in clear): ASCII letters and digits, lowercased.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SHA256_HEX = re.compile(r"[0-9A-Fa-f]{64}")
_WHITESPACE = re.compile(r"\s+")
_NON_DIGITS = re.compile(r"[^0-9]")
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_COUNTRY = re.compile(r"[A-Za-z]{2}")
_SOCIAL_ID_LENGTHS = (11, 14)
_CALLING_CODE = re.compile(r"[1-9][0-9]{0,2}")

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


# -- Google ------------------------------------------------------------------------------------


def google_email(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = _WHITESPACE.sub("", value.strip().lower())
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain or "@" in local:
        return None
    if domain in _GMAIL_DOMAINS:
        local = local.replace(".", "")
        if not local:
            return None
    return f"{local}@{domain}"


def google_name(value: object) -> str | None:
    return _keep(value, digits=False)


def google_street(value: object) -> str | None:
    return _keep(value, digits=True)


def google_city(value: object) -> str | None:
    return _keep(value, digits=False)


def google_region(value: object) -> str | None:
    return _keep(value, digits=False)


def google_postal_code(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = value.replace(".", "").replace("~", "").strip()
    return text or None


def google_country(value: object) -> str | None:
    if not isinstance(value, str) or not _COUNTRY.fullmatch(value.strip()):
        return None
    return value.strip().upper()


def _keep(value: object, *, digits: bool) -> str | None:
    """Lowercase, trimmed, without symbols (and without digits unless `digits`)."""
    if not isinstance(value, str):
        return None
    kept = []
    for char in value.lower():
        category = unicodedata.category(char)
        if category[0] in "LM" or char.isspace() or (digits and category == "Nd"):
            kept.append(char)
    text = "".join(kept).strip()
    return text or None


# -- Newtail -----------------------------------------------------------------------------------


def lower_without_spaces(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = _WHITESPACE.sub("", value.lower())
    return text or None


newtail_text = lower_without_spaces


def newtail_email(value: object) -> str | None:
    """`newtail_text` of something shaped like an email address (`local@domain.tld`)."""
    text = newtail_text(value)
    if text is None:
        return None
    local, at, domain = text.rpartition("@")
    if not at or not local or "@" in local or "." not in domain:
        return None
    return text


def newtail_social_id(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value).zfill(11)
    if not isinstance(value, str):
        return None
    text = "".join(char for char in value if char.isascii() and char.isalnum()).lower()
    return text if len(text) in _SOCIAL_ID_LENGTHS else None


# -- TikTok ------------------------------------------------------------------------------------

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
