"""What HubSpot's answers to a batch upsert mean, per input.

- 200 / 201: every input was created or updated.
- 207 (multi-status): `errors[]` lists what failed, each `{status, category, message, context}`
  with the failed inputs' `objectWriteTraceId`s in `context.objectWriteTraceId` (some errors name
  them by `context.ids` instead: the e-mails). Those inputs get the error's verdict, the others
  are done.
- 400 / 409 for the whole request: the inputs the error names are dead, the others are retried
  (they failed only because the batch did). An error that names no input is dead for all: a
  property that does not exist, a bad lifecycle stage value, fails every input alike.
- 429: HubSpot's 10-second window (`policyName: TEN_SECONDLY_ROLLING`) or the daily limit
  (`DAILY`): retried after the window or an hour. 423 (record locked, wait at least 2 s), 477
  (migration, Retry-After), 5xx: retried. 401, 403 and other 4xx: dead.

Error categories retried when an input fails alone: RATE_LIMITS, LOCKED, and the transient ones
HubSpot names; VALIDATION_ERROR, CONFLICT, OBJECT_NOT_FOUND and any other category are dead.
"""

from __future__ import annotations

from typing import Any

from sgtm.kit.http import json_or_none
from sgtm.plugin import Outcome, Verdict, default_classify

TEN_SECONDS = 10.0
DAILY_WAIT = 3600.0
LOCK_WAIT = 2.0
RETRY_CATEGORIES = frozenset({"RATE_LIMITS", "LOCKED", "TEMPORARY_ERROR", "TIMEOUT"})
MAX_REASON_CHARS = 500


def classify(status: int, headers: dict[str, str], body: bytes) -> Outcome | Verdict:
    """The verdict for a whole response (a request of one input, or a failure of the batch)."""
    if 200 <= status < 300:
        return "done"
    data = json_or_none(body)
    reason = f"{status} {_describe(data)}".strip()[:MAX_REASON_CHARS]
    if status == 429:
        daily = isinstance(data, dict) and data.get("policyName") == "DAILY"
        wait = DAILY_WAIT if daily else _interval(headers)
        return Verdict(outcome="retry", retry_after=wait, reason=reason)
    if status == 423:
        return Verdict(outcome="retry", retry_after=LOCK_WAIT, reason=reason)
    if status == 477 or default_classify(status) == "retry":
        return Verdict(outcome="retry", reason=reason)
    return Verdict(outcome="dead", reason=reason)


def classify_inputs(
    status: int, headers: dict[str, str], body: bytes, inputs: list[dict[str, Any]]
) -> dict[str, Outcome | Verdict]:
    """A verdict per input e-mail."""
    if status in (200, 201):
        return dict.fromkeys((i["id"] for i in inputs), "done")
    data = json_or_none(body)
    if status == 207:
        failed = _failed_inputs(data, inputs)
        return {i["id"]: failed.get(i["id"], "done") for i in inputs}
    whole = classify(status, headers, body)
    if status in (400, 409) and len(inputs) > 1:
        named = _failed_inputs(data, inputs)
        if named:
            retry = Verdict(
                outcome="retry", reason=f"{status}: another contact of the batch failed"
            )
            return {i["id"]: named.get(i["id"], retry) for i in inputs}
    return dict.fromkeys((i["id"] for i in inputs), whole)


def _failed_inputs(data: Any, inputs: list[dict[str, Any]]) -> dict[str, Verdict]:
    """The inputs HubSpot's error list (or single error) names, each with its verdict."""
    if not isinstance(data, dict):
        return {}
    found = data.get("errors")
    errors: list[Any] = found if isinstance(found, list) else [data]
    by_trace = {i.get("objectWriteTraceId"): i["id"] for i in inputs}
    emails = {i["id"] for i in inputs}
    out: dict[str, Verdict] = {}
    for error in errors:
        if not isinstance(error, dict):
            continue
        verdict = _verdict(error)
        raw = error.get("context")
        context: dict[str, Any] = raw if isinstance(raw, dict) else {}
        for trace in _strings(context.get("objectWriteTraceId")):
            if trace in by_trace:
                out.setdefault(by_trace[trace], verdict)
        for email in _strings(context.get("ids")) + _strings(context.get("id")):
            if email.lower() in emails:
                out.setdefault(email.lower(), verdict)
    return out


def _verdict(error: dict[str, Any]) -> Verdict:
    category = str(error.get("category", ""))
    reason = f"{category}: {error.get('message', '')}".strip(": ")[:MAX_REASON_CHARS]
    if category in RETRY_CATEGORIES:
        return Verdict(outcome="retry", reason=reason)
    return Verdict(outcome="dead", reason=reason or "refused by HubSpot")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _describe(data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    return f"{data.get('category', '')}: {data.get('message', '')}".strip(": ")


def _interval(headers: dict[str, str]) -> float:
    """HubSpot's window from X-HubSpot-RateLimit-Interval-Milliseconds, else 10 s."""
    raw = headers.get("x-hubspot-ratelimit-interval-milliseconds", "")
    if raw.isascii() and raw.isdigit() and 0 < int(raw) <= 86_400_000:
        return int(raw) / 1000
    return TEN_SECONDS
