"""Event data -> a `/mp/collect` request for the `ga4_mp` client, for `sgtm audit`'s probes.

`collect.event_data` read backwards, as a backend following Google's Measurement Protocol docs
sends it: the client and user ids, `ip_override` and consent at the top, `user_data` in Google's
shape (e-mail, phone, names and street hashed under Google's rules, the rest of the address
normalized: `payload.user_data`, what the `ga4_mp` tag itself sends), and every other text or
number of the event as a param of its one event. The protocol has no user agent or cookies: a
backend is not the visitor's browser.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import msgspec

from sgtm.kit.mapping import text
from sgtm.plugin import EventData, HitRequest, consent_state

from .payload import NOT_PARAMS, user_data

MEASUREMENT_ID = "G-SGTMAUDIT1"
CONSENT_TYPES = ("ad_user_data", "ad_personalization")


def probe_requests(
    event: EventData, base: HitRequest, path: str, api_secret: str
) -> list[HitRequest]:
    client_id = text(event.get("client_id"))
    if client_id is None:
        return []  # GA4 cannot take an event without one
    params = {
        key: value
        for key, value in event.items()
        if key not in NOT_PARAMS
        and not key.startswith("x-")
        and (isinstance(value, str | int | float) or (key == "items" and isinstance(value, list)))
    }
    body: dict[str, Any] = {
        "client_id": client_id,
        "events": [{"name": event.get("event_name"), "params": params}],
    }
    if (user_id := text(event.get("user_id"))) is not None:
        body["user_id"] = user_id
    if (ip := text(event.get("ip_override"))) is not None:
        body["ip_override"] = ip
    if found := user_data(event, None):
        body["user_data"] = found
    states = consent_state(event)
    body["consent"] = {
        name: "GRANTED" if states[name] else "DENIED" for name in CONSENT_TYPES if name in states
    }
    query = urlencode({"measurement_id": MEASUREMENT_ID, "api_secret": api_secret})
    return [
        replace(
            base,
            method="POST",
            path=path,
            query_string=query,
            headers={"host": base.host or "", "content-type": "application/json"},
            body=msgspec.json.encode(body),
        )
    ]
