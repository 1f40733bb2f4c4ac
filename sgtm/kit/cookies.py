"""First-party identity cookies for clients that set them (docs/identity.md).

- `CookieSettings`: the `cookies:` block of a client's settings (domain, SameSite, Secure).
- `cookie_domain`: `auto` is the registrable domain of the request host, from the Public Suffix
  List bundled with the `publicsuffixlist` package (read from the package, never fetched), so
  `sgtm.loja.com.br` gets `loja.com.br` and `com.br` is never used. IPs and single-label hosts
  (`localhost`) get host-only cookies (no Domain attribute).
- `storage_granted`: identifier cookies need the consent type granted by every event of the
  request (or by the container default when a hit says nothing).
- `make_cookie`, `is_cookie_value`, `query_param`: a Cookie with the settings' attributes, the
  RFC 6265 value check, a query parameter of a page URL.
- `visitor_id`: the visitor's persistent first-party id (GA's client id, else sgtm's `_dcid`),
  the same whichever client brought an event: what retail-media ids are joined on.

Cookie values always pass `is_cookie_value` before they reach a Set-Cookie header: a value taken
from the request (a cookie, an fbclid) can never inject attributes or break the header encoding.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from functools import cache
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

import msgspec
from publicsuffixlist import PublicSuffixList

from sgtm.plugin import ClientContext, Cookie, EventData, first_denied_consent

# RFC 6265 cookie-octet: no whitespace, DQUOTE, comma, semicolon or backslash; ASCII only.
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]{1,1024}")
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}")

# GA's client id, `<random>.<unix seconds>`; the `_ga` cookie is `GA1.<labels>.<client id>`.
_GA_CLIENT_ID = re.compile(r"[0-9]{1,20}\.[0-9]{1,20}")
_GA_COOKIE = re.compile(r"GA1\.[0-9]{1,2}\.([0-9]{1,20}\.[0-9]{1,20})")
DCID_COOKIE = "_dcid"  # the datalayer client's default client id cookie
MAX_ID_CHARS = 256


@cache
def _psl() -> PublicSuffixList:
    return PublicSuffixList()  # the package's bundled list; about 40 ms, once per process


def is_cookie_value(value: object) -> bool:
    return isinstance(value, str) and _COOKIE_VALUE.fullmatch(value) is not None


class CookieSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`domain`: `auto` (the registrable domain of the host the request came to), `host` (a
    host-only cookie) or an explicit domain such as `shop.example` (used for hosts inside it;
    other hosts fall back to `auto`)."""

    domain: str = "auto"
    same_site: Literal["Lax", "Strict", "None"] = "Lax"
    secure: bool = True

    def __post_init__(self) -> None:
        self.domain = self.domain.strip().lower().lstrip(".")
        if self.same_site == "None" and not self.secure:
            raise ValueError("same_site: None needs secure: true (browsers refuse it otherwise)")
        if self.domain in ("auto", "host"):
            return
        if not _DOMAIN.fullmatch(self.domain):
            raise ValueError(f"domain: {self.domain!r} is not auto, host or a domain name")
        if _psl().privatesuffix(self.domain) is None:
            raise ValueError(
                f"domain: {self.domain!r} is a public suffix; browsers refuse cookies for it"
            )


def cookie_domain(host: str, settings: CookieSettings) -> str | None:
    """The Domain attribute for a cookie set in answer to a request to `host` (None: host-only)."""
    host = host.strip().lower().rstrip(".")
    if not host or settings.domain == "host" or _is_ip(host):
        return None
    explicit = settings.domain
    if explicit != "auto" and (host == explicit or host.endswith("." + explicit)):
        return explicit
    if not _DOMAIN.fullmatch(host):  # a Host header that is no (ASCII) domain name
        return None
    registrable: str | None = _psl().privatesuffix(host)
    return registrable


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def make_cookie(
    name: str,
    value: str,
    max_age: int,
    domain: str | None,
    settings: CookieSettings,
    *,
    http_only: bool = False,
) -> Cookie:
    return Cookie(
        name=name,
        value=value,
        max_age=max_age,
        domain=domain,
        secure=settings.secure,
        http_only=http_only,
        same_site=settings.same_site,
    )


def storage_granted(events: list[EventData], consent_type: str, ctx: ClientContext) -> bool:
    """True when every event grants `consent_type` (an event that says nothing: the default)."""
    default = ctx.container.consent_default == "granted"
    return bool(events) and all(
        first_denied_consent((consent_type,), event, default) is None for event in events
    )


def query_param(url: object, name: str) -> str | None:
    """The first value of `name` in the query of `url`, decoded as `URLSearchParams.get` does."""
    if not isinstance(url, str) or "?" not in url:
        return None
    try:
        query = urlsplit(url if "://" in url else "http://" + url).query
    except ValueError:
        return None
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == name:
            return value
    return None


def ga_client_id(cookie: object) -> str | None:
    """The client id in a `_ga` cookie: `GA1.1.1234567890.1700000000` -> `1234567890.1700000000`."""
    found = _GA_COOKIE.fullmatch(cookie) if isinstance(cookie, str) else None
    return found[1] if found else None


def visitor_id(event: EventData, cookies: Mapping[str, str]) -> str | None:
    """The visitor's persistent first-party id, the same for an event of any client:

    1. GA's client id: the ga4 client's `x-ga-js_client_id` (its FPID mode) or a `client_id` in
       GA's `<digits>.<digits>` form, else the `_ga` cookie the request carries;
    2. sgtm's own: another `client_id` (the datalayer client's `_dcid`), else the `_dcid` cookie.
    A ga4 hit, a datalayer event and a beacon from one browser so get one id: gtag's `_ga` and
    sgtm's `_dcid` are first-party cookies the browser sends to the tagging host too."""
    own = [event.get("x-ga-js_client_id"), event.get("client_id")]
    for candidate in own:
        if isinstance(candidate, str) and _GA_CLIENT_ID.fullmatch(candidate):
            return candidate
    from_cookie = ga_client_id(cookies.get("_ga"))
    if from_cookie is not None:
        return from_cookie
    for candidate in (event.get("client_id"), cookies.get(DCID_COOKIE)):
        if isinstance(candidate, str) and 0 < len(candidate.strip()) <= MAX_ID_CHARS:
            return candidate.strip()
    return None
