"""`newtail`: retail-media ad events and conversions to Newtail / VTEX Ads.

- Ad events (`ad_impression`, `ad_view`, `ad_click` from the beacon client): the signed URL that
  came with the event is POSTed with `{"session_id", "user_id"}`, after `event_url.checked`
  (the SSRF guard: https, an exactly allowed host, no tricks). A URL is never built.
- Conversions (`purchase`): `conversion.py` fills every field Newtail requires, with unit prices
  and hashed personal data, POSTed to `{endpoint}/v1/beacon/conversion`.
Sending repeats what Newtail ignores anyway only when needed: impressions are sent once a minute
and clicks once an hour per ad, user and device, conversions once per order for 30 days (Newtail's
own windows). docs/tags/newtail.md is the user's guide.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import msgspec

from sgtm.kit.mapping import text
from sgtm.plugin import (
    BuildContext,
    EventData,
    InvalidEvent,
    Outbound,
    PersonalData,
    Tag,
    Verdict,
    hookimpl,
)

from . import event_url
from .conversion import conversion, ids
from .responses import classify
from .settings import Kind, NewtailSettings

# Event name -> what it is for Newtail; `event_map` in the settings is merged over it.
EVENT_MAP: dict[str, Kind] = {
    "ad_impression": "impression",
    "ad_view": "view",
    "ad_click": "click",
    "purchase": "conversion",
}
# Newtail ignores the same user's repeats of an event on one ad within these windows (views:
# none documented); conversions are idempotent by order_id for 30 days.
DEDUPE_SECONDS: dict[str, float] = {"impression": 60, "click": 3600, "conversion": 30 * 86400}
_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class NewtailTag(Tag[NewtailSettings]):
    name = "newtail"
    Settings = NewtailSettings
    description = (
        "Newtail / VTEX Ads: forwards signed impression, view and click URLs (allow-listed "
        "hosts only) and sends purchases as conversions."
    )
    timeout = 5.0

    def build(
        self, event: EventData, settings: NewtailSettings, ctx: BuildContext
    ) -> list[Outbound]:
        kind = event_kind(event, settings)
        cookies = ctx.request.cookies if ctx.request is not None else {}
        if kind == "conversion":
            body = conversion(event, settings, ctx.now, ctx.warn, cookies)
            return [
                Outbound(
                    method="POST",
                    url=settings.conversion_url,
                    headers=dict(_HEADERS),
                    body=msgspec.json.encode(body),
                    destination="conversions",
                    idempotency_key=f"{settings.publisher_id}:{body['order_id']}",
                )
            ]
        url = event_url.checked(ad_url(event, kind), kind, settings.allowed_event_hosts)
        user_id, session_id = ids(event, settings, cookies)
        if session_id is None:
            raise InvalidEvent("no session_id: Newtail needs one on every ad event")
        payload = {"session_id": session_id}
        if user_id is not None:
            payload["user_id"] = user_id
        key = hashlib.sha256(f"{kind} {url} {session_id}".encode()).hexdigest()[:32]
        return [
            Outbound(
                method="POST",
                url=event_url.routed(url, settings.event_endpoint),
                headers=dict(_HEADERS),
                body=msgspec.json.encode(payload),
                destination="ad_events",
                idempotency_key=key,
            )
        ]

    def classify(self, status: int, headers: dict[str, str], body: bytes) -> Verdict:
        return classify(status, headers, body)

    def dedupe_key(self, event: EventData, settings: NewtailSettings) -> tuple[str, float] | None:
        try:
            kind = event_kind(event, settings)
        except InvalidEvent:
            return None  # build() reports it
        ttl = DEDUPE_SECONDS.get(kind)
        if ttl is None:
            return None
        if kind == "conversion":
            order = text(event.get("transaction_id")) or text(event.get("order_id"))
            return (f"conversion:{settings.publisher_id}:{order}", ttl) if order else None
        url = ad_url(event, kind)
        # The request's cookies are not known here; ad events from the beacon client carry
        # their session id already, which is what dedupe needs.
        user_id, session_id = ids(event, settings, {})
        if not isinstance(url, str) or session_id is None:
            return None
        ad = event_url.ad_key(url)
        return f"{kind}:{ad}:{user_id or ''}:{session_id}", ttl


def event_kind(event: EventData, settings: NewtailSettings) -> Kind:
    name = event.get("event_name")
    kind = None
    if isinstance(name, str):
        kind = settings.event_map.get(name) or EVENT_MAP.get(name)
    if kind is None:
        raise InvalidEvent(
            f"event {str(name)[:60]!r} is no ad event or purchase for Newtail (map it with "
            "event_map)"
        )
    return kind


def ad_url(event: EventData, kind: str) -> Any:
    """The signed URL as the beacon client keeps it (`ad_event_url`), else `<kind>_url`."""
    found = event.get("ad_event_url")
    return found if found is not None else event.get(f"{kind}_url")


@hookimpl
def register_tag_types(register: Callable[[Any], None]) -> None:
    register(NewtailTag())


@hookimpl
def register_personal_data(register: Callable[[Any], None]) -> None:
    # A Brazilian CPF (11 digits), which the conversion sends hashed as `social_id_hashed`.
    register(
        PersonalData(
            category="national_id",
            name="user_data.social_id",
            value="73029183746",
            event_keys=("user_data.social_id",),
        )
    )
