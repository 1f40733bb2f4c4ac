"""GA4's `/g/collect` protocol, both ways: the `ga4` client claims gtag.js / GTM web hits and
turns each event into event data; the `ga4` tag (`tag.py`) sends event data to Google Analytics
as such hits.

The client's mapping rules, choices and limits are documented in `sgtm_plugins.ga4.parse`; the
tag runs the same table backwards (`encode.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import unquote_plus

import msgspec

from sgtm.kit.cookies import CookieSettings
from sgtm.kit.inbound import check_size
from sgtm.plugin import (
    Client,
    ClientContext,
    ClientResponse,
    EventData,
    HitRequest,
    PersonalData,
    hookimpl,
    set_path,
)

from ..meta_capi.cookies import meta_cookies
from .fpid import server_client_id
from .parse import header_client_hints, parse_hits
from .probe import probe_request
from .tag import Ga4Tag

# How much of a POST body `claim` reads to find `v`/`tid` when the URL lacks them.
CLAIM_PEEK_BYTES = 8192


class GA4Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    path: str = "/g/collect"
    max_events: int = 100
    # gtag sends batches with sendBeacon, which browsers refuse over 64 KiB: a larger body is no
    # browser's, and parsing 1 MiB would cost a hundred hits. Larger bodies get 413.
    max_body_bytes: int = 65536
    # Real sGTM event data shows only page_location (the Page Hostname / Page Path variables
    # derive from it); True also writes page_hostname / page_path into the event.
    derive_page_fields: bool = False
    # Copy unknown params as x-ga-mp2-<name> / x-ga-system_properties.<name>, as real sGTM
    # event data shows (see parse.py); False drops them.
    passthrough_unknown: bool = True
    # `server`: the client id comes from an HttpOnly FPID cookie this client sets, and the
    # hit's `cid` moves to x-ga-js_client_id (docs/identity.md). `js` keeps gtag's `cid`.
    client_id: Literal["js", "server"] = "js"
    # Also set Meta's _fbp / _fbc from the server (the visitor's own are always read into
    # x-fb-ck-fbp / x-fb-ck-fbc).
    meta_cookies: bool = False
    cookies: CookieSettings = msgspec.field(default_factory=CookieSettings)

    def __post_init__(self) -> None:
        if not 1024 <= self.max_body_bytes <= 1024 * 1024:
            raise ValueError("max_body_bytes: must be between 1024 and 1048576")


class GA4Client(Client[GA4Settings]):
    name = "ga4"
    Settings = GA4Settings
    description = "Google Analytics 4 web hits (gtag.js / GTM web) sent to /g/collect"

    def claim(self, request: HitRequest, settings: GA4Settings) -> bool:
        if request.method not in ("GET", "POST") or request.path != settings.path:
            return False
        found = _scan_v_tid(request.query_string)
        if request.method == "POST" and not _is_ga4(found) and request.body:
            # Batched hits may carry v/tid only on their lines; the first line decides.
            head = request.body[:CLAIM_PEEK_BYTES].decode("utf-8", errors="replace")
            first_line = next((line for line in head.split("\n") if line.strip()), "")
            found = {**found, **_scan_v_tid(first_line.strip("\r"))}
        return _is_ga4(found)

    def parse(
        self, request: HitRequest, settings: GA4Settings, ctx: ClientContext
    ) -> list[EventData]:
        check_size(request, settings.max_body_bytes)
        events = parse_hits(
            request.query_string,
            request.body,
            max_events=settings.max_events,
            drop=ctx.drop,
            derive_page_fields=settings.derive_page_fields,
            passthrough_unknown=settings.passthrough_unknown,
        )
        user_agent = request.headers.get("user-agent")
        hints = header_client_hints(request.headers)
        start_ms = int(ctx.now * 1000)
        kept = []
        for event in events:
            if not event.get("event_name"):
                ctx.drop("ga4.missing_event_name", 1)
                continue
            if user_agent is not None:
                event["user_agent"] = user_agent
            if "ip_override" not in event and request.client_ip:
                event["ip_override"] = request.client_ip
            if hints:
                _merge_header_hints(event, hints)
            set_path(event, "x-sst-system_properties.request_start_time_ms", start_ms)
            kept.append(event)
        if settings.client_id == "server":
            server_client_id(request, kept, settings.cookies, ctx)
        meta_cookies(request, kept, settings.cookies, ctx, set_cookies=settings.meta_cookies)
        return kept

    def respond(
        self,
        request: HitRequest,
        events: list[EventData],
        settings: GA4Settings,
        ctx: ClientContext,
    ) -> ClientResponse:
        # sGTM's GA4 client answers 200 with an empty body; CORS comes from the core.
        return ClientResponse(status=200, cookies=list(ctx.cookies))

    def probe_requests(
        self, event: EventData, base: HitRequest, settings: GA4Settings
    ) -> list[HitRequest]:
        return [probe_request(event, base, settings.path)]


def _is_ga4(params: dict[str, str]) -> bool:
    return params.get("v") == "2" and bool(params.get("tid"))


def _scan_v_tid(query: str) -> dict[str, str]:
    """`v` and `tid` as parse_query would decode them (first occurrence wins), without decoding
    the whole query: claim runs for every request the container gets. Found with `find`, not by
    splitting the query into its thirty-odd pairs."""
    found: dict[str, str] = {}
    for name in ("v", "tid"):
        value = _first_raw_value(query, name)
        if value is not None:
            found[name] = unquote_plus(value) if "%" in value or "+" in value else value
    return found


def _first_raw_value(query: str, name: str) -> str | None:
    """The undecoded value of the first `name=` pair of `query`, or None."""
    key = name + "="
    if query.startswith(key):
        start = len(key)
    else:
        at = query.find("&" + key)
        if at < 0:
            return None
        start = at + 1 + len(key)
    end = query.find("&", start)
    return query[start:] if end < 0 else query[start:end]


def _merge_header_hints(event: EventData, hints: dict[str, Any]) -> None:
    from_hit = event.get("client_hints")
    # Hit params describe the browser more precisely than the headers, so they win.
    merged = dict(hints)
    if "brands" in hints:  # events must not share the brands list
        merged["brands"] = [dict(brand) for brand in hints["brands"]]
    if isinstance(from_hit, dict):
        merged.update(from_hit)
    event["client_hints"] = merged


@hookimpl
def register_client_types(register: Callable[[Any], None]) -> None:
    register(GA4Client())


@hookimpl
def register_tag_types(register: Callable[[Any], None]) -> None:
    register(Ga4Tag())


@hookimpl
def register_personal_data(register: Callable[[Any], None]) -> None:
    # Google Ads' click id, in the landing page URL.
    register(
        PersonalData(
            category="click_id", name="gclid", value="SgtmAuditGclid7302", url_param="gclid"
        )
    )
    # The server-managed client id (`client_id: server`): event data gets its middle part.
    register(
        PersonalData(
            category="device_id",
            name="FPID cookie",
            value="FPID2.2.SgtmAuditFpid7302.1700000000",
            cookie="FPID",
            marks=("SgtmAuditFpid7302",),
        )
    )
