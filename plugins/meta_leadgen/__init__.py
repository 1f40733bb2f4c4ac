"""The `meta_leadgen` client: Meta's lead ads webhook (Graph API Webhooks, object `page`, field
`leadgen`). docs/clients/meta_leadgen.md is the user's guide.

- `GET {path}?hub.mode=subscribe&hub.verify_token=...&hub.challenge=...` is Meta's verification:
  answered 200 with the challenge as a plain-text body when the token is `verify_token`, else 403.
- `POST {path}` is a notification, signed in `X-Hub-Signature-256: sha256=<hex>` (HMAC-SHA256 of
  the raw body with the app secret; 401 when missing or wrong). Each `leadgen` change becomes one
  `generate_lead` event with the ids Meta sends, read as strings; `event_id` is the `leadgen_id`,
  so Meta's redeliveries (it retries for up to 36 hours) are acknowledged without running tags
  twice. Other fields and objects are acknowledged and ignored. The answer is 200 with no body,
  as soon as the events' deliveries are stored.

The notification carries ids only: the lead's answers (e-mail, phone, custom questions) are read
from the Graph API by the `meta_lead` tag (lead.py), which turns them into a `lead_details` event.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import msgspec

from sgtm.kit import inbound
from sgtm.plugin import (
    BadRequest,
    Client,
    ClientContext,
    ClientResponse,
    EventData,
    HitRequest,
    PersonalData,
    Secret,
    hookimpl,
)

from .lead import MetaLeadTag

EVENT_NAME = "generate_lead"
SIGNATURE_HEADER = "x-hub-signature-256"
MAX_LEADS = 500  # per notification; Meta batches a few, the core runs at most 500 events
ID_FIELDS = {
    "lead_id": "leadgen_id",
    "form_id": "form_id",
    "ad_id": "ad_id",
    "adgroup_id": "adgroup_id",
    "page_id": "page_id",
}
_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+")
_CHALLENGE = re.compile(r"[A-Za-z0-9._~-]{1,256}")
_ID = re.compile(r"[0-9]{1,32}")
MIN_SECRET_CHARS = 8


class MetaLeadgenSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The token typed into the app dashboard's Webhooks "Verify Token" field.
    verify_token: Secret
    # The app's secret (App Dashboard > Settings > Basic): Meta signs notifications with it.
    app_secret: Secret
    path: str = "/webhooks/meta-ads"
    # How long a leadgen_id is remembered (Meta retries failed deliveries for 36 hours).
    id_ttl: int = 7 * 86400
    max_body_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        if not _PATH.fullmatch(self.path):
            raise ValueError(f"path: {self.path!r} is not a path such as /webhooks/meta-ads")
        for name in ("verify_token", "app_secret"):
            if len(getattr(self, name)) < MIN_SECRET_CHARS:
                raise ValueError(f"{name}: shorter than {MIN_SECRET_CHARS} characters")
        if not 1 <= self.id_ttl <= 90 * 86400:
            raise ValueError("id_ttl: 1 second to 90 days")
        if not 1024 <= self.max_body_bytes <= 16 * 1024 * 1024:
            raise ValueError("max_body_bytes: 1024 to 16777216")


class MetaLeadgenClient(Client[MetaLeadgenSettings]):
    name = "meta_leadgen"
    Settings = MetaLeadgenSettings
    description = "Meta lead ads webhook: verification handshake, signed leadgen notifications"

    def claim(self, request: HitRequest, settings: MetaLeadgenSettings) -> bool:
        return request.path == settings.path

    def parse(
        self, request: HitRequest, settings: MetaLeadgenSettings, ctx: ClientContext
    ) -> list[EventData]:
        if request.method == "GET":
            challenge(request, settings)  # raises unless the handshake is right
            return []
        inbound.require_post(request)
        inbound.check_size(request, settings.max_body_bytes)
        given = request.headers.get(SIGNATURE_HEADER)
        if given is None:
            raise BadRequest("missing X-Hub-Signature-256", status=401)
        expected = "sha256=" + inbound.hmac_digest(settings.app_secret, request.body)
        if not inbound.same(expected, given.strip().lower()):
            raise BadRequest("invalid X-Hub-Signature-256", status=401)
        inbound.check_json_request(request, settings.max_body_bytes)
        return leads(leadgen_values(request.body), ctx)

    def respond(
        self,
        request: HitRequest,
        events: list[EventData],
        settings: MetaLeadgenSettings,
        ctx: ClientContext,
    ) -> ClientResponse:
        if request.method == "GET":
            body = challenge(request, settings).encode()
            headers = {"content-type": "text/plain", "x-content-type-options": "nosniff"}
            return ClientResponse(status=200, headers=headers, body=body)
        return ClientResponse(status=200)

    def dedupe_key(
        self, event: EventData, settings: MetaLeadgenSettings
    ) -> tuple[str, float] | None:
        return str(event["event_id"]), float(settings.id_ttl)

    def probe_requests(
        self, event: EventData, base: HitRequest, settings: MetaLeadgenSettings
    ) -> list[HitRequest]:
        """For `sgtm audit`: the signed notification of a `generate_lead` probe's lead. It carries
        ids only, so the probe's other personal data stays out, as on a real notification."""
        if event.get("event_name") != EVENT_NAME or graph_id(event.get("lead_id")) is None:
            return []
        value: dict[str, Any] = {
            field: found
            for key, field in ID_FIELDS.items()
            if (found := graph_id(event.get(key))) is not None
        }
        change = {"field": "leadgen", "value": value}
        entry = {"id": value.get("page_id", "0"), "changes": [change]}
        body = msgspec.json.encode({"object": "page", "entry": [entry]})
        headers = {
            "host": base.host or "",
            "content-type": "application/json",
            SIGNATURE_HEADER: "sha256=" + inbound.hmac_digest(settings.app_secret, body),
        }
        return [
            replace(
                base, method="POST", path=settings.path, query_string="", headers=headers, body=body
            )
        ]


