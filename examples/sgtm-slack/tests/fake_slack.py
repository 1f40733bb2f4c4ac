"""A fake Slack incoming webhook, for `sgtm.testing`'s MockTransport and FakeVendor: it refuses
what Slack refuses and answers as Slack answers (`ok`, or one error word)."""

from __future__ import annotations

import json

from sgtm.testing import Received

# Top-level fields a webhook message may carry (Slack's message payload).
FIELDS = {
    "text",
    "channel",
    "username",
    "icon_emoji",
    "icon_url",
    "blocks",
    "attachments",
    "mrkdwn",
}

# What Slack answers for each status.
WORDS = {
    200: "ok",
    400: "invalid_payload",
    403: "action_prohibited",
    404: "no_service",
    410: "channel_is_archived",
    429: "rate_limited",
    500: "rollup_error",
}


def problems(got: Received) -> str | None:
    """Why Slack would refuse the request, or None."""
    if got.method != "POST" or not got.path.startswith("/services/"):
        return "not POST /services/..."
    if not got.headers.get("content-type", "").startswith("application/json"):
        return "not JSON"
    try:
        message = json.loads(got.body)
    except ValueError:
        return "body is not JSON"
    if not isinstance(message, dict) or not isinstance(message.get("text"), str):
        return "no text"
    if set(message) - FIELDS:
        return f"unknown fields {sorted(set(message) - FIELDS)}"
    return None


def reply(got: Received, status: int) -> bytes:
    return WORDS.get(status, "error").encode()
