"""The `datalayer` client: a page's dataLayer, forwarded by the first-party sgtm.js, as events.

- `GET {script_path}` (default `/sgtm.js`) serves sgtm.js (`sgtm_plugins.datalayer.script`).
- `POST {path}` (default `/data`): a JSON object or an array of them, `text/plain` (sendBeacon)
  or `application/json`; answered 200 with a small JSON body.
- Stape's Data Tag protocol on the same path (`GET ?v=2&event=...&dtdc=...`, `POST ?v=2&...`),
  so a web container's Data Tags only change their server URL; a GET is answered with a 1x1 GIF
  as Stape's Data Client does.

How a request is read: `decode`; how each object becomes event data: `mapping`; the `_dcid`
client id cookie: `client_id`. docs/clients/datalayer.md has the whole contract.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

import msgspec

from sgtm.kit.cookies import CookieSettings
from sgtm.kit.inbound import check_size
from sgtm.plugin import (
    BadRequest,
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
from . import client_id, decode, probe, script
from .mapping import EventError, to_event

# sGTM's setPixelResponse(): a transparent 1x1 GIF that is never cached.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
MAX_EVENTS = 500  # the core's own cap per request
_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+")
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}")


class DataLayerSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    path: str = "/data"
    # null: do not serve sgtm.js (host it elsewhere and set its data-endpoint).
    script_path: str | None = "/sgtm.js"
    script_max_age: int = 3600
    # Events beyond this many in one request are dropped (counted as datalayer.too_many_events).
    max_events: int = 100
    # sgtm.js sends with fetch keepalive / sendBeacon, which browsers cap at 64 KiB: a larger body
    # is no browser's, and decoding 1 MiB of JSON would cost over a hundred hits. 413 above it.
    max_body_bytes: int = 65536
    # Only these event names become events (null: all); others are dropped and counted.
    events: list[str] | None = None
    # The first-party client id cookie (Stape's Data Client name); null: no cookie.
    client_id_cookie: str | None = "_dcid"
    # Also set Meta's _fbp / _fbc from the server (the visitor's own are always read into
    # x-fb-ck-fbp / x-fb-ck-fbc).
    meta_cookies: bool = False
    cookies: CookieSettings = msgspec.field(default_factory=CookieSettings)

    def __post_init__(self) -> None:
        if not _PATH.fullmatch(self.path):
            raise ValueError("path: must be a path such as /data")
        if self.script_path is not None:
            if not _PATH.fullmatch(self.script_path):
                raise ValueError("script_path: must be a path such as /sgtm.js, or null")
            if self.script_path == self.path:
                raise ValueError("script_path: must differ from path")
        if not 0 <= self.script_max_age <= 31_536_000:
            raise ValueError("script_max_age: must be between 0 and 31536000 seconds")
        if not 1 <= self.max_events <= MAX_EVENTS:
            raise ValueError(f"max_events: must be between 1 and {MAX_EVENTS}")
        if not 1024 <= self.max_body_bytes <= 1024 * 1024:
            raise ValueError("max_body_bytes: must be between 1024 and 1048576")
        if self.events is not None and (not self.events or not all(n.strip() for n in self.events)):
            raise ValueError("events: list event names, or leave it out to accept every event")
        if self.client_id_cookie is not None and not _COOKIE_NAME.fullmatch(self.client_id_cookie):
            raise ValueError("client_id_cookie: not a valid cookie name")


class DataLayerClient(Client[DataLayerSettings]):
    name = "datalayer"
    Settings = DataLayerSettings
    description = "dataLayer events from the first-party sgtm.js (and Stape Data Tag hits)"

    def claim(self, request: HitRequest, settings: DataLayerSettings) -> bool:
        if request.path == settings.path:
            return request.method != "OPTIONS"  # preflights are the core's
        return request.path == settings.script_path and request.method in ("GET", "HEAD")

    def parse(
        self, request: HitRequest, settings: DataLayerSettings, ctx: ClientContext
    ) -> list[EventData]:
        if request.path != settings.path:
            return []  # sgtm.js: `respond` serves it
        if request.method not in ("GET", "POST"):
            raise BadRequest("use POST (or GET)", status=405, headers={"allow": "GET, POST"})
        check_size(request, settings.max_body_bytes)
        data_tag = decode.is_data_tag(request)
        raw = decode.entries(request)
        if len(raw) > settings.max_events:
            ctx.drop("datalayer.too_many_events", len(raw) - settings.max_events)
            raw = raw[: settings.max_events]
        events: list[EventData] = []
        problems: list[str] = []
        for index, entry in enumerate(raw):
            where = f"event {index}: " if len(raw) > 1 else ""
            if not isinstance(entry, dict):
                ctx.drop("datalayer.invalid_event")
                problems.append(f"{where}not a JSON object")
                continue
            try:
                event = to_event(entry, data_tag=data_tag, drop=ctx.drop)
            except EventError as exc:
                ctx.drop("datalayer.invalid_event")
                problems.append(f"{where}{exc}")
                continue
            if settings.events is not None and event["event_name"] not in settings.events:
                ctx.drop("datalayer.event_not_allowed")
                continue
            events.append(event)
        if problems and not events:
            raise BadRequest("; ".join(problems[:3]))
        if events:
            _request_fields(request, events, ctx)
            client_id.assign(request, events, settings.client_id_cookie, settings.cookies, ctx)
            meta_cookies(request, events, settings.cookies, ctx, set_cookies=settings.meta_cookies)
        return events

    def respond(
        self,
        request: HitRequest,
        events: list[EventData],
        settings: DataLayerSettings,
        ctx: ClientContext,
    ) -> ClientResponse:
        if request.path != settings.path:
            return script.response(request, settings.script_max_age)
        headers = {"cache-control": "no-store"}
        if request.method == "GET":
            headers["content-type"] = "image/gif"
            return ClientResponse(status=200, headers=headers, body=PIXEL, cookies=ctx.cookies)
        answer: dict[str, Any] = {"timestamp": int(ctx.now), "events": len(events)}
        if ctx.dropped:
            answer["dropped"] = dict(ctx.dropped)
        headers["content-type"] = "application/json"
        body = msgspec.json.encode(answer)
        return ClientResponse(status=200, headers=headers, body=body, cookies=ctx.cookies)

    def probe_requests(
        self, event: EventData, base: HitRequest, settings: DataLayerSettings
    ) -> list[HitRequest]:
        return probe.probe_requests(event, base, settings.path)


def _request_fields(request: HitRequest, events: list[EventData], ctx: ClientContext) -> None:
    """What the request itself says, for events that do not say it: the browser's User-Agent,
    the client IP (after the container's privacy rules), the first Accept-Language tag."""
    user_agent = request.headers.get("user-agent")
    language = request.headers.get("accept-language", "").split(",")[0].split(";")[0]
    language = language.strip().lower()
    start_ms = int(ctx.now * 1000)
    for event in events:
        if user_agent and "user_agent" not in event:
            event["user_agent"] = user_agent
        if request.client_ip and "ip_override" not in event:
            event["ip_override"] = request.client_ip
        if language and language != "*" and len(language) <= 35 and "language" not in event:
            event["language"] = language
        set_path(event, "x-sst-system_properties.request_start_time_ms", start_ms)


@hookimpl
def register_client_types(register: Callable[[Any], None]) -> None:
    register(DataLayerClient())


@hookimpl
def register_personal_data(register: Callable[[Any], None]) -> None:
    # The client id cookie, in Stape's format (`client_id.new_id`).
    register(
        PersonalData(
            category="device_id",
            name="_dcid cookie",
            value="dcid.1.1700000000000.730273027",
            cookie="_dcid",
        )
    )
