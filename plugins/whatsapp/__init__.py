"""`whatsapp`: WhatsApp Business Cloud API template messages, one per event.

`POST {endpoint}/{api_version}/{phone_number_id}/messages` with the system user's token as Bearer:
`{"messaging_product": "whatsapp", "recipient_type": "individual", "to": <E.164 digits>,
"type": "template", "template": {"name", "language": {"code", "policy": "deterministic"},
"components": [header, body parameters]}}`. Templates are the only messages a business may start
a conversation with (outside the 24-hour window free text fails with 131047).

The recipient is `to` (a fixed number such as the sales team's) or the event's `to_field`,
normalized to E.164 with `default_country_code` for national numbers (`hashing.e164`).
Parameters are templates filled per event; WhatsApp refuses parameter text with new lines, tabs
or more than four spaces in a row, so those are folded (with a warning), and an empty parameter
makes the event invalid. The Cloud API has no idempotency key: an event with an `event_id` is
sent once per template and recipient within a day (`dedupe_key`), and a retry after a timeout
may deliver twice (a timeout is retried). responses.py classifies WhatsApp's error codes.
docs/tags/whatsapp.md is the user's guide.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import msgspec

from sgtm.kit import hashing, mapping
from sgtm.kit.http import http_url
from sgtm.plugin import (
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
    get_path,
    hookimpl,
)

from .responses import classify

DEDUPE_SECONDS = 24 * 3600
# Meta's default throughput for a business number (automatic upgrades go to 1,000/s).
MESSAGES_PER_SECOND = 80
MAX_PARAMETER_CHARS = 1024
_TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,512}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")
_PHONE_NUMBER_ID = re.compile(r"[0-9]{5,20}")
_API_VERSION = re.compile(r"v[0-9]{1,3}\.[0-9]")
_COUNTRY_CODE = re.compile(r"[1-9][0-9]{0,2}")
_PARAMETER_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_FOLD = re.compile(r"[\r\n\t]+| {5,}")


class WhatsAppSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The business number's Graph id (WhatsApp Manager > API setup), not the number itself.
    phone_number_id: str
    # A system user's token with whatsapp_business_messaging: "${WHATSAPP_TOKEN}".
    access_token: Secret
    # An approved template's name and language.
    template: str
    language: str = "en_US"
    # A fixed recipient (the sales team's number); without it, the event's `to_field`. Never a
    # template: an event whose value were missing would otherwise fall back to `to_field`, and
    # a message meant for sales could reach the lead.
    to: str | None = None
    to_field: str = "user_data.phone_number"
    # For numbers written without a country code ("(11) 91234-5678" with "55").
    default_country_code: str | None = None
    # Body parameters: a list for {{1}}, {{2}}... or a mapping for named parameters.
    body_parameters: list[Any] | dict[str, Any] = []
    header_parameters: list[Any] = []
    api_version: str = "v21.0"
    endpoint: Url = "https://graph.facebook.com"

    def __post_init__(self) -> None:
        if self.to is not None and "{{" in self.to:
            raise ValueError("to: a fixed number; for the event's number use to_field")
        if not _PHONE_NUMBER_ID.fullmatch(self.phone_number_id):
            raise ValueError("phone_number_id: the number's Graph id, digits only")
        if not self.access_token.strip():
            raise ValueError("access_token: empty (set it from the environment)")
        if not _TEMPLATE_NAME.fullmatch(self.template):
            raise ValueError("template: an approved template's name (lowercase, digits, _)")
        if not _LANGUAGE.fullmatch(self.language):
            raise ValueError(
                f"language: a template language code such as pt_BR, got {self.language!r}"
            )
        if not _API_VERSION.fullmatch(self.api_version):
            raise ValueError(
                f"api_version: a Graph API version such as v21.0, got {self.api_version!r}"
            )
        if self.default_country_code is not None and not _COUNTRY_CODE.fullmatch(
            self.default_country_code
        ):
            raise ValueError("default_country_code: 1 to 3 digits, e.g. '55'")
        if isinstance(self.body_parameters, dict):
            for name in self.body_parameters:
                if not _PARAMETER_NAME.fullmatch(name):
                    raise ValueError(f"body_parameters: {name!r} is not a parameter name")
        self.endpoint = http_url("endpoint", self.endpoint)


class WhatsAppTag(Tag[WhatsAppSettings]):
    name = "whatsapp"
    Settings = WhatsAppSettings
    description = "WhatsApp Business Cloud API template messages (E.164 recipients)."
    rate_limit = RateLimit(requests=MESSAGES_PER_SECOND, per=1.0)

    def build(
        self, event: EventData, settings: WhatsAppSettings, ctx: BuildContext
    ) -> list[Outbound]:
        to = recipient(event, settings)
        components = []
        if settings.header_parameters:
            header = parameters(settings.header_parameters, "header", ctx.warn)
            components.append({"type": "header", "parameters": header})
        if settings.body_parameters:
            body = parameters(settings.body_parameters, "body", ctx.warn)
            components.append({"type": "body", "parameters": body})
        message = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "template",
            "template": {
                "name": settings.template,
                "language": {"code": settings.language, "policy": "deterministic"},
                "components": components,
            },
        }
        return [
            Outbound(
                method="POST",
                url=f"{settings.endpoint}/{settings.api_version}/{settings.phone_number_id}/messages",
                headers={
                    "Authorization": f"Bearer {settings.access_token}",
                    "Content-Type": "application/json",
                },
                body=msgspec.json.encode(message),
                destination=settings.phone_number_id,
                idempotency_key=mapping.text(event.get("event_id")),
            )
        ]

    def classify(self, status: int, headers: dict[str, str], body: bytes) -> Outcome | Verdict:
        return classify(status, headers, body)

    def dedupe_key(self, event: EventData, settings: WhatsAppSettings) -> tuple[str, float] | None:
        own = mapping.text(event.get("event_id"))
        if own is None:
            return None
        try:
            to = recipient(event, settings)
        except InvalidEvent:
            return None  # build() reports it
        # Hashed: no phone number sits in the dedupe store.
        key = f"{settings.phone_number_id}:{settings.template}:{to}:{own}"
        return hashlib.sha256(key.encode()).hexdigest(), DEDUPE_SECONDS


def recipient(event: EventData, settings: WhatsAppSettings) -> str:
    """The recipient in E.164 without its `+` (WhatsApp ids are digits)."""
    raw = settings.to if settings.to is not None else get_path(event, settings.to_field)
    if isinstance(raw, list) and raw:
        raw = raw[0]
    number = hashing.e164(raw, settings.default_country_code)
    if number is None:
        where = "`to`" if settings.to is not None else settings.to_field
        shown = "none" if raw in (None, "") else "not a phone number"
        raise InvalidEvent(f"no recipient at {where} ({shown}; E.164: 7 to 15 digits)")
    return number.removeprefix("+")


def parameters(
    values: list[Any] | dict[str, Any], where: str, warn: Callable[[str], None]
) -> list[dict[str, str]]:
    named = isinstance(values, dict)
    items = list(values.items()) if isinstance(values, dict) else list(enumerate(values, 1))
    out = []
    for name, value in items:
        text = mapping.text(value)
        label = f"{where} parameter {name}"
        if text is None:
            raise InvalidEvent(f"{label} is empty: WhatsApp refuses empty template parameters")
        folded = _FOLD.sub(" ", text)
        if folded != text:
            warn(f"{label}: new lines, tabs and runs of spaces folded (WhatsApp refuses them)")
        if len(folded) > MAX_PARAMETER_CHARS:
            warn(f"{label} cut to {MAX_PARAMETER_CHARS} characters")
            folded = folded[:MAX_PARAMETER_CHARS]
        parameter = {"type": "text", "text": folded}
        if named:
            parameter["parameter_name"] = str(name)
        out.append(parameter)
    return out


@hookimpl
def register_tag_types(register: Callable[[Any], None]) -> None:
    register(WhatsAppTag())
