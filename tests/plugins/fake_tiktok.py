"""A fake TikTok Events API 2.0 for `tests.servers.FakeVendor`: the documented request as a check,
and TikTok's answers (HTTP 200 with a `code`) as replies.

`problems(received)` lists what TikTok would refuse in `POST /open_api/v1.3/event/track/`
(reference destinations/tiktok-events-api.md: TikTok's request fields as Segment, RudderStack
and Stape send them): the `Access-Token` header and JSON; `event_source` `web` with the pixel
code as `event_source_id`; `data` of 1..1000 events, each with `event`, an integer
`event_time` in seconds that is not in the future, a string `event_id`; `user` with
`email` / `phone` / `external_id` (a string or a list) and `first_name` / `last_name` /
`zip_code` as lowercase SHA-256 hex, `city` / `state` / `country` in clear (never hashed),
`ttclid`, `ttp`, an `ip` without a port, `user_agent`; `properties` with `contents[]` whose
`content_id` is a string ("Not a valid string" otherwise) and `quantity` an integer, a number
`value` only with an ISO 4217 `currency`; `page.url` http(s); a boolean `limited_data_use`.
Unknown keys are refused, as TikTok's schema validation does.

`fake_tiktok()` makes the vendor: valid requests get `{"code": 0, "message": "OK", ...}`,
invalid ones `{"code": 40002, "message": "data.N.<field>: <problem>"}` with HTTP 200, as TikTok
answers, and the problems are kept in `vendor.errors`.
"""

from __future__ import annotations

import ipaddress
import re
import time
from typing import Any

import msgspec

from tests.servers import FakeVendor, Received

PATH = "/open_api/v1.3/event/track/"
MAX_EVENTS = 1000
REQUEST_KEYS = {"event_source", "event_source_id", "test_event_code", "partner_name", "data"}
EVENT_KEYS = {
    "event",
    "event_time",
    "event_id",
    "user",
    "properties",
    "page",
    "limited_data_use",
    "app",
    "ad",
    "lead",
}
HASHED = ("email", "phone", "external_id", "first_name", "last_name", "zip_code")
LISTS = ("email", "phone", "external_id")
PLAIN = ("city", "state", "country", "ttclid", "ttp", "ip", "user_agent", "locale")
PROPERTY_KEYS = {
    "contents",
    "content_type",
    "content_ids",
    "currency",
    "value",
    "num_items",
    "order_id",
    "shop_id",
    "query",
    "search_string",
    "description",
    "predicted_ltv",
    "delivery_category",
}
CONTENT_KEYS = {"content_id", "content_name", "content_category", "brand", "price", "quantity"}
SHA256_RE = re.compile(r"[0-9a-f]{64}")
CURRENCY_RE = re.compile(r"[A-Z]{3}")
LOCATION_RE = re.compile(r"[a-z0-9]+")


def problems(received: Received, now: float | None = None) -> str | None:
    """The first thing TikTok would refuse in this request, or None."""
    found = list(_request_problems(received, time.time() if now is None else now))
    return found[0] if found else None


def _request_problems(got: Received, now: float) -> Any:
    if got.method != "POST" or got.path != PATH:
        yield f"not POST {PATH}: {got.method} {got.path}"
        return
    if not got.headers.get("access-token"):
        yield "Access-Token header is required"
    if not got.headers.get("content-type", "").startswith("application/json"):
        yield "content-type is not application/json"
    try:
        body = msgspec.json.decode(got.body)
    except msgspec.DecodeError:
        yield "body is not JSON"
        return
    if not isinstance(body, dict):
        yield "body is not an object"
        return
    for key in sorted(set(body) - REQUEST_KEYS):
        yield f"{key}: unknown field"
    if body.get("event_source") != "web":
        yield "event_source: must be web for a pixel"
    if not isinstance(body.get("event_source_id"), str) or not body["event_source_id"]:
        yield "event_source_id: the pixel code is required"
    for key in ("test_event_code", "partner_name"):
        if key in body and not isinstance(body[key], str):
            yield f"{key}: Not a valid string"
    data = body.get("data")
    if not isinstance(data, list) or not data:
        yield "data: must be a non-empty array"
        return
    if len(data) > MAX_EVENTS:
        yield f"data: {len(data)} events; at most {MAX_EVENTS}"
    for i, event in enumerate(data):
        for problem in _event_problems(event, now):
            yield f"data.{i}.{problem}"


