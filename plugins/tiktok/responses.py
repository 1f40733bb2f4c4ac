"""What TikTok's answer to `POST /open_api/v1.3/event/track/` means.

TikTok answers errors with HTTP 200 and a `code` in the body (`{"code", "message", "request_id",
"data"}`), so the code decides, not the status:

| code                         | verdict                                                        |
|------------------------------|----------------------------------------------------------------|
| 0                            | done                                                           |
| 20001 (partial success)      | done; TikTok names no event that failed, so nothing is resent  |
| 40100 (too many requests)    | retry after `Retry-After`, else 60 s                            |
| 40102, 40104, 40105 (token)  | dead: the access token is missing, expired or revoked          |
| 40001 (no permission)        | dead: the token's account may not send to this pixel           |
| 40002 (invalid parameter)    | dead: the event the message names (`data.3.…`) alone, if named |
| 5xxxx, 40700                 | retry (TikTok's side)                                          |
| other codes                  | dead, with TikTok's message                                    |

Without a code (an HTML error page, an empty body) the HTTP status decides (5xx and 429 retry).
Reasons hold TikTok's code, message and request id, never the request.
"""

from __future__ import annotations

import re
from typing import Any

from sgtm.kit.http import json_or_none
from sgtm.plugin import Verdict, default_classify

OK = 0
PARTIAL = 20001
THROTTLED = 40100
TOKEN = frozenset({40102, 40104, 40105})
PERMISSION = 40001
INVALID = 40002
TRANSIENT = frozenset({40700})
DEFAULT_THROTTLE_WAIT = 60.0
MAX_MESSAGE_CHARS = 300
# "data.3.properties.contents.0.content_id: Not a valid string" (older answers say "Batch.3").
_DATA_INDEX_RE = re.compile(r"\b(?:data|Batch)\.([0-9]+)\.")


def classify(status: int, headers: dict[str, str], body: bytes) -> Verdict:
    answer = json_or_none(body)
    code = answer.get("code") if isinstance(answer, dict) else None
    if not isinstance(code, int) or isinstance(code, bool):
        outcome = default_classify(status)
        if outcome == "done":  # a 2xx without TikTok's envelope: nothing says it was taken
            return Verdict(outcome="retry", reason=f"HTTP {status} without a code")
        return Verdict(outcome=outcome, retry_after=_retry_after(headers), reason=f"HTTP {status}")
    detail = _detail(status, answer)
    if code == OK:
        return Verdict(outcome="done")
    if code == PARTIAL:
        return Verdict(outcome="done", reason=f"partial success; {detail}")
    if code == THROTTLED:
        wait = _retry_after(headers) or DEFAULT_THROTTLE_WAIT
        return Verdict(outcome="retry", retry_after=wait, reason=f"rate limited; {detail}")
    if code in TOKEN:
        return Verdict(
            outcome="dead",
            reason="access token refused (missing, expired or revoked): generate a new Events "
            f"API token for the pixel and set it in the container; {detail}",
        )
    if code == PERMISSION:
        return Verdict(
            outcome="dead",
            reason=f"permission denied: the token's account may not send to this pixel; {detail}",
        )
    if code in TRANSIENT or 50000 <= code < 60000 or status >= 500:
        return Verdict(outcome="retry", retry_after=_retry_after(headers), reason=detail)
    return Verdict(outcome="dead", reason=f"rejected; {detail}")


def classify_batch(status: int, headers: dict[str, str], body: bytes, count: int) -> list[Verdict]:
    """One verdict per event of a merged request (in `data` order). TikTok refuses the whole
    batch for one bad event; when its message names it, that one is dead and the others are
    retried without it."""
    verdict = classify(status, headers, body)
    answer = json_or_none(body)
    code = answer.get("code") if isinstance(answer, dict) else None
    if verdict.outcome != "dead" or code != INVALID or count == 1:
        return [verdict] * count
    found = _DATA_INDEX_RE.search(str(answer.get("message", "")))
    if found is None or int(found[1]) >= count:
        return [verdict] * count
    blamed = int(found[1])
    retry = Verdict(outcome="retry", reason=f"another event of the batch was refused ({blamed})")
    return [verdict if i == blamed else retry for i in range(count)]


def _detail(status: int, answer: dict[str, Any]) -> str:
    message = str(answer.get("message") or "")[:MAX_MESSAGE_CHARS]
    parts = [f"HTTP {status}, code {answer.get('code')}"]
    if message:
        parts.append(message)
    if request_id := answer.get("request_id"):
        parts.append(f"request_id {str(request_id)[:64]}")
    return ", ".join(parts)


def _retry_after(headers: dict[str, str]) -> float | None:
    raw = {k.lower(): v for k, v in headers.items()}.get("retry-after")
    try:
        seconds = float(raw) if raw is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 < seconds <= 86400 else None
