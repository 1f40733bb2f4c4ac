"""`meta_capi`: server events to a Meta pixel through the Conversions API.

One event becomes one server event (`server_event.py`: names, time, id, user_data normalized
and hashed exactly as Meta's capi-param-builder does in `normalize.py`, custom_data from items),
validated before it is queued because Meta refuses a whole batch for one bad event. The delivery
engine merges up to 1000 events of one pixel (and test code) into one
`POST {endpoint}/{api_version}/{pixel_id}/events?access_token=...` and classifies the answer
with `responses.py`. An event with its own id is sent once per 48 hours, Meta's own dedupe
window, so a replayed hit is not counted twice. docs/tags/meta_capi.md is the user's guide.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

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

from .responses import classify, classify_batch
from .server_event import event_id, meta_event_name, server_event
from .settings import MetaCapiSettings

MAX_EVENTS_PER_REQUEST = 1000  # Meta: "up to 1,000 events" per request
DEDUPE_SECONDS = 48 * 3600  # Meta keeps the first of two events with one name + id for 48 h

_HEADERS = {"Content-Type": "application/json"}


class MetaCapiTag(Tag[MetaCapiSettings]):
    name = "meta_capi"
    Settings = MetaCapiSettings
    description = (
        "Meta Conversions API: server events to a pixel, user data normalized and hashed "
        "as Meta's own normalizer does, batched up to 1000 per request."
    )
    # Meta recommends a 1.5 s timeout for one event; a batch of 1000 takes longer.
    timeout = 5.0
    batching = Batching(max_items=MAX_EVENTS_PER_REQUEST, linger=1.0)

    def build(
        self, event: EventData, settings: MetaCapiSettings, ctx: BuildContext
    ) -> list[Outbound]:
        data = server_event(event, settings, ctx.now)
        test_code = _test_event_code(event, settings)
        envelope: dict[str, Any] = {"data": [data]}
        if test_code:
            envelope["test_event_code"] = test_code
        if settings.partner_agent:
            envelope["partner_agent"] = settings.partner_agent
        return [
            Outbound(
                method="POST",
                url=events_url(settings),
                headers=dict(_HEADERS),
                body=msgspec.json.encode(envelope),
                # One lane per pixel: a test code (which an event may carry) only groups the
                # events of a request, so no hit can open lanes or fill the tag's lane budget.
                destination=settings.pixel_id,
                batch_key=f"test:{test_code}" if test_code else "",
                idempotency_key=f"{settings.pixel_id}:{data['event_name']}:{data['event_id']}",
                batch_item=data,
            )
        ]

    def merge(self, outbounds: list[Outbound]) -> Outbound:
        """One request for several events of one lane: they share the pixel and test code, so
        the first request's URL and envelope carry all their `data` entries."""
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

    def dedupe_key(self, event: EventData, settings: MetaCapiSettings) -> tuple[str, float] | None:
        """Events with their own id (event_id, or a Purchase's transaction_id) are sent once per
        pixel, Meta event name and id within 48 h. A generated id needs no dedupe here: it is
        new for every new event."""
        try:
            name = meta_event_name(event, settings.event_map)
        except Exception:
            return None  # build() reports the problem
        own_id = event_id(event, name)
        if own_id is None:
            return None
        return f"{settings.pixel_id}:{name}:{own_id}", DEDUPE_SECONDS


def events_url(settings: MetaCapiSettings) -> str:
    query: dict[str, str] = {"access_token": settings.access_token}
    if settings.appsecret_proof and settings.app_secret:
        query["appsecret_proof"] = appsecret_proof(settings.app_secret, settings.access_token)
    base = settings.endpoint.rstrip("/")
    return f"{base}/{settings.api_version}/{quote(settings.pixel_id, safe='')}/events?" + urlencode(
        query
    )


def appsecret_proof(app_secret: str, access_token: str) -> str:
    """Hex HMAC-SHA256 of the access token keyed with the app secret (Graph API)."""
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


def _test_event_code(event: EventData, settings: MetaCapiSettings) -> str | None:
    own = event.get("test_event_code")
    if isinstance(own, str) and own.strip():
        return own.strip()
    return settings.test_event_code or None


@hookimpl
def register_tag_types(register: Callable[[Any], None]) -> None:
    register(MetaCapiTag())


@hookimpl
def register_personal_data(register: Callable[[Any], None]) -> None:
    """What `sgtm audit` should put in its probes for Meta: the `_fbp` / `_fbc` cookies (as the
    clients expose them), the click id, and a date of birth (`db`)."""
    for category, name, value, key in (
        ("device_id", "_fbp", "fb.1.1700000000000.7302730273", "x-fb-ck-fbp"),
        ("click_id", "_fbc", "fb.1.1700000000000.SgtmAuditFbc7302", "x-fb-ck-fbc"),
    ):
        register(
            PersonalData(
                category=category,
                name=f"{name} cookie",
                value=value,
                cookie=name,
                event_keys=(key,),
            )
        )
    register(
        PersonalData(
            category="click_id", name="fbclid", value="SgtmAuditFbclid7302", url_param="fbclid"
        )
    )
    register(
        PersonalData(
            category="date_of_birth",
            name="user_data.date_of_birth",
            value="1987-06-12",
            event_keys=("user_data.date_of_birth",),
        )
    )
