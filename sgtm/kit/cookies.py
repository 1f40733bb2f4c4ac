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

Cookie values always pass `is_cookie_value` before they reach a Set-Cookie header: a value taken
from the request (a cookie, an fbclid) can never inject attributes or break the header encoding.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cache
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

import msgspec
from publicsuffixlist import PublicSuffixList

from sgtm.plugin import ClientContext, Cookie, EventData, first_denied_consent

# RFC 6265 cookie-octet: no whitespace, DQUOTE, comma, semicolon or backslash; ASCII only.
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]{1,1024}")
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}")


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
