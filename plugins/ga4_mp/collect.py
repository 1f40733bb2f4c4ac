"""The `ga4_mp` client: sGTM's Measurement Protocol client, for backends that send GA4 events.

`POST /mp/collect?measurement_id=G-...&api_secret=...` (or `firebase_app_id=`) with the MP JSON
body gives one event per `events[]` entry, keyed as the `ga4` client keys a web hit's event data,
so the same triggers and tags (the `ga4_mp` tag first of all) read it. The `api_secret` must be one
of `settings.api_secrets`: 403 and no event otherwise. The answer is 204 with no body, as Google's.

`POST /debug/mp/collect` runs no tag: it answers 200 with `{"validationMessages": [...]}` in the
shape of Google's validation server, from `validate.py` (the limits the `ga4_mp` tag enforces).

On `/mp/collect`, a request GA4 could not use at all (not JSON, not an object, no client id, no
events or more than 25) is answered 400 with the same validation messages; an event whose name
GA4 refuses (invalid, reserved, missing) is dropped and counted, and the others go on. Param-level
problems are left to the tags (the `ga4_mp` tag drops or cuts what GA4 would). Unlike the `ga4`
client, it sets no `ip_override` or `user_agent` from the request: the sender is a backend, not the
user; the body's `ip_override` is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec

from sgtm.kit import inbound
from sgtm.kit.mapping import number, text
from sgtm.plugin import (
    BadRequest,
    Client,
    ClientContext,
    ClientResponse,
    EventData,
    HitRequest,
    Secret,
    set_path,
)

from . import probe
from .payload import NOT_PARAMS
from .rules import MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST
from .validate import name_messages, unusable, validation_messages

# Google's own examples post with fetch() and no Content-Type: text/plain.
MEDIA_TYPES = frozenset({"application/json", "text/plain", ""})
_JSON = {"content-type": "application/json"}
_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+")
CLIENT_HINTS = {
    "operating_system": "platform",
    "operating_system_version": "platform_version",
    "model": "model",
}


class Ga4MpClientSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Measurement Protocol API secrets this container accepts (one per sending backend, so one
    # can be revoked alone): "${MP_SECRET_CRM}".
    api_secrets: list[Secret]
    path: str = "/mp/collect"
    debug_path: str = "/debug/mp/collect"
    max_body_bytes: int = MAX_BODY_BYTES

    def __post_init__(self) -> None:
        if not self.api_secrets or not all(s.strip() for s in self.api_secrets):
            raise ValueError(
                "api_secrets: at least one, none empty (set them from the environment)"
            )
        for name in ("path", "debug_path"):
            if not _PATH.fullmatch(getattr(self, name)):
                raise ValueError(f"{name}: {getattr(self, name)!r} is not a path")
        if self.path == self.debug_path:
            raise ValueError("debug_path: must differ from path")
        if not 1024 <= self.max_body_bytes <= 1024 * 1024:
            raise ValueError("max_body_bytes: 1024 to 1048576")


class Ga4MpClient(Client[Ga4MpClientSettings]):
    name = "ga4_mp"
    Settings = Ga4MpClientSettings
    description = "GA4 Measurement Protocol (/mp/collect) from backends, with /debug validation"

    def claim(self, request: HitRequest, settings: Ga4MpClientSettings) -> bool:
        return request.path in (settings.path, settings.debug_path)

    def parse(
        self, request: HitRequest, settings: Ga4MpClientSettings, ctx: ClientContext
    ) -> list[EventData]:
        # Method and size, then the secret: a sender without it must not make sgtm decode a body.
        inbound.require_post(request)
        inbound.check_size(request, settings.max_body_bytes)
        known_secret = inbound.any_same(settings.api_secrets, request.query.get("api_secret", ""))
        if request.path == settings.debug_path:
            if known_secret is None:
                return []  # `respond` says the secret is wrong, and validates nothing else
            try:
                inbound.json_body(request, settings.max_body_bytes, MEDIA_TYPES)
            except BadRequest as exc:
                if exc.status != 400:  # JSON it cannot parse is a validation message (respond)
                    raise
            return []  # answered by `respond`; no tag runs
        if known_secret is None:
            raise BadRequest("api_secret is not one of this container's api_secrets", status=403)
        body = inbound.json_body(request, settings.max_body_bytes, MEDIA_TYPES)
        query = request.query
        stream = query.get("measurement_id") or query.get("firebase_app_id")
        if not stream:
            raise BadRequest("measurement_id (or firebase_app_id) is required in the query")
        app = _is_app(query)
        fatal = unusable(body, app)
        if fatal:
            raise BadRequest(
                fatal[0]["description"],
                body=msgspec.json.encode({"validationMessages": fatal}),
                headers=dict(_JSON),
            )
        out = []
        for index, entry in enumerate(body["events"]):
            if not isinstance(entry, dict) or name_messages(index, entry.get("name")):
                ctx.drop("ga4_mp.invalid_event")
                continue
            out.append(event_data(body, entry, stream, app, ctx.now, ctx.drop))
        return out

    def respond(
        self,
        request: HitRequest,
        events: list[EventData],
        settings: Ga4MpClientSettings,
        ctx: ClientContext,
    ) -> ClientResponse:
        if request.path != settings.debug_path:
            return ClientResponse(status=204)
        payload = msgspec.json.encode(
            {"validationMessages": debug_messages(request, settings, ctx.now)}
        )
        return ClientResponse(status=200, headers=dict(_JSON), body=payload)

    def probe_requests(
        self, event: EventData, base: HitRequest, settings: Ga4MpClientSettings
    ) -> list[HitRequest]:
        # For `sgtm audit`: as a backend sends it, with one of the secrets this client accepts.
        return probe.probe_requests(event, base, settings.path, settings.api_secrets[0])


def debug_messages(
    request: HitRequest, settings: Ga4MpClientSettings, now: float
) -> list[dict[str, str]]:
    """What `/debug/mp/collect` answers: the stream id, the secret, then the body's messages."""
    messages = []
    query = request.query
    if not (query.get("measurement_id") or query.get("firebase_app_id")):
        messages.append(_stream_message())
    if inbound.any_same(settings.api_secrets, query.get("api_secret", "")) is None:
        # Only a sender with the secret gets its body validated (and costs a decode).
        return [*messages, _secret_message()]
    try:
        body = msgspec.json.decode(request.body)
    except (msgspec.DecodeError, RecursionError) as exc:
        why = "nested too deep" if isinstance(exc, RecursionError) else str(exc)
        description = f"Unable to parse Measurement Protocol JSON payload. {why[:200]}"
        return [*messages, {"description": description, "validationCode": "VALUE_INVALID"}]
    return messages + validation_messages(body, now, size=len(request.body), app=_is_app(query))