def challenge(request: HitRequest, settings: MetaLeadgenSettings) -> str:
    """The challenge to echo, once the verification request is checked (BadRequest otherwise)."""
    query = request.query
    token = query.get("hub.verify_token", "")
    if query.get("hub.mode") != "subscribe" or not inbound.same(settings.verify_token, token):
        raise BadRequest("verification refused: wrong hub.mode or hub.verify_token", status=403)
    found = query.get("hub.challenge", "")
    if not _CHALLENGE.fullmatch(found):
        raise BadRequest("hub.challenge missing or not a plain token")
    return found


# A notification is decoded only as deep as the leadgen changes: the values of other changes
# (a page's feed, mentions ...) stay undecoded bytes, so a large notification of them costs a
# scan of the body, not a Python object per field.
_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])
_TEXT = msgspec.json.Decoder(str)


class _Change(msgspec.Struct):
    field: str | None = None
    value: msgspec.Raw = msgspec.Raw(b"null")  # msgspec takes Raw alone, not in a union


class _Entry(msgspec.Struct):
    changes: list[_Change] = []


class _Notification(msgspec.Struct):
    entry: list[_Entry]
    object: str | None = None


_NOTIFICATION = msgspec.json.Decoder(_Notification)


def leadgen_values(body: bytes) -> list[Any]:
    """The decoded `value` of every `leadgen` change of a `page` notification, in order."""
    try:
        body.decode("utf-8")
        typed = _NOTIFICATION.decode(body)  # the usual shape, in one pass of msgspec
    except (UnicodeDecodeError, msgspec.DecodeError, RecursionError):
        return _tolerant_leadgen_values(body)
    if typed.object != "page":
        return []
    return [
        inbound.decode_json(bytes(change.value), "body")
        for entry in typed.entry
        for change in entry.changes
        if change.field == "leadgen"
    ]


def _tolerant_leadgen_values(body: bytes) -> list[Any]:
    """`leadgen_values` for a notification with parts of unexpected types, which are skipped."""
    try:
        body.decode("utf-8")
        notification = _OBJECT.decode(body)
        entries = _ARRAY.decode(notification["entry"])
    except (UnicodeDecodeError, msgspec.DecodeError, RecursionError, KeyError):
        inbound.decode_json(body, "body")  # raises when the body is not usable JSON at all
        raise BadRequest("not a Graph API webhook notification (no entry list)") from None
    if _part(_TEXT, notification.get("object")) != "page":
        return []  # another object's notification: nothing for this client
    values: list[Any] = []
    for raw_entry in entries:
        entry = _part(_OBJECT, raw_entry) or {}
        for raw_change in _part(_ARRAY, entry.get("changes")) or []:
            change = _part(_OBJECT, raw_change) or {}
            if _part(_TEXT, change.get("field")) == "leadgen":
                found = change.get("value")
                values.append(None if found is None else inbound.decode_json(bytes(found), "body"))
    return values


def _part(decoder: msgspec.json.Decoder[Any], raw: msgspec.Raw | None) -> Any:
    """One undecoded part as the decoder's type, or None when it is absent or of another type."""
    if raw is None:
        return None
    try:
        return decoder.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None


def leads(values: list[Any], ctx: ClientContext) -> list[EventData]:
    """One `generate_lead` event per leadgen change value that names a lead."""
    out: list[EventData] = []
    for value in values:
        event = lead(value)
        if event is None:
            ctx.drop("meta_leadgen.invalid_change")
            continue
        out.append(event)
    if len(out) > MAX_LEADS:
        raise BadRequest(f"{len(out)} leads in one notification; at most {MAX_LEADS}", status=413)
    return out


def lead(value: Any) -> EventData | None:
    """The event of one change's `value`, or None without a usable `leadgen_id`. Ids arrive as
    numbers or strings: all become strings of digits."""
    if not isinstance(value, dict):
        return None
    event: EventData = {"event_name": EVENT_NAME}
    for key, field in ID_FIELDS.items():
        found = graph_id(value.get(field))
        if found is not None:
            event[key] = found
    if "lead_id" not in event:
        return None
    created = value.get("created_time")
    if isinstance(created, int) and not isinstance(created, bool) and 0 < created < 2**40:
        event["created_time"] = created
    event["event_id"] = event["lead_id"]
    return event


def graph_id(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    return value if isinstance(value, str) and _ID.fullmatch(value) else None


@hookimpl
def register_client_types(register: Callable[[Any], None]) -> None:
    register(MetaLeadgenClient())


@hookimpl
def register_tag_types(register: Callable[[Any], None]) -> None:
    register(MetaLeadTag())


@hookimpl
def register_personal_data(register: Callable[[PersonalData], None]) -> None:
    # Meta's id of one person's lead form answers: what the notification carries and the
    # `meta_lead` tag reads the answers with.
    register(
        PersonalData(
            category="lead_id", name="lead_id", value="8806417302551930", event_keys=("lead_id",)
        )
    )
