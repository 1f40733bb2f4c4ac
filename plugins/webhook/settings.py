"""The `webhook` client's settings, checked when the container loads."""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from sgtm.kit.inbound import hmac_digest, rate
from sgtm.plugin import Secret

MIN_SECRET_CHARS = 16
MAX_EVENT_NAME_CHARS = 100
_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+")
_HEADER = re.compile(r"[A-Za-z0-9-]{1,64}")
_DOTTED = re.compile(r"[^.\s]+(\.[^.\s]+)*")
_PLACEHOLDER = re.compile(r"\{(body|timestamp)\}")
# Set by the client itself: a map cannot write them.
RESERVED_TARGETS = frozenset({"event_name", "event_id"})


class Signature(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An HMAC of the raw body (and, with `timestamp_header`, of the sender's timestamp)."""

    # The shared secret, from the environment: "${CRM_WEBHOOK_SECRET}".
    secret: Secret
    header: str = "X-Webhook-Signature"
    # What precedes the digest in the header ("sha256=" for GitHub-style senders, "" for none).
    prefix: str = "sha256="
    algorithm: Literal["sha256", "sha1", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    # A header with the Unix time of sending (seconds, or milliseconds); requests further than
    # `tolerance` seconds from now are refused, so a captured request cannot be replayed later.
    timestamp_header: str | None = None
    tolerance: int = 300
    # What is signed: "{body}", or with a timestamp e.g. "{timestamp}.{body}" (Stripe's form)
    # or "v0:{timestamp}:{body}" (Slack's).
    signed_payload: str = "{body}"

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_SECRET_CHARS:
            raise ValueError(f"secret: shorter than {MIN_SECRET_CHARS} characters")
        for name in ("header", "timestamp_header"):
            value = getattr(self, name)
            if value is not None and not _HEADER.fullmatch(value):
                raise ValueError(f"{name}: {value!r} is not a header name")
        fields = _PLACEHOLDER.findall(self.signed_payload)
        rest = _PLACEHOLDER.sub("", self.signed_payload)
        if fields.count("body") != 1 or "{" in rest or "}" in rest:
            raise ValueError("signed_payload: must hold {body} once and may hold {timestamp}")
        if ("timestamp" in fields) != (self.timestamp_header is not None):
            raise ValueError("timestamp_header: goes with {timestamp} in signed_payload")
        if not 1 <= self.tolerance <= 86400:
            raise ValueError("tolerance: 1 to 86400 seconds")

    def value(self, timestamp: str, body: bytes) -> str:
        """What `header` holds for this body (and timestamp) when the sender knows the secret."""
        head, _, tail = self.signed_payload.partition("{body}")
        message = b"".join(
            (
                head.replace("{timestamp}", timestamp).encode(),
                body,
                tail.replace("{timestamp}", timestamp).encode(),
            )
        )
        return self.prefix + hmac_digest(self.secret, message, self.algorithm, self.encoding)


class WebhookSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    path: str
    signature: Signature | None = None
    # Keys accepted in `api_key_header`; several, so a key can be rotated without downtime.
    api_keys: list[Secret] = []
    api_key_header: str = "X-API-Key"
    # The event name: fixed, or read from a field of the JSON (a dot path).
    event_name: str | None = None
    event_name_field: str | None = None
    # Event data path -> dot path into the JSON. Empty: the JSON object is the event data.
    map: dict[str, str] = {}
    # A dot path to the sender's id of the event: it becomes `event_id`, and a resend of the same
    # id within `id_ttl` seconds is acknowledged without running any tag again.
    id_field: str | None = None
    id_ttl: int = 7 * 86400
    # Per sender: an API key, else the peer address. null: no limit.
    rate_limit: str | None = "100/minute"
    max_body_bytes: int = 256 * 1024
    max_events: int = 100

    def __post_init__(self) -> None:
        if not _PATH.fullmatch(self.path):
            raise ValueError(f"path: {self.path!r} is not a path such as /webhooks/crm")
        if self.signature is None and not self.api_keys:
            raise ValueError(
                "path: a webhook needs `signature` or `api_keys`: unauthenticated senders "
                "are refused"
            )
        for key in self.api_keys:
            if len(key) < MIN_SECRET_CHARS:
                raise ValueError(f"api_keys: a key is shorter than {MIN_SECRET_CHARS} characters")
        if not _HEADER.fullmatch(self.api_key_header):
            raise ValueError(f"api_key_header: {self.api_key_header!r} is not a header name")
        if (self.event_name is None) == (self.event_name_field is None):
            raise ValueError("event_name: give event_name or event_name_field (one of them)")
        if self.event_name is not None and not 0 < len(self.event_name) <= MAX_EVENT_NAME_CHARS:
            raise ValueError(f"event_name: 1 to {MAX_EVENT_NAME_CHARS} characters")
        for name in ("event_name_field", "id_field"):
            value = getattr(self, name)
            if value is not None and not _DOTTED.fullmatch(value):
                raise ValueError(f"{name}: {value!r} is not a dot path such as lead.id")
        for target, source in self.map.items():
            if not _DOTTED.fullmatch(target):
                raise ValueError(f"map: {target!r} is not an event data path")
            if target in RESERVED_TARGETS:
                raise ValueError(f"map: {target} is set by the client (event_name*, id_field)")
            if not _DOTTED.fullmatch(source):
                raise ValueError(f"map: {target}: {source!r} is not a dot path into the JSON")
        if self.rate_limit is not None:
            try:
                rate(self.rate_limit)
            except ValueError as exc:
                raise ValueError(f"rate_limit: {exc}") from None
        if not 1 <= self.id_ttl <= 90 * 86400:
            raise ValueError("id_ttl: 1 second to 90 days")
        if not 1024 <= self.max_body_bytes <= 16 * 1024 * 1024:
            raise ValueError("max_body_bytes: 1024 to 16777216")
        if not 1 <= self.max_events <= 500:
            raise ValueError("max_events: 1 to 500")