def _is_app(query: dict[str, str]) -> bool:
    return "firebase_app_id" in query and "measurement_id" not in query


def _secret_message() -> dict[str, str]:
    return {
        "fieldPath": "api_secret",
        "description": "api_secret is not one of this container's api_secrets.",
        "validationCode": "VALUE_INVALID",
    }


def _stream_message() -> dict[str, str]:
    return {
        "fieldPath": "measurement_id",
        "description": "Measurement requires a measurement_id or firebase_app_id.",
        "validationCode": "VALUE_REQUIRED",
    }


# -- body -> event data ------------------------------------------------------------------------


def event_data(
    body: dict[str, Any],
    entry: dict[str, Any],
    stream: str,
    app: bool,
    now: float,
    drop: Callable[[str], None] = lambda reason: None,
) -> EventData:
    """One `events[]` entry as the `ga4` client would key it (reference mp-client.md §3).

    A param may not take the place of a request-level key (`client_id`, `user_data`, consent,
    `ip_override`...: the keys the `ga4_mp` tag reads as anything but params) and must be text
    or a number (`items` a list): other params are dropped and counted, as GA4 drops them."""
    event: EventData = {}
    params = entry.get("params")
    for key, value in (params if isinstance(params, dict) else {}).items():
        if key in NOT_PARAMS - _SESSION_PARAMS or not _param_value_ok(key, value):
            drop("ga4_mp.invalid_param")
        elif key == "session_id":
            if (session := text(value)) is not None:
                event["ga_session_id"] = session
        elif key == "session_number":
            if (count := number(value)) is not None:
                event["ga_session_number"] = int(count) if count.is_integer() else count
        elif key == "engagement_time_msec":
            if (msec := number(value)) is not None:
                event["engagement_time_msec"] = int(msec) if msec.is_integer() else msec
        elif value is not None:
            event[key] = value
    event["event_name"] = entry["name"]
    event["x-ga-protocol_version"] = "2"
    event["x-ga-measurement_id"] = stream
    client_id = text(body.get("app_instance_id" if app else "client_id"))
    if client_id is not None:
        event["client_id"] = client_id
    if (user_id := text(body.get("user_id"))) is not None:
        event["user_id"] = user_id
    micros = entry.get("timestamp_micros", body.get("timestamp_micros"))
    if isinstance(micros, int) and not isinstance(micros, bool):
        event["timestamp_micros"] = micros
    _user_properties(event, body.get("user_properties"))
    if isinstance(body.get("user_data"), dict):
        event["user_data"] = body["user_data"]
    _consent(event, body)
    if (ip := text(body.get("ip_override"))) is not None:
        event["ip_override"] = ip
    _location(event, body.get("user_location"))
    _device(event, body.get("device"))
    set_path(event, "x-sst-system_properties.request_start_time_ms", int(now * 1000))
    return event


