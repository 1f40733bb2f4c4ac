"""`http_request`: a generic webhook tag (n8n, Slack, Zapier, a CRM's inbound endpoint).

By default it POSTs the event data as JSON. `body` may instead be a template string (sent as
text) or a mapping/list whose templated values are filled per event (sent as JSON). With
`hmac_secret` (take it from the environment: `"${WEBHOOK_SECRET}"`), a `sha256=<hex>` HMAC of the
exact body bytes goes in `signature_header`, as GitHub-style receivers expect. Every request carries
an idempotency header: the event's `event_id`, else a hash of the body, so retries repeat it.

The host of `url` cannot be a template: the event must never choose where a request goes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from sgtm.plugin import BuildContext, EventData, InvalidEvent, Outbound, Tag, hookimpl


class HttpRequestSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, str] = {}
    body: Any = None
    content_type: str | None = None
    hmac_secret: str | None = None
    signature_header: str = "X-Sgtm-Signature"
    idempotency_header: str = "Idempotency-Key"
    timeout: float = 10.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if "{{" in parts.scheme or "{{" in parts.netloc:
            raise ValueError(
                "url: the scheme and host cannot be templates, only the path and query"
            )
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"url: expected an http(s) URL, got {self.url!r}")
        if not 0 < self.timeout <= 120:
            raise ValueError("timeout: must be between 0 and 120 seconds")


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
        elif isinstance(settings.body, str):
            body, content_type = settings.body.encode(), "text/plain; charset=utf-8"
        else:
            try:
                body, content_type = msgspec.json.encode(settings.body), "application/json"
            except (TypeError, msgspec.EncodeError) as exc:
                raise InvalidEvent(f"body is not JSON-serializable: {exc}") from None
        if settings.method in ("GET", "DELETE") and settings.body is None:
            body, content_type = b"", None
        headers = {k: v for k, v in settings.headers.items()}
        if content_type and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = settings.content_type or content_type
        event_id = event.get("event_id")
        key = (
            str(event_id)
            if event_id
            else hashlib.sha256(body or msgspec.json.encode(event)).hexdigest()[:32]
        )
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
