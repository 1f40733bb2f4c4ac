"""The beacon client: retail-media ad events and conversions sent with `navigator.sendBeacon`.

`POST {prefix}/impression|view|click|conversion` with a JSON object body (`text/plain` from
sendBeacon, or `application/json`), answered like Newtail's event API: 202 with no body, or 422
with an Ajv-style list of every problem (`sgtm_plugins.beacon.schema`). Impressions, views and
clicks become `ad_impression` / `ad_view` / `ad_click` events carrying the vendor's signed URL;
conversions become `purchase` events. docs/clients/beacon.md has the event data.

Other bad input gets a plain-text 4xx: 405 (not POST), 415 (another Content-Type), 413 (over
`max_body_bytes`), 400 (not UTF-8, not JSON, nested too deep).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec

from sgtm.kit.cookies import CookieSettings, visitor_id
from sgtm.kit.inbound import decode_json
from sgtm.plugin import (
    BadRequest,
    Client,
    ClientContext,
    ClientResponse,
    EventData,
    HitRequest,
    PersonalData,
    hookimpl,
)

from ..meta_capi.cookies import meta_cookies
from . import probe
from .mapping import ad_event, conversion, without_nulls
from .schema import CONVERSION, ad_event_schema, validate

AD_KINDS = ("impression", "view", "click")
KINDS = (*AD_KINDS, "conversion")
SCHEMAS = {**{kind: ad_event_schema(kind) for kind in AD_KINDS}, "conversion": CONVERSION}
CONTENT_TYPES = frozenset({"text/plain", "application/json", ""})
_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)+")


class BeaconSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    prefix: str = "/beacon"
    # sendBeacon refuses payloads over 64 KiB in browsers; server senders get the same limit.
    max_body_bytes: int = 65536
    # For conversions whose body has no `currency` (Newtail's has none).
    currency: str | None = None
    # Also set Meta's _fbp / _fbc from the server (the visitor's own are always read).
    meta_cookies: bool = False
    cookies: CookieSettings = msgspec.field(default_factory=CookieSettings)

    def __post_init__(self) -> None:
        self.prefix = self.prefix.rstrip("/")
        if not _PREFIX.fullmatch(self.prefix):
            raise ValueError("prefix: must be a path such as /beacon")
        if not 1024 <= self.max_body_bytes <= 1024 * 1024:
            raise ValueError("max_body_bytes: must be between 1024 and 1048576")
        if self.currency is not None and not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise ValueError("currency: must be an ISO 4217 code such as BRL")


class BeaconClient(Client[BeaconSettings]):
    name = "beacon"
    Settings = BeaconSettings
    description = "Retail-media ad events and conversions from navigator.sendBeacon (Newtail-style)"

    def claim(self, request: HitRequest, settings: BeaconSettings) -> bool:
        return _kind(request.path, settings) is not None

    def parse(
        self, request: HitRequest, settings: BeaconSettings, ctx: ClientContext
    ) -> list[EventData]:
        kind = _kind(request.path, settings)
        assert kind is not None  # claimed
        body = _read_body(request, settings)
        if isinstance(body, dict) and body.get("session_id") is None:
            # A page that leaves the session id to sgtm gets the visitor's persistent id, the
            # one the newtail tag gives conversions too (docs/tags/newtail.md).
            found = visitor_id({}, request.cookies)
            if found is not None:
                body["session_id"] = found
        errors = validate(body, SCHEMAS[kind])
        if errors:
            raise BadRequest(
                f"{kind}: {len(errors)} validation error(s)",
                status=422,
                body=msgspec.json.encode(errors),
                headers={"content-type": "application/json"},
            )
        body = without_nulls(body)
        event = (
            conversion(body, settings.currency) if kind == "conversion" else ad_event(kind, body)
        )
        if user_agent := request.headers.get("user-agent"):
            event["user_agent"] = user_agent
        if request.client_ip:
            event["ip_override"] = request.client_ip
        events = [event]
        meta_cookies(request, events, settings.cookies, ctx, set_cookies=settings.meta_cookies)
        return events

    def respond(
        self,
        request: HitRequest,
        events: list[EventData],
        settings: BeaconSettings,
        ctx: ClientContext,
    ) -> ClientResponse:
        return ClientResponse(status=202, cookies=list(ctx.cookies))

    def probe_requests(
        self, event: EventData, base: HitRequest, settings: BeaconSettings
    ) -> list[HitRequest]:
        return probe.probe_requests(event, base, settings.prefix)


def _kind(path: str, settings: BeaconSettings) -> str | None:
    head, _, kind = path.rstrip("/").rpartition("/")
    return kind if head == settings.prefix and kind in KINDS else None


def _read_body(request: HitRequest, settings: BeaconSettings) -> Any:
    if request.method != "POST":
        raise BadRequest("use POST", status=405, headers={"allow": "POST"})
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in CONTENT_TYPES:
        raise BadRequest(
            f"unsupported Content-Type {media_type!r}: send text/plain or application/json",
            status=415,
        )
    if len(request.body) > settings.max_body_bytes:
        raise BadRequest(f"body over {settings.max_body_bytes} bytes", status=413)
    if not request.body.strip():
        raise BadRequest("empty body: send a JSON object")
    return decode_json(request.body, "body")


@hookimpl
def register_client_types(register: Callable[[Any], None]) -> None:
    register(BeaconClient())


@hookimpl
def register_personal_data(register: Callable[[Any], None]) -> None:
    # The visitor's persistent id that retail-media beacons carry (Newtail's `session_id`).
    register(
        PersonalData(
            category="device_id",
            name="session_id",
            value="sgtmaudit-session-7302",
            event_keys=("session_id",),
        )
    )
