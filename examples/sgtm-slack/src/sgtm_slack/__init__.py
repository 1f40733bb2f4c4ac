"""sgtm-slack: a tag that posts events to a Slack incoming webhook.

Slack's incoming webhooks take `POST {"text": ...}` and answer `200 ok`, or an error word
(`invalid_payload`, `no_service`, `channel_is_archived`, `rate_limited`...) with a 4xx/5xx status.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from sgtm.plugin import (
    BuildContext,
    EventData,
    InvalidEvent,
    Outbound,
    Outcome,
    RateLimit,
    Secret,
    Tag,
    Verdict,
    default_classify,
    hookimpl,
)

__version__ = "1.0.0"


class SlackSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The webhook URL holds its token: a Secret is masked in logs and sealed in the outbox.
    webhook_url: Secret
    channel: str | None = None


class SlackTag(Tag[SlackSettings]):
    name = "slack"
    Settings = SlackSettings
    description = "Posts a message to a Slack incoming webhook."
    rate_limit = RateLimit(requests=1, per=1.0)  # Slack: about one message a second per webhook

    def build(self, event: EventData, settings: SlackSettings, ctx: BuildContext) -> list[Outbound]:
        value = event.get("value")
        if value is None:
            raise InvalidEvent("no value to report")
        currency = event.get("currency")
        if currency is not None and not (isinstance(currency, str) and len(currency) == 3):
            ctx.warn(f"currency {currency!r} is not an ISO 4217 code: left out")
            currency = None
        text = f"{event.get('event_name')}: {value} {currency or ''}".strip()
        payload: dict[str, Any] = {"text": escape(text)}
        if settings.channel:
            payload["channel"] = settings.channel
        return [
            Outbound(
                method="POST",
                url=settings.webhook_url,
                headers={"Content-Type": "application/json"},
                body=msgspec.json.encode(payload),
                destination="slack",  # one lane (and one rate limit) for the webhook
            )
        ]

    def dedupe_key(self, event: EventData, settings: SlackSettings) -> tuple[str, float] | None:
        """A purchase is posted once, however often the page sends it (for a day)."""
        transaction = event.get("transaction_id")
        return (f"purchase:{transaction}", 86400.0) if transaction else None

    def classify(self, status: int, headers: dict[str, str], body: bytes) -> Outcome | Verdict:
        outcome = default_classify(status)  # 429 and 5xx retried, other 4xx dead
        if outcome == "done":
            return outcome
        word = body[:100].decode("utf-8", "replace").strip()
        return Verdict(outcome=outcome, reason=f"slack answered {status}: {word}")


def escape(text: str) -> str:
    """Event values as Slack text: `<!channel>` from a hit must not notify a whole channel."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@hookimpl
def register_tag_types(register: Callable[[Tag[Any]], None]) -> None:
    register(SlackTag())
