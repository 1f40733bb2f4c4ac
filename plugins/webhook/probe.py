"""Event data -> the signed JSON POST the `webhook` client takes, for `sgtm audit`'s probes.

The client read backwards: with a `map`, each mapped event key goes to its source path in the
JSON; without one, the JSON object is the event data (minus the core's `x-sst-*` properties,
which no sender writes). The event name goes to `event_name_field` and the event id to
`id_field` when the settings read them. The request is authenticated as a sender would be: the
first API key, and the HMAC signature (with the probe's arrival time as timestamp). A sender is
a server: of what a browser adds (cookies, user agent), the request keeps only the host.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgspec

from sgtm.plugin import EventData, HitRequest, get_path, set_path

from .settings import WebhookSettings

START_MS = "x-sst-system_properties.request_start_time_ms"


def probe_requests(
    event: EventData, base: HitRequest, settings: WebhookSettings
) -> list[HitRequest]:
    element = source(event, settings)
    body = msgspec.json.encode(element)
    headers = {"host": base.host or "", "content-type": "application/json"}
    if settings.api_keys:
        headers[settings.api_key_header.lower()] = settings.api_keys[0]
    signature = settings.signature
    if signature is not None:
        timestamp = ""
        if signature.timestamp_header is not None:
            start_ms = get_path(event, START_MS)
            if not isinstance(start_ms, int):
                return []  # a signed timestamp needs the probe's time
            timestamp = str(start_ms // 1000)
            headers[signature.timestamp_header.lower()] = timestamp
        headers[signature.header.lower()] = signature.value(timestamp, body)
    return [
        replace(
            base, method="POST", path=settings.path, query_string="", headers=headers, body=body
        )
    ]


def source(event: EventData, settings: WebhookSettings) -> dict[str, Any]:
    """The JSON object that `events()` turns into `event` under these settings."""
    element: dict[str, Any] = {}
    if settings.map:
        for target, path in settings.map.items():
            value = get_path(event, target)
            if value is not None:
                set_path(element, path, value)
    else:
        element = {k: v for k, v in event.items() if not k.startswith("x-sst-")}
    if settings.event_name_field is not None:
        set_path(element, settings.event_name_field, event.get("event_name"))
    if settings.id_field is not None and event.get("event_id") is not None:
        set_path(element, settings.id_field, event["event_id"])
    return element