def _event_problems(event: Any, now: float) -> Any:
    if not isinstance(event, dict):
        yield "event: not an object"
        return
    for key in sorted(set(event) - EVENT_KEYS):
        yield f"{key}: unknown field"
    if not isinstance(event.get("event"), str) or not event["event"]:
        yield "event: required"
    seconds = event.get("event_time")
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        yield "event_time: must be an integer (Unix seconds)"
    elif seconds > now + 60:
        yield "event_time: in the future (milliseconds?)"
    if "event_id" in event and (not isinstance(event["event_id"], str) or not event["event_id"]):
        yield "event_id: Not a valid string"
    if "limited_data_use" in event and not isinstance(event["limited_data_use"], bool):
        yield "limited_data_use: must be a boolean"
    user = event.get("user", {})
    if not isinstance(user, dict):
        yield "user: not an object"
    else:
        yield from _user_problems(user)
    properties = event.get("properties", {})
    if not isinstance(properties, dict):
        yield "properties: not an object"
    else:
        yield from _property_problems(properties)
    page = event.get("page", {})
    if not isinstance(page, dict) or set(page) - {"url", "referrer"}:
        yield "page: only url and referrer"
    elif "url" in page and not str(page["url"]).startswith(("http://", "https://")):
        yield "page.url: must be an http(s) URL"


def _user_problems(user: dict[str, Any]) -> Any:
    for key, value in user.items():
        if key in HASHED:
            values = value if isinstance(value, list) and key in LISTS else [value]
            if not values or not all(isinstance(v, str) and SHA256_RE.fullmatch(v) for v in values):
                yield f"user.{key}: must be SHA-256 hashed (lowercase hex)"
        elif key in PLAIN:
            if not isinstance(value, str) or not value:
                yield f"user.{key}: Not a valid string"
            elif SHA256_RE.fullmatch(value):
                yield f"user.{key}: must not be hashed"
        else:
            yield f"user.{key}: unknown field"
    for key in ("city", "state", "country"):
        if isinstance(user.get(key), str) and not LOCATION_RE.fullmatch(user[key]):
            yield f"user.{key}: letters and digits, lowercase"
    ip = user.get("ip")
    if isinstance(ip, str):
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            yield f"user.ip: {ip!r} is not an IP address"


def _property_problems(properties: dict[str, Any]) -> Any:
    for key in sorted(set(properties) - PROPERTY_KEYS):
        yield f"properties.{key}: unknown field"
    value, currency = properties.get("value"), properties.get("currency")
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
        yield "properties.value: Not a valid number"
    if value is not None and currency is None:
        yield "properties.currency: required with value"
    if currency is not None and not (isinstance(currency, str) and CURRENCY_RE.fullmatch(currency)):
        yield "properties.currency: must be an ISO 4217 code"
    if properties.get("content_type", "product") not in ("product", "product_group"):
        yield "properties.content_type: product or product_group"
    contents = properties.get("contents", [])
    if not isinstance(contents, list):
        yield "properties.contents: must be an array"
        contents = []
    for i, content in enumerate(contents):
        if not isinstance(content, dict) or set(content) - CONTENT_KEYS:
            yield f"properties.contents.{i}: unknown field"
            continue
        if not isinstance(content.get("content_id"), str):
            yield f"properties.contents.{i}.content_id: Not a valid string"
        quantity = content.get("quantity")
        if quantity is not None and (not isinstance(quantity, int) or isinstance(quantity, bool)):
            yield f"properties.contents.{i}.quantity: Not a valid integer"
    ids = properties.get("content_ids")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        yield "properties.content_ids: must be an array of strings"


def answer(code: int, message: str, request_id: str = "202612070000000000") -> bytes:
    return msgspec.json.encode(
        {"code": code, "message": message, "request_id": request_id, "data": {}}
    )


def fake_tiktok(**options: Any) -> FakeVendor:
    """A FakeVendor answering as TikTok does; `vendor.errors` holds the refused requests'
    problems. Scripted `responses` still win (a `Reply` with a body of `answer(...)`)."""
    vendor = FakeVendor(**options)

    def reply(got: Received, status: int) -> bytes:
        if status != 200:
            return b""
        problem = problems(got)
        if problem is None:
            return answer(0, "OK")
        vendor.errors.append(problem)
        return answer(40002, problem)

    vendor.reply = reply
    return vendor
