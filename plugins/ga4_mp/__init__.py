"""`ga4_mp`: events to a GA4 web data stream through the Measurement Protocol.

One sGTM event becomes one MP event (`payload.py`: client and user ids, params and items, the
session and engagement time Realtime needs, user properties, consent, user_data hashed per
Google's rules), checked against every documented limit (`rules.py`) because GA4's endpoint
answers 2xx even to what it drops. Events of one client with the same request-level fields share
a lane, and under a backlog the engine merges up to 25 of them into one
`POST {endpoint}/mp/collect?measurement_id=...&api_secret=...`. docs/tags/ga4_mp.md is the
user's guide.

The package also holds the `ga4_mp` client (`collect.py`), which receives the same protocol from
backends and answers `/debug/mp/collect` from the same rules (`validate.py`); its guide is
docs/clients/ga4_mp.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import msgspec

from sgtm.kit.http import batch_request
from sgtm.kit.mapping import text
from sgtm.plugin import (
    Batching,
    BuildContext,
    EventData,
    InvalidEvent,
    Outbound,
    Tag,
    Verdict,
    hookimpl,
)

from .collect import Ga4MpClient
from .payload import build, event_name
from .responses import classify
from .rules import (
    MAX_BODY_BYTES,
    MAX_EVENTS_PER_REQUEST,
    MAX_USER_PROPERTIES,
    measurement_id_problem,
)
from .settings import Ga4MpSettings

DEDUPE_SECONDS = 24 * 3600
_HEADERS = {"Content-Type": "application/json"}
_canonical = msgspec.json.Encoder(order="sorted")


class Ga4MpTag(Tag[Ga4MpSettings]):
    name = "ga4_mp"
    Settings = Ga4MpSettings
    description = (
        "GA4 Measurement Protocol: events rebuilt from event data and checked against GA4's "
        "limits, batched up to 25 per client."
    )
    batching = Batching(max_items=MAX_EVENTS_PER_REQUEST, max_bytes=MAX_BODY_BYTES)

    def build(self, event: EventData, settings: Ga4MpSettings, ctx: BuildContext) -> list[Outbound]:
        # The id names the lane: one a template took from the event is checked here too (a
        # rendered value that still holds "{{" passes the settings' own check).
        problem = measurement_id_problem(settings.measurement_id)
        if problem is not None:
            raise InvalidEvent(problem)
        built = build(event, settings, ctx.now, ctx.container.consent_default, ctx.warn)
        body = request_body(built.envelope, [built.event], built.user_properties)
        if len(body) >= MAX_BODY_BYTES:
            raise InvalidEvent(
                f"request body is {len(body)} bytes; GA4 takes less than {MAX_BODY_BYTES}"
            )
        # One lane per stream; within it, only events of one client with the same
        # request-level fields (ids, consent, user_data, device) may share a request. Hashed,
        # so no client id or user data sits in the outbox's grouping key.
        group = hashlib.sha256(_canonical.encode(built.envelope)).hexdigest()[:20]
        return [
            Outbound(
                method="POST",
                url=collect_url(settings),
                headers=dict(_HEADERS),
                body=body,
                destination=settings.measurement_id,
                batch_key=group,
                batch_item={"event": built.event, "user_properties": built.user_properties},
            )
        ]

    def merge(self, outbounds: list[Outbound]) -> Outbound:
        """One request for up to 25 events of one lane: the first request's envelope, every
        event, and each user property at its latest value."""
        if len(outbounds) == 1:
            return outbounds[0]
        if len(outbounds) > MAX_EVENTS_PER_REQUEST:
            raise ValueError(f"{len(outbounds)} events; GA4 takes {MAX_EVENTS_PER_REQUEST}")
        first = outbounds[0]
        envelope = msgspec.json.decode(first.body)
        envelope.pop("events", None)
        envelope.pop("user_properties", None)
        properties: dict[str, dict[str, Any]] = {}
        for outbound in outbounds:
            for name, prop in outbound.batch_item["user_properties"].items():
                if name not in properties or (
                    prop["timestamp_micros"] >= properties[name]["timestamp_micros"]
                ):
                    properties[name] = prop
        latest = sorted(properties.items(), key=lambda p: -p[1]["timestamp_micros"])
        events = [outbound.batch_item["event"] for outbound in outbounds]
        return batch_request(
            outbounds, request_body(envelope, events, dict(latest[:MAX_USER_PROPERTIES]))
        )

    def classify(self, status: int, headers: dict[str, str], body: bytes) -> Verdict:
        return classify(status, headers, body)

    def dedupe_key(self, event: EventData, settings: Ga4MpSettings) -> tuple[str, float] | None:
        """An event with its own `event_id` is sent once per stream, name and id within 24 h:
        GA4 has no dedup of its own, so a replayed hit would count twice."""
        own = text(event.get("event_id"))
        if own is None:
            return None
        try:
            name = event_name(event, settings)
        except InvalidEvent:
            return None  # build() reports it
        return f"{settings.measurement_id}:{name}:{own}", DEDUPE_SECONDS


def request_body(
    envelope: dict[str, Any],
    events: list[dict[str, Any]],
    user_properties: dict[str, dict[str, Any]],
) -> bytes:
    body = dict(envelope)
    if user_properties:
        body["user_properties"] = user_properties
    body["events"] = events
    return msgspec.json.encode(body)


def collect_url(settings: Ga4MpSettings) -> str:
    path = "/debug/mp/collect" if settings.validate else "/mp/collect"
    query = urlencode(
        {"measurement_id": settings.measurement_id, "api_secret": settings.api_secret}
    )
    return f"{settings.base_url}{path}?{query}"


@hookimpl
def register_tag_types(register: Callable[[Any], None]) -> None:
    register(Ga4MpTag())


@hookimpl
def register_client_types(register: Callable[[Any], None]) -> None:
    register(Ga4MpClient())
