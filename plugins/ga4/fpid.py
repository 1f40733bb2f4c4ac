"""Server-managed client id: the FPID and FPLC cookies of sGTM's GA4 client (`client_id: server`).

sgtm-model.md §8 and real cookies: `FPID=FPID2.<n>.<url-encoded base64>.<unix seconds>`, where
`<n>` is the number of labels of the cookie domain (`FPID2.2` on `example.com`, `FPID2.3` on
`cppem.com.br`, like `_ga`'s `GA1.<n>`), HttpOnly, two years; event data `client_id` is
`<base64>.<unix seconds>` and the hit's own `cid` moves to `x-ga-js_client_id`. An FPID written
by Google's sGTM is read the same way, so a site moving over keeps its client ids.

FPLC (not HttpOnly, 20 hours) is what gtag's linker decorates cross-domain links with. Google
derives it from the FPID with a scheme it does not publish; here it is a SHA-256 of the FPID,
so it never reveals the HttpOnly id to scripts. It cannot be turned back into an FPID either, so
a hit arriving with `_fplc` on another registrable domain starts its own FPID there
(docs/identity.md says so).
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

from sgtm.kit.cookies import CookieSettings, cookie_domain, make_cookie, storage_granted
from sgtm.plugin import ClientContext, EventData, HitRequest

FPID_NAME = "FPID"
FPLC_NAME = "FPLC"
FPID_MAX_AGE = 2 * 365 * 24 * 3600
FPLC_MAX_AGE = 20 * 3600
_FPID = re.compile(r"FPID2\.([0-9]{1,3})\.([A-Za-z0-9%]{1,256})\.([0-9]{1,12})")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{1,200}={0,2}")


@dataclass(frozen=True, slots=True)
class Fpid:
    cookie: str  # the cookie value, as stored
    client_id: str  # what event data carries


def parse_fpid(value: str | None) -> Fpid | None:
    if not value or not (match := _FPID.fullmatch(value)):
        return None
    payload = unquote(match[2])
    if not _BASE64.fullmatch(payload):
        return None
    return Fpid(cookie=value, client_id=f"{payload}.{match[3]}")


def new_fpid(domain: str | None, now: float, rng: random.Random) -> Fpid:
    payload = base64.b64encode(rng.randbytes(32)).decode("ascii")
    labels = len(domain.split(".")) if domain else 1
    seconds = int(now)
    return Fpid(
        cookie=f"FPID2.{labels}.{quote(payload, safe='')}.{seconds}",
        client_id=f"{payload}.{seconds}",
    )


def fplc_for(fpid: Fpid) -> str:
    digest = hashlib.sha256(b"sgtm FPLC\0" + fpid.cookie.encode("ascii")).digest()
    return quote(base64.b64encode(digest).decode("ascii"), safe="")


def server_client_id(
    request: HitRequest, events: list[EventData], settings: CookieSettings, ctx: ClientContext
) -> None:
    """Give every event the FPID client id and queue the FPID (and a missing FPLC) cookie.

    With `analytics_storage` denied by any event nothing is read or set: the events keep the
    hit's own `cid`.
    """
    if not storage_granted(events, "analytics_storage", ctx):
        return
    domain = cookie_domain(request.host, settings)
    fpid = parse_fpid(request.cookies.get(FPID_NAME))
    if fpid is None:
        if FPID_NAME in request.cookies:
            ctx.drop("ga4.invalid_fpid")
        fpid = new_fpid(domain, ctx.now, ctx.random)
    for event in events:
        if "client_id" in event:
            event["x-ga-js_client_id"] = event["client_id"]
        event["client_id"] = fpid.client_id
    # Sent again on every hit: the two years run from the last visit, as with sGTM.
    ctx.cookies.append(
        make_cookie(FPID_NAME, fpid.cookie, FPID_MAX_AGE, domain, settings, http_only=True)
    )
    if FPLC_NAME not in request.cookies:
        ctx.cookies.append(make_cookie(FPLC_NAME, fplc_for(fpid), FPLC_MAX_AGE, domain, settings))
