"""What the WhatsApp Cloud API's answers mean. Meta says to branch on the error `code` (and
`error_data.details`), not the HTTP status or the title; the envelope is the Graph API's
`{"error": {"message", "type", "code", "error_data": {"details"}, "fbtrace_id"}}`.

Retried: 1, 2 (unknown or temporary), 131000 (something went wrong), 130429 (the number's
throughput), 131056 (too many messages to one recipient: WhatsApp allows about one every 6 s),
4 (the app's Graph API call rate). Dead: the re-engagement window (131047), an undeliverable
recipient (131026), a template that does not exist or is not approved in that language (132001),
a parameter count that does not match (132000), a parameter problem (131008, 100, 132018), spam
and marketing limits (131048, 131049: not before tomorrow), a policy block or locked account (368,
131031), and token or permission errors (0, 3, 10, 190, 200-299). Any other code follows the HTTP
status (5xx retried, 4xx dead). 200 means accepted, not delivered.
"""

from __future__ import annotations

from typing import Any

from sgtm.kit.http import json_or_none
from sgtm.plugin import Verdict, default_classify

PAIR_RATE_WAIT = 6.0
APP_RATE_WAIT = 60.0
RETRY = {1: None, 2: None, 131000: None, 130429: None, 131056: PAIR_RATE_WAIT, 4: APP_RATE_WAIT}
DEAD = frozenset(
    {
        0,
        3,
        10,
        100,
        190,
        368,
        131008,
        131026,
        131031,
        131047,
        131048,
        131049,
        132000,
        132001,
        132018,
    }
)
MAX_REASON_CHARS = 500


def classify(status: int, headers: dict[str, str], body: bytes) -> Verdict:
    if 200 <= status < 300:
        return Verdict(outcome="done")
    code, reason = error(json_or_none(body))
    reason = f"{status} {reason}".strip()[:MAX_REASON_CHARS]
    if code in RETRY:
        return Verdict(outcome="retry", retry_after=RETRY[code], reason=reason)
    if code in DEAD or (code is not None and 200 <= code <= 299):
        return Verdict(outcome="dead", reason=reason)
    return Verdict(outcome=default_classify(status), reason=reason)


def error(data: Any) -> tuple[int | None, str]:
    """(code, "code message: details") of a Graph API error envelope."""
    found = data.get("error") if isinstance(data, dict) else None
    if not isinstance(found, dict):
        return None, ""
    code = found.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    details = (
        found.get("error_data", {}).get("details")
        if isinstance(found.get("error_data"), dict)
        else None
    )
    message = str(found.get("message", ""))
    text = f"{code} {message}" + (f": {details}" if details and details != message else "")
    return code, text.strip()