_SESSION_PARAMS = frozenset({"session_id", "engagement_time_msec"})


def _param_value_ok(key: str, value: Any) -> bool:
    if key == "items":
        return isinstance(value, list)
    return value is None or isinstance(value, str | int | float | bool)


def _user_properties(event: EventData, found: Any) -> None:
    if not isinstance(found, dict):
        return
    values = {
        name: prop["value"]
        for name, prop in found.items()
        if isinstance(prop, dict) and prop.get("value") is not None
    }
    if values:
        event["x-ga-mp2-user_properties"] = values


def _consent(event: EventData, body: dict[str, Any]) -> None:
    consent = body.get("consent")
    state = {}
    if isinstance(consent, dict):
        for name in ("ad_user_data", "ad_personalization"):
            if consent.get(name) in ("GRANTED", "DENIED"):
                state[name] = consent[name] == "GRANTED"
    if state:
        set_path(event, "x-sst-system_properties.consent.consentGrantedState", state)
    if body.get("non_personalized_ads") is True:
        event["x-ga-npa"] = "1"


def _location(event: EventData, found: Any) -> None:
    if not isinstance(found, dict):
        return
    location = {}
    for source, target in (("country_id", "country"), ("region_id", "region"), ("city", "city")):
        if (value := text(found.get(source))) is not None:
            location[target] = value
    if location:
        event["event_location"] = location


def _device(event: EventData, found: Any) -> None:
    if not isinstance(found, dict):
        return
    for key in ("language", "screen_resolution"):
        if (value := text(found.get(key))) is not None:
            event[key] = value
    hints: dict[str, Any] = {}
    category = text(found.get("category"))
    if category in ("mobile", "desktop"):
        hints["mobile"] = category == "mobile"
    for source, target in CLIENT_HINTS.items():
        if (value := text(found.get(source))) is not None:
            hints[target] = value
    browser, version = text(found.get("browser")), text(found.get("browser_version"))
    if browser and version:
        hints["full_version_list"] = [{"brand": browser, "version": version}]
    if hints:
        event["client_hints"] = hints


__all__ = ["MAX_EVENTS_PER_REQUEST", "Ga4MpClient", "Ga4MpClientSettings", "event_data"]
