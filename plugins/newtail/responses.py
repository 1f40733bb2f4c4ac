"""What a Newtail event API answer means.

Success is 202 (`{"messages": ["conversion will be processed soon"]}`, or no body for ad
events); any 2xx is done. 422 is a validation error with an Ajv list
(`[{"instancePath": "", "keyword": "required", "message": "must have required property
'user_id'", ...}]`): dead, and the list becomes the dead letter's reason. 408, 429 and 5xx are
retried (conversions are idempotent by order_id; an ad event resends the same signed URL, which
Newtail deduplicates). Other 4xx are dead (a 404 for an unknown or expired ad URL).
"""

from __future__ import annotations

from typing import Any

import msgspec

from sgtm.plugin import Verdict

MAX_REASON_CHARS = 1000
MAX_ERRORS_SHOWN = 10


def classify(status: int, headers: dict[str, str], body: bytes) -> Verdict:
    if 200 <= status < 300:
        return Verdict(outcome="done")
    if status == 422:
        return Verdict(outcome="dead", reason=_validation_reason(body))
    if status in (408, 429) or status >= 500:
        return Verdict(outcome="retry", reason=f"HTTP {status}")
    return Verdict(outcome="dead", reason=f"HTTP {status}: {_snippet(body)}".rstrip(": "))


def _validation_reason(body: bytes) -> str:
    errors = _errors(body)
    if not errors:
        return f"HTTP 422: {_snippet(body)}".rstrip(": ")
    parts = [
        f"{e.get('instancePath') or '/'} {e.get('message') or e.get('keyword') or '?'}"
        for e in errors[:MAX_ERRORS_SHOWN]
    ]
    more = len(errors) - MAX_ERRORS_SHOWN
    text = "Newtail refused the event (422): " + "; ".join(parts)
    return (text + (f"; and {more} more" if more > 0 else ""))[:MAX_REASON_CHARS]


def _errors(body: bytes) -> list[dict[str, Any]]:
    try:
        decoded = msgspec.json.decode(body) if body.strip() else None
    except msgspec.DecodeError:
        return []
    if isinstance(decoded, dict):  # some error envelopes wrap the list
        decoded = decoded.get("errors") or decoded.get("messages")
    return [e for e in decoded if isinstance(e, dict)] if isinstance(decoded, list) else []


def _snippet(body: bytes) -> str:
    return body[:200].decode("utf-8", "replace").strip()
