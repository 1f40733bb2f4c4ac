"""Meta's first-party cookies `_fbp` / `_fbc` for the browser-facing clients (docs/identity.md):
the visitor's own read into event data on every request, and, when a client is told to, set by
the server with the capi-param-builder rules ported in `.normalize`."""

from __future__ import annotations

from sgtm.kit.cookies import (
    CookieSettings,
    cookie_domain,
    is_cookie_value,
    make_cookie,
    query_param,
    storage_granted,
)
from sgtm.plugin import ClientContext, EventData, HitRequest

from .normalize import fbc_from, fbp_from, is_valid_fbp_fbc, subdomain_index

META_MAX_AGE = 90 * 24 * 3600  # Meta's first-party cookies: 90 days
FBP_KEY = "x-fb-ck-fbp"  # the event data keys Meta's own sGTM tag reads
FBC_KEY = "x-fb-ck-fbc"


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
    existing_fbp = _existing(request.cookies.get("_fbp"), events, FBP_KEY)
    existing_fbc = _existing(request.cookies.get("_fbc"), events, FBC_KEY)
    if not set_cookies and existing_fbp is None and existing_fbc is None:
        return  # nothing to read into the events: the consent check (per event) is not needed
    if not storage_granted(events, "ad_storage", ctx):
        return
    if not set_cookies:
        for key, value in ((FBP_KEY, existing_fbp), (FBC_KEY, existing_fbc)):
            if value is not None:
                for event in events:
                    event[key] = value
        return

    domain = cookie_domain(request.host, settings)
    index = subdomain_index(domain or request.host)
    now_ms = int(ctx.now * 1000)
    # Meta's builder draws floor(Math.random() * 2147483647): the same range, from ctx.random (a
    # CSPRNG when serving).
    fbp = fbp_from(existing_fbp, index, now_ms, ctx.random.randrange(2_147_483_647))

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
    if _usable(cookie):
        return cookie
    for event in events:  # most carry none: one lookup each
        candidate = event.get(key)
        if candidate is not None and _usable(candidate):
            return candidate  # type: ignore[no-any-return]
    return None


def _usable(candidate: object) -> bool:
    return isinstance(candidate, str) and is_valid_fbp_fbc(candidate) and is_cookie_value(candidate)
