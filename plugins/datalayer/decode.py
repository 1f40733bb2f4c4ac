"""Request -> raw event objects (JSON values, not yet event data). Pure functions.

Two senders reach the `datalayer` endpoint:

- sgtm.js (and any page or server): `POST` with a JSON object or a JSON array of objects, as
  `text/plain` (what `navigator.sendBeacon` sends for a string) or `application/json`.
- Stape's Data Tag (`is_data_tag`: every request it sends has `?v=<protocol version>`):
  `GET ?v=2&event=<name>&dtdc=<base64 of a JSON object>` (or `dtcd=<JSON>`, or plain query
  parameters), and `POST ?v=2&event=<name>` with a JSON object body. Query parameters are the
  base of the event and the body's keys win, as in Stape's Data Client.

Everything that cannot be used raises `BadRequest` with a message that says why (400, or 415 for
another Content-Type). Limits: `sgtm.kit.inbound.MAX_DEPTH` nested objects/arrays, checked
without recursion.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from sgtm.kit.inbound import decode_json
from sgtm.plugin import BadRequest, HitRequest

# What a sendBeacon string, a JSON Blob and a fetch without a Content-Type send.
CONTENT_TYPES = frozenset({"text/plain", "application/json", ""})
# Query parameters of the Data Tag protocol that carry data, not event fields.
DATA_PARAMS = ("dtdc", "dtcd")


def is_data_tag(request: HitRequest) -> bool:
    return request.method == "GET" or "v" in request.query


def entries(request: HitRequest) -> list[Any]:
    """The raw events of the request, each a JSON value (the caller checks they are objects)."""
    if request.method == "GET":
        return [query_event(request)]
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in CONTENT_TYPES:
        raise BadRequest(
            f"unsupported Content-Type {media_type!r}: send text/plain or application/json",
            status=415,
        )
    data_tag = is_data_tag(request)
    if not request.body.strip():
        if data_tag:
            return [query_event(request)]  # a Data Tag POST may carry everything in its URL
        raise BadRequest("empty body: send a JSON object or an array of objects")
    found = decode_json(request.body, "body")
    if isinstance(found, dict):
        found = [found]
    elif not isinstance(found, list):
        raise BadRequest("body must be a JSON object or an array of objects")
    elif not found:
        raise BadRequest("empty array: no events")
    if data_tag:
        base = query_event(request)
        return [{**base, **entry} if isinstance(entry, dict) else entry for entry in found]
    return found


def query_event(request: HitRequest) -> dict[str, Any]:
    """The Data Tag's query parameters as one event; `dtdc` / `dtcd` expanded (they win)."""
    event: dict[str, Any] = {k: v for k, v in request.query.items() if k not in DATA_PARAMS}
    if request.method != "GET":
        return event  # Stape reads dtdc/dtcd from GET requests only
    if "dtdc" in request.query:
        raw = _base64(request.query["dtdc"])
        event.update(_object(decode_json(raw, "dtdc"), "dtdc"))
    if "dtcd" in request.query:
        event.update(_object(decode_json(request.query["dtcd"].encode(), "dtcd"), "dtcd"))
    return event


def _base64(text: str) -> bytes:
    """Standard or URL-safe base64, padding optional (GTM's toBase64 is standard, padded; a `+`
    that reached the query string unescaped has become a space)."""
    cleaned = text.strip().replace(" ", "+").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("dtdc is not base64") from None


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must hold a JSON object")
    return value
