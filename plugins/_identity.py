"""First-party identity cookies shared by the browser-facing clients (docs/identity.md).

- `CookieSettings`: the `cookies:` block of a client's settings (domain, SameSite, Secure).
- `cookie_domain`: `auto` is the registrable domain of the request host, from the Public Suffix
  List bundled with the `publicsuffixlist` package (read from the package, never fetched), so
  `sgtm.loja.com.br` gets `loja.com.br` and `com.br` is never used. IPs and single-label hosts
  (`localhost`) get host-only cookies (no Domain attribute).
- `storage_granted`: identifier cookies need the consent type granted by every event of the
  request (or by the container default when a hit says nothing).
- `visitor_id`: the visitor's persistent first-party id (GA's client id, else sgtm's `_dcid`),
  the same whichever client brought an event: what retail-media ids are joined on.
- `meta_cookies`: the visitor's own `_fbp` / `_fbc` read into event data on every request, and,
  when the client is told to, set by the server with the capi-param-builder rules ported in
  `sgtm_plugins.meta_capi.normalize`.

Cookie values always pass `is_cookie_value` before they reach a Set-Cookie header: a value taken
from the request (a cookie, an fbclid) can never inject attributes or break the header encoding.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Mapping
from functools import cache
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

import msgspec
from publicsuffixlist import PublicSuffixList

from sgtm import consent
from sgtm.event import EventData
from sgtm.plugin import ClientContext, Cookie
from sgtm.request import HitRequest

# RFC 6265 cookie-octet: no whitespace, DQUOTE, comma, semicolon or backslash; ASCII only.
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]{1,1024}")
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}")

# GA's client id, `<random>.<unix seconds>`; the `_ga` cookie is `GA1.<labels>.<client id>`.
_GA_CLIENT_ID = re.compile(r"[0-9]{1,20}\.[0-9]{1,20}")
_GA_COOKIE = re.compile(r"GA1\.[0-9]{1,2}\.([0-9]{1,20}\.[0-9]{1,20})")
DCID_COOKIE = "_dcid"  # the datalayer client's default client id cookie
MAX_ID_CHARS = 256

META_MAX_AGE = 90 * 24 * 3600  # Meta's first-party cookies: 90 days
FBP_KEY = "x-fb-ck-fbp"  # the event data keys Meta's own sGTM tag reads
FBC_KEY = "x-fb-ck-fbc"


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
        consent.first_denied((consent_type,), event, default) is None for event in events
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


def meta_cookies(
    request: HitRequest,
    events: list[EventData],
    settings: CookieSettings,
    ctx: ClientContext,
    *,
    set_cookies: bool,
) -> None:
    """Meta's `_fbp` / `_fbc` for this request, in every event as `x-fb-ck-fbp` / `x-fb-ck-fbc`.

    Nothing is read or set unless every event grants `ad_storage`. The visitor's own valid
    cookies are always read (else a valid `x-fb-ck-*` value a hit carries is kept): reading
    them never depends on `set_cookies`, so a site whose pixel sets them loses no click or
    browser id. With `set_cookies`, the values are decided as Meta's parameter builder does and
    queued in `ctx.cookies` (refreshed to 90 days on each hit, which keeps them alive where
    browsers cap script-set cookies): `_fbp` is the valid cookie (or carried value) kept as it
    is, else a new `fb.<index>.<ms>.<random>`; `_fbc` comes from the `fbclid` of the page URL
    (else of the Referer) as `fb.<index>.<ms>.<fbclid>`, the click id byte for byte; an
    existing `_fbc` with the same click id is kept.
    """
    if not storage_granted(events, "ad_storage", ctx):
        return
    existing_fbp = _existing(request.cookies.get("_fbp"), events, FBP_KEY)
    existing_fbc = _existing(request.cookies.get("_fbc"), events, FBC_KEY)
    if not set_cookies:
        for key, value in ((FBP_KEY, existing_fbp), (FBC_KEY, existing_fbc)):
            if value is not None:
                for event in events:
                    event[key] = value
        return

    # Imported here: the meta_capi package imports this module (a cycle at import time).
    from sgtm_plugins.meta_capi.normalize import fbc_from, fbp_from, subdomain_index

    domain = cookie_domain(request.host, settings)
    index = subdomain_index(domain or request.host)
    now_ms = int(ctx.now * 1000)
    # Meta's builder draws floor(Math.random() * 2147483647): the same range, from a CSPRNG.
    fbp = fbp_from(existing_fbp, index, now_ms, secrets.randbelow(2_147_483_647))

    referer = request.headers.get("referer")
    page_url = next((e["page_location"] for e in events if "page_location" in e), None)
    fbclid = query_param(page_url, "fbclid") or query_param(referer, "fbclid") or None
    if fbclid is not None and not is_cookie_value(fbclid):
        ctx.drop("identity.invalid_fbclid")
        fbclid = None
    fbc = fbc_from(existing_fbc, fbclid, index, now_ms)

    for name, key, value in (("_fbp", FBP_KEY, fbp), ("_fbc", FBC_KEY, fbc)):
        if value is None or not is_cookie_value(value):
            continue
        for event in events:
            event[key] = value
        ctx.cookies.append(make_cookie(name, value, META_MAX_AGE, domain, settings))


def _existing(cookie: str | None, events: list[EventData], key: str) -> str | None:
    """The request's valid cookie, else a valid value a hit carries (the pixel's, sent as an
    event param); only values safe to send back in a Set-Cookie header count."""
    from sgtm_plugins.meta_capi.normalize import is_valid_fbp_fbc

    for candidate in (cookie, *(event.get(key) for event in events)):
        if (
            isinstance(candidate, str)
            and is_valid_fbp_fbc(candidate)
            and is_cookie_value(candidate)
        ):
            return candidate
    return None
