"""The `webhook` client: signed JSON POSTs from CRMs, forms and other servers become events.

`POST {path}` with a JSON object (one event) or an array of objects (one event each). The sender
proves itself with an HMAC signature of the raw body (`signature`), an API key (`api_keys`), or
both; a request that fails is answered 401 and nothing of it is kept. `map` builds event data from
dot paths into the JSON; `id_field` gives each event the sender's id as `event_id`, and a resend
of that id is acknowledged without running the tags again. Each sender (API key, else peer
address) has a rate (`rate_limit`, 429 with Retry-After over it). The answer is
`202 {"status": "accepted"}` once the deliveries the events produced are stored.

Refusals are JSON too, `{"status": "rejected", "error": "..."}`: 401 (signature, timestamp, key),
405 (not POST), 413 (body or event count over the limit), 415 (not JSON), 400 (not UTF-8, not
JSON, nested too deep, not an object or array), 422 (an element that is not an object, without
an event name, or with an id that is not a single value). docs/clients/webhook.md has it all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import msgspec

from sgtm.kit import inbound
from sgtm.kit.mapping import text
from sgtm.plugin import (
    BadRequest,
    Client,
    ClientContext,
    ClientResponse,
    EventData,
    HitRequest,
    RateLimit,
    get_path,
    hookimpl,
    set_path,
)

from . import probe
from .settings import MAX_EVENT_NAME_CHARS, Signature, WebhookSettings

ACCEPTED = b'{"status":"accepted"}'
_JSON = {"content-type": "application/json"}
_MISSING = object()


class WebhookClient(Client[WebhookSettings]):
    name = "webhook"
    Settings = WebhookSettings
    description = "Signed JSON webhooks from servers (CRMs, forms): HMAC and/or API keys"

    def claim(self, request: HitRequest, settings: WebhookSettings) -> bool:
        return request.path == settings.path

    def rate_limit(
        self, request: HitRequest, settings: WebhookSettings
    ) -> tuple[str, RateLimit] | None:
        if settings.rate_limit is None:
            return None
        key = _valid_key(request, settings)
        if key is not None:
            source = "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
        else:
            source = f"peer:{request.client_ip or '-'}"
        return source, inbound.rate(settings.rate_limit)

    def parse(
        self, request: HitRequest, settings: WebhookSettings, ctx: ClientContext
    ) -> list[EventData]:
        try:
            inbound.require_post(request)
            inbound.check_size(request, settings.max_body_bytes)
            _authenticate(request, settings, ctx.now)
            body = inbound.json_body(request, settings.max_body_bytes)
            return events(body, settings)
        except BadRequest as exc:
            raise rejected(exc) from None

    def respond(
        self,
        request: HitRequest,
        events: list[EventData],
        settings: WebhookSettings,
        ctx: ClientContext,
    ) -> ClientResponse:
        return ClientResponse(status=202, headers=dict(_JSON), body=ACCEPTED)

    def dedupe_key(self, event: EventData, settings: WebhookSettings) -> tuple[str, float] | None:
        if settings.id_field is None or "event_id" not in event:
            return None
        return str(event["event_id"]), float(settings.id_ttl)

    def probe_requests(
        self, event: EventData, base: HitRequest, settings: WebhookSettings
    ) -> list[HitRequest]:
        return probe.probe_requests(event, base, settings)


def rejected(exc: BadRequest) -> BadRequest:
    """The same refusal with a JSON body, as server senders log what they get back."""
    body = msgspec.json.encode({"status": "rejected", "error": str(exc)})
    return BadRequest(str(exc), exc.status, body=body, headers={**exc.headers, **_JSON})


# -- authentication ----------------------------------------------------------------------------


def _authenticate(request: HitRequest, settings: WebhookSettings, now: float) -> None:
    if settings.signature is not None:
        _check_signature(request, settings.signature, now)
    if settings.api_keys:
        if request.headers.get(settings.api_key_header.lower()) is None:
            raise BadRequest(f"missing API key ({settings.api_key_header})", status=401)
        if _valid_key(request, settings) is None:
            raise BadRequest("invalid API key", status=401)


def _valid_key(request: HitRequest, settings: WebhookSettings) -> str | None:
    given = request.headers.get(settings.api_key_header.lower())
    if given is None or not settings.api_keys:
        return None
    return inbound.any_same(settings.api_keys, given.strip())


def _check_signature(request: HitRequest, signature: Signature, now: float) -> None:
    given = request.headers.get(signature.header.lower())
    if given is None:
        raise BadRequest(f"missing signature ({signature.header})", status=401)
    timestamp = ""
    if signature.timestamp_header is not None:
        timestamp = request.headers.get(signature.timestamp_header.lower(), "").strip()
        sent = _seconds(timestamp)
        if sent is None:
            raise BadRequest(
                f"missing or malformed timestamp ({signature.timestamp_header})", status=401
            )
        if abs(now - sent) > signature.tolerance:
            raise BadRequest("timestamp outside the tolerance: the request is too old", status=401)
    if not inbound.same(signature.value(timestamp, request.body), given.strip()):
        raise BadRequest("invalid signature", status=401)


def _seconds(value: str) -> float | None:
    """Unix seconds from a timestamp header; 13 digits and more are read as milliseconds."""
    if not value.isascii() or not value.isdigit() or len(value) > 16:
        return None
    number = int(value)
    return number / 1000 if len(value) >= 13 else float(number)


# -- events ------------------------------------------------------------------------------------


def events(body: Any, settings: WebhookSettings) -> list[EventData]:
    if isinstance(body, dict):
        elements = [body]
    elif isinstance(body, list):
        elements = body
    else:
        raise BadRequest("body must be a JSON object or an array of objects")
    if len(elements) > settings.max_events:
        raise BadRequest(
            f"{len(elements)} events in one request; send at most {settings.max_events}",
            status=413,
        )
    out = []
    for index, element in enumerate(elements):
        where = f"element {index}: " if isinstance(body, list) else ""
        if not isinstance(element, dict):
            raise BadRequest(f"{where}not a JSON object", status=422)
        out.append(event(element, settings, where))
    return out


def event(element: dict[str, Any], settings: WebhookSettings, where: str = "") -> EventData:
    data: EventData
    if settings.map:
        data = {}
        for target, source in settings.map.items():
            value = get_path(element, source, _MISSING)
            if value is not _MISSING and value is not None:
                set_path(data, target, value)
    else:
        data = element
    data["event_name"] = event_name(element, settings, where)
    if settings.id_field is not None:
        raw = get_path(element, settings.id_field)
        if raw is not None:
            own = text(raw)
            if own is None or len(own) > 256:
                raise BadRequest(
                    f"{where}{settings.id_field} is not an id (a string or number of at most "
                    "256 characters)",
                    status=422,
                )
            data["event_id"] = own
    return data


def event_name(element: dict[str, Any], settings: WebhookSettings, where: str) -> str:
    if settings.event_name is not None:
        return settings.event_name
    field = settings.event_name_field
    assert field is not None  # the settings require one of the two
    name = get_path(element, field)
    if not isinstance(name, str) or not 0 < len(name.strip()) <= MAX_EVENT_NAME_CHARS:
        raise BadRequest(
            f"{where}no event name at {field!r} (a string of 1 to {MAX_EVENT_NAME_CHARS} "
            "characters)",
            status=422,
        )
    return name.strip()


@hookimpl
def register_client_types(register: Callable[[Any], None]) -> None:
    register(WebhookClient())
