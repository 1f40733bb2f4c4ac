"""`http_request`: a generic webhook tag (n8n, Slack, Zapier, a CRM's inbound endpoint).

By default it POSTs the event data as JSON. `body` may instead be a template string (sent as
text) or a mapping/list whose templated values are filled per event (sent as JSON, or as a form
with `content_type: application/x-www-form-urlencoded`): values are encoded for where they land,
so a value can never add a field. With `hmac_secret` (take it from the environment:
`"${WEBHOOK_SECRET}"`), a `sha256=<hex>` HMAC of the exact body bytes goes in `signature_header`,
as GitHub-style receivers expect. Every request carries an idempotency header: the event's
`event_id`, else an id drawn for this event, kept across retries.

The scheme and host of `url` cannot be templates: the event must never choose where a request
goes; values templated into its path and query are percent-encoded for their component.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import msgspec

from sgtm.plugin import (
    BuildContext,
    EventData,
    InvalidEvent,
    Outbound,
    Secret,
    Tag,
    Url,
    has_template,
    hookimpl,
    to_text,
)

FORM = "application/x-www-form-urlencoded"


class HttpRequestSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: Url
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, str] = {}
    body: Any = None
    content_type: str | None = None
    hmac_secret: Secret | None = None
    signature_header: str = "X-Sgtm-Signature"
    idempotency_header: str = "Idempotency-Key"
    timeout: float = 10.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)  # templates in scheme and host are refused at load (Url)
        # A URL that is one whole template is refused by the core at load, with its reason.
        if not self.url.startswith("{{") and (
            parts.scheme not in ("http", "https") or not parts.netloc
        ):
            raise ValueError(f"url: expected an http(s) URL, got {self.url!r}")
        if not 0 < self.timeout <= 120:
            raise ValueError("timeout: must be between 0 and 120 seconds")
        structured = "json" in (self.content_type or "") or (self.content_type or "").startswith(
            FORM
        )
        if structured and isinstance(self.body, str) and has_template(self.body):
            # Text spliced into JSON or a form could close a string and add fields of its own.
            raise ValueError(
                f"body: a {self.content_type} body with templates must be a mapping, whose"
                " values are encoded for you, not a string"
            )
        if (self.content_type or "").startswith(FORM) and not isinstance(self.body, dict):
            raise ValueError(f"body: a {FORM} body must be a mapping of field names to values")


class HttpRequestTag(Tag[HttpRequestSettings]):
    name = "http_request"
    Settings = HttpRequestSettings
    description = (
        "Sends the event (or a templated body) to any HTTP endpoint, optionally HMAC-signed."
    )

    def build(
        self, event: EventData, settings: HttpRequestSettings, ctx: BuildContext
    ) -> list[Outbound]:
        content_type: str | None
        if settings.body is None:
            body, content_type = msgspec.json.encode(event), "application/json"
        elif isinstance(settings.body, dict) and (settings.content_type or "").startswith(FORM):
            fields = {k: to_text(v) for k, v in settings.body.items()}
            body, content_type = urlencode(fields).encode(), FORM
        elif isinstance(settings.body, str):
            body, content_type = settings.body.encode(), "text/plain; charset=utf-8"
        else:
            try:
                body, content_type = msgspec.json.encode(settings.body), "application/json"
            except (TypeError, msgspec.EncodeError) as exc:
                raise InvalidEvent(f"body is not JSON-serializable: {exc}") from None
        if settings.method in ("GET", "DELETE") and settings.body is None:
            body, content_type = b"", None
        headers = dict(settings.headers)
        if content_type and (not headers or "content-type" not in {k.lower() for k in headers}):
            headers["Content-Type"] = settings.content_type or content_type
        event_id = event.get("event_id")
        # Without an event id, two genuine events with equal bodies are still two events: a
        # deduplicating receiver must not collapse them, so each gets an id of its own.
        key = str(event_id) if event_id else ctx.unique_id()
        headers[settings.idempotency_header] = key
        if settings.hmac_secret:
            digest = hmac.new(settings.hmac_secret.encode(), body, hashlib.sha256).hexdigest()
            headers[settings.signature_header] = f"sha256={digest}"
        return [
            Outbound(
                method=settings.method,
                url=settings.url,
                headers=headers,
                body=body,
                idempotency_key=key,
                timeout=settings.timeout,
            )
        ]


@hookimpl
def register_tag_types(register: Callable[[Any], None]) -> None:
    register(HttpRequestTag())
