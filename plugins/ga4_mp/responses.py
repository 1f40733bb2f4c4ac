"""What a Measurement Protocol answer means.

Production (`/mp/collect`) answers 2xx to anything it received, malformed or not, and has no
dedup key: a 2xx is final (never resent). The validation server (`/debug/mp/collect`, the
`validate` setting) answers 200 with `{"validationMessages": [{"fieldPath", "description",
"validationCode"}]}`; a non-empty list makes the delivery dead with the messages as its reason.
408, 429 and 5xx are retried (the engine honours Retry-After); other 4xx are dead: a wrong URL
or a proxy refusing the request, which resending cannot fix.
"""

from __future__ import annotations

from typing import Any

import msgspec

from sgtm.plugin import Verdict

MAX_REASON_CHARS = 1000


def classify(status: int, headers: dict[str, str], body: bytes) -> Verdict:
    if 200 <= status < 300:
        messages = validation_messages(body)
        if messages:
            return Verdict(outcome="dead", reason=_reason(messages))
        return Verdict(outcome="done")
    if status in (408, 429) or status >= 500:
        return Verdict(outcome="retry", reason=f"HTTP {status}")
    return Verdict(outcome="dead", reason=f"HTTP {status}: refused by GA4 or a proxy on the way")


def validation_messages(body: bytes) -> list[dict[str, Any]]:
    if not body.strip():
        return []
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return []
    found = decoded.get("validationMessages") if isinstance(decoded, dict) else None
    return [m for m in found if isinstance(m, dict)] if isinstance(found, list) else []


def _reason(messages: list[dict[str, Any]]) -> str:
    parts = [
        f"{m.get('fieldPath') or '-'}: {m.get('description') or '?'} ({m.get('validationCode')})"
        for m in messages
    ]
    return ("GA4 validation: " + "; ".join(parts))[:MAX_REASON_CHARS]
