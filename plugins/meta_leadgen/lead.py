"""The `meta_lead` tag: a lead's answers read from the Graph API, as a new event.

For each `generate_lead` event of the `meta_leadgen` client (it carries `lead_id`), the tag sends
`GET {endpoint}/{api_version}/{lead_id}?fields=...&access_token=...` (with `appsecret_proof` when
the app requires it), retried like any delivery. When Graph answers, `follow_up` turns the lead
into a `lead_details` event: `field_data` answers by form field name under `lead_fields`, the
usual ones (e-mail, phone, names, address) also where sGTM's common event data has them, so the
container's other tags (a CRM upsert, a WhatsApp alert) act on it. The lead id stays the
`event_id`, so every tag dedupes a lead read twice.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any
from urllib.parse import urlencode

import msgspec

from sgtm.kit.http import http_url, json_or_none
from sgtm.kit.mapping import text
from sgtm.plugin import (
    BuildContext,
    EventData,
    InvalidEvent,
    Outbound,
    Secret,
    Tag,
    Url,
    Verdict,
    default_classify,
    set_path,
)

DEDUPE_SECONDS = 7 * 86400
MAX_FIELDS = 100  # answers kept per lead
MAX_VALUES = 20  # values kept per answer (multiple choice)
MAX_VALUE_CHARS = 2000
# Form field name (Meta's standard questions) -> event data path.
FIELD_MAP = {
    "email": "user_data.email_address",
    "phone_number": "user_data.phone_number",
    "first_name": "user_data.address.first_name",
    "last_name": "user_data.address.last_name",
    "street_address": "user_data.address.street",
    "city": "user_data.address.city",
    "state": "user_data.address.region",
    "province": "user_data.address.region",
    "zip_code": "user_data.address.postal_code",
    "post_code": "user_data.address.postal_code",
    "country": "user_data.address.country",
}
DEFAULT_FIELDS = ("id", "created_time", "ad_id", "form_id", "field_data")
# Graph API codes: retried (temporary, throttled) and dead (token, permission, unknown lead).
RETRY_CODES = frozenset({1, 2, 4, 17, 32, 341, 613})
DEAD_CODES = frozenset({10, 100, 102, 190})
_ID = re.compile(r"[0-9]{1,32}")
_GRAPH_FIELD = re.compile(r"[a-z_]{1,40}")
_API_VERSION = re.compile(r"v[0-9]{1,3}\.[0-9]")
_EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,99}")
_DOTTED = re.compile(r"[^.\s]+(\.[^.\s]+)*")


class MetaLeadSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # A Page access token with leads_retrieval: "${META_PAGE_TOKEN}".
    access_token: Secret
    # The app secret, when the app requires appsecret_proof ("Require App Secret").
    app_secret: Secret | None = None
    api_version: str = "v21.0"
    # Lead fields to read (ad_name, campaign_id, is_organic, platform... need ads_management).
    fields: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_FIELDS))
    # The event the answer becomes.
    event_name: str = "lead_details"
    # Form field name -> event data path, over the standard questions' defaults; null removes.
    field_map: dict[str, str | None] = {}
    endpoint: Url = "https://graph.facebook.com"

    def __post_init__(self) -> None:
        if not self.access_token.strip():
            raise ValueError("access_token: empty (set it from the environment)")
        if not _API_VERSION.fullmatch(self.api_version):
            raise ValueError(
                f"api_version: a Graph API version such as v21.0, got {self.api_version!r}"
            )
        if not self.fields or not all(_GRAPH_FIELD.fullmatch(f) for f in self.fields):
            raise ValueError("fields: lead field names such as field_data, ad_id")
        if "field_data" not in self.fields:
            raise ValueError("fields: must include field_data (the answers)")
        if not _EVENT_NAME.fullmatch(self.event_name):
            raise ValueError(f"event_name: {self.event_name!r} is not an event name")
        for name, path in self.field_map.items():
            if path is not None and not _DOTTED.fullmatch(path):
                raise ValueError(f"field_map: {name}: {path!r} is not an event data path")
        self.endpoint = http_url("endpoint", self.endpoint)


class MetaLeadTag(Tag[MetaLeadSettings]):
    name = "meta_lead"
    Settings = MetaLeadSettings
    description = (
        "Reads a Meta lead's answers from the Graph API and makes them a lead_details event."
    )

    def build(
        self, event: EventData, settings: MetaLeadSettings, ctx: BuildContext
    ) -> list[Outbound]:
        lead_id = text(event.get("lead_id"))
        if lead_id is None or not _ID.fullmatch(lead_id):
            raise InvalidEvent(
                "no lead_id (the meta_leadgen client's generate_lead events have it)"
            )
        query = {"fields": ",".join(settings.fields), "access_token": settings.access_token}
        if settings.app_secret:
            proof = hmac.new(
                settings.app_secret.encode(), settings.access_token.encode(), hashlib.sha256
            )
            query["appsecret_proof"] = proof.hexdigest()
        return [
            Outbound(
                method="GET",
                url=f"{settings.endpoint}/{settings.api_version}/{lead_id}?{urlencode(query)}",
                destination="graph leads",
                idempotency_key=lead_id,
            )
        ]

    def dedupe_key(self, event: EventData, settings: MetaLeadSettings) -> tuple[str, float] | None:
        lead_id = text(event.get("lead_id"))
        return (f"lead:{lead_id}", DEDUPE_SECONDS) if lead_id else None

    def classify(self, status: int, headers: dict[str, str], body: bytes) -> Verdict:
        data = json_or_none(body)
        if 200 <= status < 300:
            if isinstance(data, dict) and isinstance(data.get("id"), str | int):
                return Verdict(outcome="done")
            return Verdict(outcome="retry", reason=f"{status} without a lead in the answer")
        found = data.get("error") if isinstance(data, dict) else None
        code = found.get("code") if isinstance(found, dict) else None
        message = str(found.get("message", "")) if isinstance(found, dict) else ""
        reason = f"{status} {code or ''} {message}".strip()[:500]
        if code in RETRY_CODES:
            return Verdict(outcome="retry", reason=reason)
        if code in DEAD_CODES or (isinstance(code, int) and 200 <= code <= 299):
            return Verdict(outcome="dead", reason=reason)
        return Verdict(outcome=default_classify(status), reason=reason)

    def follow_up(
        self,
        status: int,
        headers: dict[str, str],
        body: bytes,
        request: Outbound,
        settings: MetaLeadSettings,
    ) -> list[EventData]:
        lead = json_or_none(body)
        if not isinstance(lead, dict):
            return []
        return [lead_event(lead, settings)]


def lead_event(lead: dict[str, Any], settings: MetaLeadSettings) -> EventData:
    lead_id = text(lead.get("id")) or ""
    event: EventData = {"event_name": settings.event_name, "event_id": lead_id, "lead_id": lead_id}
    for key, value in lead.items():
        if key not in ("id", "field_data") and isinstance(value, str | int | float | bool):
            event[key] = str(value) if key.endswith("_id") else value
    answers = _answers(lead.get("field_data"))
    if answers:
        event["lead_fields"] = answers
    table = {**FIELD_MAP, **settings.field_map}
    for name, value in answers.items():
        path = table.get(name)
        if path and isinstance(value, str):
            set_path(event, path, value)
    return event


def _answers(field_data: Any) -> dict[str, Any]:
    """`[{name, values: [...]}]` -> `{name: value}`: one value as text, several as a list."""
    out: dict[str, Any] = {}
    if not isinstance(field_data, list):
        return out
    for entry in field_data[:MAX_FIELDS]:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        raw = entry.get("values")
        values = (
            [str(v)[:MAX_VALUE_CHARS] for v in raw[:MAX_VALUES]] if isinstance(raw, list) else []
        )
        if values:
            out[entry["name"][:100]] = values[0] if len(values) == 1 else values
    return out
