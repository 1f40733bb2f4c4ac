"""`hubspot`: contacts created or updated by e-mail through HubSpot's CRM v3 batch upsert.

Each event becomes one input `{"id": <email>, "idProperty": "email", "properties": {...},
"objectWriteTraceId": ...}`; the delivery engine merges up to 100 of them (HubSpot's batch limit)
into one `POST /crm/v3/objects/contacts/batch/upsert` with the private app's token as Bearer.
Upsert by e-mail makes a resend harmless: the contact is found, not created twice. Two events for
one address in a batch become one input (HubSpot refuses a batch that names a record twice).

Answers (responses.py): 200 all done; 207 (multi-status) lists the inputs that failed, matched back
by `objectWriteTraceId`: validation errors and conflicts are dead for that contact alone, the rest
done. 429 waits for HubSpot's 10-second window (or the daily reset); 423, 477 and 5xx are retried;
a 400 that names no input, 401 and 403 are dead (the token, a scope or a property is wrong:
resending cannot help). docs/tags/hubspot.md is the user's guide.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from sgtm.kit import mapping as m
from sgtm.kit.http import batch_request, http_url
from sgtm.plugin import (
    Batching,
    BuildContext,
    EventData,
    InvalidEvent,
    Outbound,
    Outcome,
    RateLimit,
    Secret,
    Tag,
    Url,
    Verdict,
    hookimpl,
)

from .responses import classify, classify_inputs

MAX_INPUTS = 100
# Gather contacts for a moment: every request counts against the portal's shared limits.
LINGER_SECONDS = 1.0
UPSERT_PATH = "/crm/v3/objects/contacts/batch/upsert"
MAX_VALUE_CHARS = 65536  # HubSpot's limit for a single-line/multi-line text property value

# HubSpot contact property -> event data path (sGTM's common event data names).
DEFAULT_PROPERTIES = {
    "firstname": "user_data.address.first_name",
    "lastname": "user_data.address.last_name",
    "phone": "user_data.phone_number",
    "city": "user_data.address.city",
    "state": "user_data.address.region",
    "zip": "user_data.address.postal_code",
    "country": "user_data.address.country",
}
# The default stages' internal values; portals may add custom stages (numeric ids).
LIFECYCLE_STAGES = frozenset(
    {
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
        "other",
    }
)
_PROPERTY = re.compile(r"[a-z][a-z0-9_]{0,99}")
_CUSTOM_STAGE = re.compile(r"[0-9]{1,20}")


class HubSpotSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The private app's access token (Settings > Integrations > Private Apps), with the
    # crm.objects.contacts.write scope: "${HUBSPOT_TOKEN}".
    access_token: Secret
    # HubSpot property -> value, over the defaults (first and last name, phone, city, state,
    # zip, country from user_data). Values are constants or templates ("{{event.plan}}"); null
    # removes a default.
    properties: dict[str, Any] = {}
    # Where the e-mail is read: an event data path.
    email_field: str = "user_data.email_address"
    # The contact's lifecycle stage: one of HubSpot's defaults, or a custom stage's id.
    lifecycle_stage: str | None = None
    # The portal's burst limit per 10 s: 100 (Free, Starter) or 190 (Professional, Enterprise);
    # 250 with the API limit increase.
    portal_rate_limit: Literal[100, 190, 250] = 100
    endpoint: Url = "https://api.hubapi.com"

    def __post_init__(self) -> None:
        if not self.access_token.strip():
            raise ValueError("access_token: empty (set it from the environment)")
        self.endpoint = http_url("endpoint", self.endpoint)
        for name in self.properties:
            if not _PROPERTY.fullmatch(name) or name in ("email", "lifecyclestage"):
                raise ValueError(
                    f"properties: {name!r} is not a contact property's internal name (lowercase"
                    " letters, digits, _; email and lifecyclestage have settings of their own)"
                )
        stage = self.lifecycle_stage
        if stage is not None and not (
            stage in LIFECYCLE_STAGES or _CUSTOM_STAGE.fullmatch(stage) or "{{" in stage
        ):
            raise ValueError(
                f"lifecycle_stage: {stage!r} is not one of {', '.join(sorted(LIFECYCLE_STAGES))}"
                " or a custom stage id"
            )


class HubSpotTag(Tag[HubSpotSettings]):
    name = "hubspot"
    Settings = HubSpotSettings
    description = "HubSpot contacts upserted by e-mail, up to 100 per request (CRM v3 batch)."
    batching = Batching(max_items=MAX_INPUTS, linger=LINGER_SECONDS)
    rate_limit = RateLimit(requests=100, per=10.0)

    def rate_limit_for(self, settings: HubSpotSettings) -> RateLimit:
        return RateLimit(requests=settings.portal_rate_limit, per=10.0)

    def build(
        self, event: EventData, settings: HubSpotSettings, ctx: BuildContext
    ) -> list[Outbound]:
        raw = m.read(event, {"email": settings.email_field}).get("email")
        email = m.email(raw)
        if email is None:
            shown = "none" if raw is None else "not an e-mail address"
            raise InvalidEvent(f"no contact e-mail at {settings.email_field} ({shown})")
        properties = {"email": email}
        table = m.overlay(m.read(event, DEFAULT_PROPERTIES), settings.properties)
        for name, value in table.items():
            kept = property_value(name, value, ctx.warn)
            if kept is not None:
                properties[name] = kept
        if settings.lifecycle_stage:
            properties["lifecyclestage"] = settings.lifecycle_stage
        own = m.text(event.get("event_id"))
        trace = own[:64] if own else hashlib.sha256(email.encode()).hexdigest()[:32]
        item = {"id": email, "idProperty": "email", "properties": properties}
        outbound = Outbound(
            method="POST",
            url=settings.endpoint + UPSERT_PATH,
            headers={
                "Authorization": f"Bearer {settings.access_token}",
                "Content-Type": "application/json",
            },
            destination=UPSERT_PATH,
            idempotency_key=own,
            batch_item={**item, "objectWriteTraceId": trace},
        )
        return [self.merge([outbound])]

    def merge(self, outbounds: list[Outbound]) -> Outbound:
        body = {"inputs": inputs([o.batch_item for o in outbounds])}
        return batch_request(outbounds, msgspec.json.encode(body))

    def classify(self, status: int, headers: dict[str, str], body: bytes) -> Outcome | Verdict:
        return classify(status, headers, body)

    def classify_batch(
        self, status: int, headers: dict[str, str], body: bytes, items: list[Outbound]
    ) -> list[Outcome | Verdict]:
        merged = inputs([o.batch_item for o in items])
        by_email = classify_inputs(status, headers, body, merged)
        return [by_email[item.batch_item["id"]] for item in items]


def inputs(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One input per e-mail, in first-seen order: later events' properties win, the first
    event's trace id names the input."""
    merged: dict[str, dict[str, Any]] = {}
    for item in items:
        found = merged.get(item["id"])
        if found is None:
            merged[item["id"]] = {**item, "properties": dict(item["properties"])}
        else:
            found["properties"].update(item["properties"])
    return list(merged.values())


def property_value(name: str, value: Any, warn: Callable[[str], None]) -> str | None:
    """HubSpot takes property values as text: numbers and booleans become text; lists and
    objects cannot be one value."""
    if isinstance(value, dict | list):
        warn(f"property {name!r} not sent: a list or object is not one HubSpot value")
        return None
    found = m.text(value)
    if found is not None and len(found) > MAX_VALUE_CHARS:
        warn(f"property {name!r} cut to {MAX_VALUE_CHARS} characters")
        return found[:MAX_VALUE_CHARS]
    return found


@hookimpl
def register_tag_types(register: Callable[[Any], None]) -> None:
    register(HubSpotTag())
