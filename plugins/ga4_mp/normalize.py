"""Google's normalization of personal data for GA4 Measurement Protocol `user_data`
(developers.google.com/analytics/devguides/collection/ga4/uid-data, the same rules as Google Ads
enhanced conversions). Each function returns None for a value that cannot be one of its kind.

- `google_email`: trim, lowercase, remove every space; for `gmail.com` and `googlemail.com`
  addresses remove the dots before the `@` (not the `+tag`: that is the Data Manager API's rule,
  not this page's).
- phones: `sgtm.kit.hashing.e164`; Google then hashes them with their `+`.
- `google_name` (first and last name): remove digits and symbols, lowercase, trim.
- `google_street`: remove symbols (digits stay), lowercase, trim.
- `google_city`, `google_region`: like names (digits and symbols removed), sent in clear.
- `google_postal_code`: trim, remove `.` and `~`; sent in clear.
- `google_country`: a two-letter ISO 3166-1 alpha-2 code, upper-cased; sent in clear.
"Symbols" are taken as everything that is not a letter (any script, accents kept), a combining
mark or whitespace; `Jean-Luc O'Neil` becomes `jeanluc oneil`.
"""

from __future__ import annotations

import re
import unicodedata

_WHITESPACE = re.compile(r"\s+")
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_COUNTRY = re.compile(r"[A-Za-z]{2}")


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
