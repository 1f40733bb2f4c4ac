"""What a Graph API answer to `POST /{pixel}/events` means (reference: meta-capi.md §4).

Success is `{"events_received": N, "messages": [], "fbtrace_id": ...}`. Errors carry
`{"error": {"message", "type", "code", "error_subcode", "error_user_title", "error_user_msg",
"is_transient", "fbtrace_id"}}`, and the code decides, not the HTTP status:

| code                               | verdict                                              |
|------------------------------------|------------------------------------------------------|
| 4, 17, 32, 341, 613, 80004 (limits) | retry after the Business-Use-Case wait, else 60 s   |
| 1, 2, or `is_transient: true`      | retry (backoff)                                      |
| 190 (token)                        | dead: the access token is expired, revoked or wrong  |
| 10, 200-299 (permissions)          | dead: the token may not send to this pixel           |
| 2635 (deprecated API version)      | dead: api_version is no longer served                |
| 100 (invalid parameter), others    | dead, with Meta's message                            |

Without an error body the HTTP status decides (timeouts and 5xx retry; see sgtm.plugin).
Reasons never contain the request (so never a token or PII): Meta's message, code and trace id.

Meta refuses a whole batch for one bad event. When its message names that event
(`The parameter $['data'][3]['custom_data']['contents'] must be an array.`), only that event is
dead; the others are retried without it (`classify_batch`).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from sgtm.plugin import Verdict, default_classify

THROTTLED = frozenset({4, 17, 32, 341, 613, 80004})
TRANSIENT = frozenset({1, 2})
TOKEN = 190
DEPRECATED_VERSION = 2635  # "You are calling a deprecated version of the Ads API"
PERMISSION = frozenset({10, *range(200, 300)})
DEFAULT_THROTTLE_WAIT = 60.0
_DATA_INDEX_RE = re.compile(r"\$\['data'\]\[([0-9]+)\]")
MAX_MESSAGE_CHARS = 300  # Meta's own text, cut: a dead letter's reason stays readable


def classify(status: int, headers: dict[str, str], body: bytes) -> Verdict:
    error = _error(body)
    if error is None:
        outcome = default_classify(status)
        if outcome == "done":
            return Verdict(outcome="done")
        return Verdict(outcome=outcome, retry_after=_retry_after(headers), reason=f"HTTP {status}")
    code = error.get("code")
    detail = _detail(status, error)
    if code == TOKEN:
        return Verdict(
            outcome="dead",
            reason="access token refused (expired, revoked or not allowed for this pixel): "
            f"create a new Conversions API token and set it in the container; {detail}",
        )
    if code == DEPRECATED_VERSION:
        return Verdict(
            outcome="dead",
            reason="api_version is no longer served by Meta: set the tag's api_version to a "
            f"current Marketing API version (docs/tags/meta_capi.md); {detail}",
        )
    if code in PERMISSION:
        return Verdict(
            outcome="dead",
            reason=f"permission denied: the token may not send events to this pixel; {detail}",
        )
    if code in THROTTLED:
        wait = _business_use_case_wait(headers) or _retry_after(headers) or DEFAULT_THROTTLE_WAIT
        return Verdict(outcome="retry", retry_after=wait, reason=f"rate limited; {detail}")
    if error.get("is_transient") is True or code in TRANSIENT:
        return Verdict(
            outcome="retry", retry_after=_retry_after(headers), reason=f"transient; {detail}"
        )
    if code == 100 and error.get("error_subcode") == 33:
        return Verdict(
            outcome="dead", reason=f"unknown pixel or no access to it: check pixel_id; {detail}"
        )
    if 200 <= status < 300 or code is not None:
        return Verdict(outcome="dead", reason=f"rejected; {detail}")
    outcome = default_classify(status)
    return Verdict(outcome=outcome, retry_after=_retry_after(headers), reason=detail)


def classify_batch(status: int, headers: dict[str, str], body: bytes, count: int) -> list[Verdict]:
    """One verdict per event of a merged request (in `data` order)."""
    verdict = classify(status, headers, body)
    error = _error(body)
    index = _refused_index(error) if verdict.outcome == "dead" and error else None
    if index is None or count == 1 or index >= count:
        return [verdict] * count
    others = Verdict(
        outcome="retry",
        reason=f"Meta refused the batch for data[{index}] alone; resent without it",
    )
    return [verdict if i == index else others for i in range(count)]


def _refused_index(error: dict[str, Any]) -> int | None:
    """The event an invalid-parameter error names, if it names exactly one."""
    if error.get("code") != 100:
        return None
    text = f"{error.get('error_user_msg') or ''} {error.get('message') or ''}"
    found = {int(match) for match in _DATA_INDEX_RE.findall(text)}
    return found.pop() if len(found) == 1 else None


def _error(body: bytes) -> dict[str, Any] | None:
    try:
        decoded = msgspec.json.decode(body) if body else None
    except msgspec.DecodeError:
        return None
    error = decoded.get("error") if isinstance(decoded, dict) else None
    return error if isinstance(error, dict) else None


def _detail(status: int, error: dict[str, Any]) -> str:
    parts = [f"HTTP {status}"]
    code, subcode = error.get("code"), error.get("error_subcode")
    if code is not None:
        parts.append(f"code {code}" + (f"/{subcode}" if subcode is not None else ""))
    title = error.get("error_user_title")
    message = error.get("error_user_msg") or error.get("message")
    text = ": ".join(str(p) for p in (title, message) if p)
    if text:
        parts.append(text[:MAX_MESSAGE_CHARS])
    if error.get("fbtrace_id"):
        parts.append(f"fbtrace_id {error['fbtrace_id']}")
    return ", ".join(parts)


def _header(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _retry_after(headers: dict[str, str]) -> float | None:
    raw = _header(headers, "retry-after")
    try:
        seconds = float(raw) if raw is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds <= 86400 else None


def _business_use_case_wait(headers: dict[str, str]) -> float | None:
    """`X-Business-Use-Case-Usage`: {"<business id>": [{"estimated_time_to_regain_access":
    minutes, ...}]}; the longest wait, in seconds."""
    raw = _header(headers, "x-business-use-case-usage")
    try:
        usage = msgspec.json.decode(raw) if raw else None
    except msgspec.DecodeError:
        return None
    minutes = [
        entry.get("estimated_time_to_regain_access")
        for entries in (usage.values() if isinstance(usage, dict) else ())
        if isinstance(entries, list)
        for entry in entries
        if isinstance(entry, dict)
    ]
    waits = [m for m in minutes if isinstance(m, int | float) and not isinstance(m, bool)]
    longest = max(waits, default=0)
    return min(float(longest) * 60, 86400.0) if longest > 0 else None
