"""The first-party client id cookie of the `datalayer` client (Stape Data Client's `_dcid`).

With `analytics_storage` granted by every event of the request (or by the container default when
the hit says nothing), the client id is, in this order: the cookie the browser sent, an id the
hit carries (`_dcid`, `data_client_id`: the Data Tag's names), the page's temporary id
(`_dcid_temp`: sgtm.js sends one per page view, so the hits a page sends before the cookie
exists share it), else a new `dcid.1.<ms>.<9 random digits>` (Stape's format, so ids survive a
migration). The cookie is set again on every hit: 2 years, HttpOnly (sgtm.js never reads it),
Domain and SameSite from the client's `cookies` settings.

With `analytics_storage` denied, no cookie is read or set: the id is the page's temporary id,
else a new one for this request only. With `client_id_cookie: null` there is no cookie at all and
the id is the carried or temporary one, if any.

An event's own `client_id` always wins. The carried ids never stay in event data.
"""

from __future__ import annotations

import random

from sgtm.kit.cookies import (
    CookieSettings,
    cookie_domain,
    is_cookie_value,
    make_cookie,
    storage_granted,
)
from sgtm.plugin import ClientContext, EventData, HitRequest

MAX_AGE = 2 * 365 * 24 * 3600
CARRIED = ("_dcid", "data_client_id")
TEMPORARY = "_dcid_temp"
MAX_CHARS = 256


def new_id(now: float, rng: random.Random) -> str:
    return f"dcid.1.{int(now * 1000)}.{rng.randrange(100_000_000, 1_000_000_000)}"


def assign(
    request: HitRequest,
    events: list[EventData],
    cookie_name: str | None,
    settings: CookieSettings,
    ctx: ClientContext,
) -> None:
    carried = _first(events, CARRIED)
    temporary = _first(events, (TEMPORARY,))
    client_id: str | None
    if not cookie_name:
        client_id = carried or temporary
    elif storage_granted(events, "analytics_storage", ctx):
        cookie = request.cookies.get(cookie_name)
        client_id = (
            (cookie if _valid(cookie) else None)
            or carried
            or temporary
            or new_id(ctx.now, ctx.random)
        )
        domain = cookie_domain(request.host, settings)
        ctx.cookies.append(
            make_cookie(cookie_name, client_id, MAX_AGE, domain, settings, http_only=True)
        )
    else:
        client_id = temporary or new_id(ctx.now, ctx.random)
    if client_id:
        for event in events:
            event.setdefault("client_id", client_id)


def _first(events: list[EventData], keys: tuple[str, ...]) -> str | None:
    """The first valid value of `keys` in the events, each key removed from every event."""
    found = None
    for event in events:
        for key in keys:
            value = event.pop(key, None)
            if found is None and _valid(value):
                found = value
    return found


def _valid(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_CHARS and is_cookie_value(value)
