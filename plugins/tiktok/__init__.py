"""`tiktok`: web events to a TikTok pixel through the Events API 2.0.

One event becomes one `data[]` entry (`payload.py`: event names from GA4's, time, id, `user`
normalized and hashed per TikTok's rules with `ttclid` / `_ttp` read from the request, the
`properties` from items, the `page`), checked before it is queued because TikTok refuses a whole
batch for one bad event. The delivery engine merges up to 1000 events of one pixel (and test
code) into one `POST {endpoint}/open_api/v1.3/event/track/` with the `Access-Token` header and
classifies the answer with `responses.py`. An event with its own id is sent once per 48 hours,
TikTok's own dedupe window. docs/tags/tiktok.md is the user's guide.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from sgtm.kit.http import batch_request
from sgtm.plugin import (
    Batching,
    BuildContext,
    EventData,
    Outbound,
    Outcome,
    PersonalData,
    Tag,
    Verdict,
    hookimpl,
)

from .payload import data_entry, event_id, tiktok_event_name
from .responses import classify, classify_batch
from .settings import TikTokSettings

MAX_EVENTS_PER_REQUEST = 1000  # Events API 2.0: up to 1,000 events in `data`
DEDUPE_SECONDS = 48 * 3600  # TikTok keeps the first of two events with one name + id for 48 h


class TikTokTag(Tag[TikTokSettings]):
    name = "tiktok"
    Settings = TikTokSettings
    description = (
        "TikTok Events API 2.0: web events to a pixel, user data normalized and hashed as "
        "TikTok asks, batched up to 1000 per request."
    )
    timeout = 5.0
    batching = Batching(max_items=MAX_EVENTS_PER_REQUEST, linger=1.0)

    def build(
        self, event: EventData, settings: TikTokSettings, ctx: BuildContext
    ) -> list[Outbound]:
        cookies = ctx.request.cookies if ctx.request is not None else {}
        data = data_entry(event, settings, ctx.now, cookies, ctx.warn)
        test_code = _test_event_code(event, settings)
        envelope: dict[str, Any] = {"event_source": "web", "event_source_id": settings.pixel_code}
        if test_code:
            envelope["test_event_code"] = test_code
        envelope["data"] = [data]
        return [
            Outbound(
                method="POST",
                url=settings.track_url,
                headers={"Access-Token": settings.access_token, "Content-Type": "application/json"},
                body=msgspec.json.encode(envelope),
                # One lane per pixel: a test code (which an event may carry) only groups the
                # events of a request, so no hit can open lanes or fill the tag's lane budget.
                destination=settings.pixel_code,
                batch_key=f"test:{test_code}" if test_code else "",
                idempotency_key=f"{settings.pixel_code}:{data['event']}:{data['event_id']}",
                batch_item=data,
            )
        ]

    def merge(self, outbounds: list[Outbound]) -> Outbound:
        """One request for several events of one lane: they share the pixel and test code, so
        the first request's URL, headers and envelope carry all their `data` entries."""
        if len(outbounds) == 1:
            return outbounds[0]
        first = outbounds[0]
        envelope = msgspec.json.decode(first.body)
        envelope["data"] = [outbound.batch_item for outbound in outbounds]
        return batch_request(outbounds, msgspec.json.encode(envelope))

    def classify(self, status: int, headers: dict[str, str], body: bytes) -> Verdict:
        return classify(status, headers, body)

    def classify_batch(
        self, status: int, headers: dict[str, str], body: bytes, items: list[Outbound]
    ) -> list[Outcome | Verdict]:
        return list(classify_batch(status, headers, body, len(items)))

    def dedupe_key(self, event: EventData, settings: TikTokSettings) -> tuple[str, float] | None:
        """Events with their own id (event_id, or a purchase's transaction_id) are sent once per
        pixel, TikTok event name and id within 48 h; a generated id is new for a new event."""
        try:
            name = tiktok_event_name(event, settings.event_map)
        except Exception:
            return None  # build() reports the problem
        own_id = event_id(event, name)
        if own_id is None:
            return None
        return f"{settings.pixel_code}:{name}:{own_id}", DEDUPE_SECONDS


def _test_event_code(event: EventData, settings: TikTokSettings) -> str | None:
    own = event.get("test_event_code")
    if isinstance(own, str) and own.strip():
        return own.strip()[:100]
    return settings.test_event_code or None


@hookimpl
def register_tag_types(register: Callable[[Any], None]) -> None:
    register(TikTokTag())


@hookimpl
def register_personal_data(register: Callable[[PersonalData], None]) -> None:
    # What the tag reads beyond common event data, for `sgtm audit`'s probes: TikTok's click id
    # in the landing page URL and the pixel's browser id cookie.
    register(
        PersonalData(
            category="click_id", name="ttclid", value="SgtmAuditTtclid7302", url_param="ttclid"
        )
    )
    register(
        PersonalData(
            category="device_id", name="_ttp cookie", value="SgtmAuditTtp7302", cookie="_ttp"
        )
    )
