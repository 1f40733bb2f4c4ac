"""A fake Meta Conversions API for `tests.servers.FakeVendor`: Meta's documented schema as a
check, and Meta's answers as replies.

`problems(received)` lists what Meta documents it would refuse in `POST /{version}/{pixel}/events`
(reference/destinations/meta-capi.md §1-§6 and the Graph API docs): the path and
`access_token`, `data` of 1..1000 events, each with `event_name`, `event_time` in seconds within
the last 7 days (62 for physical_store), a known `action_source`, `event_source_url` and
`client_user_agent` for website events, `app_data` for app events (the ATT flag and extinfo's 16
strings, version a2/i2 and OS version required), a boolean `opt_out`, hashed user_data fields as
lowercase SHA-256 hex (or with capi-param-builder's appendix),
never-hashed fields in clear (an IP without a port, fbc/fbp in Meta's format), currency and
value for Purchase, contents with ids and integer quantities.
`reply(received, status)` answers like Meta: `{"events_received": N, "messages": [],
"fbtrace_id": ...}`, or a Graph API error envelope for the status.
"""

from __future__ import annotations

import ipaddress
import re
import time
from typing import Any
from urllib.parse import parse_qs

import msgspec

from tests.servers import Received

HASHED = ("em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id")
NEVER_HASHED = (
    "client_ip_address",
    "client_user_agent",
    "fbc",
    "fbp",
    "subscription_id",
    "fb_login_id",
    "lead_id",
    "anon_id",
    "madid",
    "page_id",
    "page_scoped_user_id",
    "ctwa_clid",
    "ig_account_id",
    "ig_sid",
)
ACTION_SOURCES = (
    "email",
    "website",
    "app",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
)
EVENT_KEYS = {
    "event_name",
    "event_time",
    "user_data",
    "action_source",
    "event_source_url",
    "event_id",
    "custom_data",
    "opt_out",
    "app_data",
    "data_processing_options",
    "data_processing_options_country",
    "data_processing_options_state",
    "referrer_url",
    "original_event_data",
    "attribution_data",
    "messaging_channel",
    "advanced_measurement_table",
}
REQUEST_KEYS = {
    "data",
    "test_event_code",
    "partner_agent",
    "namespace_id",
    "upload_id",
    "upload_tag",
    "upload_source",
}
PATH_RE = re.compile(r"/(v[0-9]+\.[0-9]+)/[0-9]+/events")
# Marketing API versions Meta serves in December 2026 (its version history: v24.0 expired on
# 10 Nov 2026, v25.0 expires on 23 Feb 2027); calls to others are refused with code 2635.
SERVED_VERSIONS = ("v25.0", "v26.0", "v27.0")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
# What Meta's own SDKs send since they route PII through capi-param-builder: the digest and the
# builder's appendix (a language token or 8 base64url characters), passed on untouched.
BUILDER_HASH_RE = re.compile(r"[0-9A-Fa-f]{64}\.(?:AQ|Ag|Aw|BA|BQ|Bg|[A-Za-z0-9_-]{8})")
FB_COOKIE_RE = re.compile(r"fb\.[0-9]+\.[0-9]+\.[^.\s]+(\.[A-Za-z0-9_-]+)?")
CURRENCY_RE = re.compile(r"[A-Z]{3}")
MAX_EVENTS = 1000
DAY = 86400


def problems(received: Received, now: float | None = None) -> str | None:
    """The first thing Meta would refuse in this request, or None."""
    found = list(_request_problems(received, time.time() if now is None else now))
    return found[0] if found else None


def _request_problems(got: Received, now: float) -> Any:
    path = PATH_RE.fullmatch(got.path)
    if got.method != "POST" or not path:
        yield f"not POST /{{version}}/{{pixel_id}}/events: {got.method} {got.path}"
        return
    if path[1] not in SERVED_VERSIONS:
        yield f"(#2635) You are calling a deprecated version of the Ads API: {path[1]}"
    query = parse_qs(got.query)
    if not query.get("access_token", [""])[0]:
        yield "no access_token"
    proof = query.get("appsecret_proof")
    if proof is not None and not SHA256_RE.fullmatch(proof[0]):
        yield "appsecret_proof is not a hex HMAC-SHA256"
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
    for key in set(body) - REQUEST_KEYS:
        yield f"unknown request parameter {key!r}"
    data = body.get("data")
    if not isinstance(data, list) or not data:
        yield "data must be a non-empty array"
        return
    if len(data) > MAX_EVENTS:
        yield f"{len(data)} events in one request; the maximum is {MAX_EVENTS}"
    for key in ("test_event_code", "partner_agent"):
        if key in body and not isinstance(body[key], str):
            yield f"{key} must be a string"
    for i, event in enumerate(data):
        for problem in _event_problems(event, now):
            yield f"$['data'][{i}]: {problem}"  # Meta names the event by its JSON path


def _event_problems(event: Any, now: float) -> Any:
    if not isinstance(event, dict):
        yield "not an object"
        return
    for key in set(event) - EVENT_KEYS:
        yield f"unknown parameter {key!r}"
    if not isinstance(event.get("event_name"), str) or not event["event_name"]:
        yield "event_name is required"
    seconds = event.get("event_time")
    source = event.get("action_source")
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        yield "event_time must be an integer (Unix seconds)"
    else:
        max_days = 62 if source == "physical_store" else 7
        if seconds > now + 60:
            yield "event_time is in the future"
        if seconds < now - max_days * DAY:
            yield f"event_time is older than {max_days} days"
    if source not in ACTION_SOURCES:
        yield f"action_source {source!r} is invalid"
    if "event_id" in event and (not isinstance(event["event_id"], str) or not event["event_id"]):
        yield "event_id must be a non-empty string"
    user_data = event.get("user_data")
    if not isinstance(user_data, dict) or not user_data:
        yield "user_data is required"
        user_data = {}
    if source == "website":
        url = event.get("event_source_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            yield "website events need an http(s) event_source_url"
        if not isinstance(user_data.get("client_user_agent"), str):
            yield "website events need user_data.client_user_agent"
    if source == "app":
        yield from _app_data_problems(event.get("app_data"))
    if "opt_out" in event and not isinstance(event["opt_out"], bool):
        yield "opt_out must be a boolean"
    yield from _user_data_problems(user_data)
    custom_data = event.get("custom_data", {})
    if not isinstance(custom_data, dict):
        yield "custom_data must be an object"
        custom_data = {}
    yield from _custom_data_problems(custom_data, event.get("event_name"))


def _app_data_problems(app_data: Any) -> Any:
    # App Data Parameters: advertiser_tracking_enabled and extinfo are required for app events;
    # extinfo is 16 strings in order, empty ones as "", version a2/i2 and OS version required.
    if not isinstance(app_data, dict):
        yield "app events need app_data"
        return
    if not isinstance(app_data.get("advertiser_tracking_enabled"), bool):
        yield "app_data.advertiser_tracking_enabled is required (a boolean)"
    if "application_tracking_enabled" in app_data and not isinstance(
        app_data["application_tracking_enabled"], bool
    ):
        yield "app_data.application_tracking_enabled must be a boolean"
    extinfo = app_data.get("extinfo")
    if not isinstance(extinfo, list) or len(extinfo) != 16:
        yield "app_data.extinfo must be an array of 16 values"
    elif not all(isinstance(value, str) for value in extinfo):
        yield "app_data.extinfo values must be strings"
    elif extinfo[0] not in ("a2", "i2") or not extinfo[4]:
        yield "app_data.extinfo needs version a2 or i2 and the OS version"


def _user_data_problems(user_data: dict[str, Any]) -> Any:
    for key, value in user_data.items():
        if key in HASHED:
            values = value if isinstance(value, list) else [value]
            if not values or not all(_is_hash(v) for v in values):
                yield f"user_data.{key} must be SHA-256 hashed (lowercase hex)"
        elif key in NEVER_HASHED:
            if not isinstance(value, str) or not value:
                yield f"user_data.{key} must be a non-empty string"
            elif SHA256_RE.fullmatch(value):
                yield f"user_data.{key} must not be hashed"
        else:
            yield f"unknown user_data parameter {key!r}"
    ip = user_data.get("client_ip_address")
    if isinstance(ip, str):
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            yield f"user_data.client_ip_address {ip!r} is not an IP address (no port)"
    for key in ("fbc", "fbp"):
        cookie = user_data.get(key)
        if isinstance(cookie, str) and not FB_COOKIE_RE.fullmatch(cookie):
            yield f"user_data.{key} {cookie!r} is not fb.<index>.<ms>.<id>"


def _custom_data_problems(custom_data: dict[str, Any], event_name: Any) -> Any:
    value = custom_data.get("value")
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
        yield "custom_data.value must be a number"
    currency = custom_data.get("currency")
    if currency is not None and (
        not isinstance(currency, str) or not CURRENCY_RE.fullmatch(currency)
    ):
        yield "custom_data.currency must be an ISO 4217 code"
    if event_name == "Purchase" and (currency is None or value is None):
        yield "Purchase events need custom_data.currency and custom_data.value"
    contents = custom_data.get("contents")
    if contents is not None:
        if not isinstance(contents, list):
            yield "custom_data.contents must be an array"
            contents = []
        for i, content in enumerate(contents):
            if not isinstance(content, dict) or not isinstance(content.get("id"), str):
                yield f"custom_data.contents[{i}] needs an id"
            elif "quantity" in content and (
                not isinstance(content["quantity"], int) or isinstance(content["quantity"], bool)
            ):
                yield f"custom_data.contents[{i}].quantity must be an integer"
    ids = custom_data.get("content_ids")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        yield "custom_data.content_ids must be an array of strings"
    num_items = custom_data.get("num_items")
    if num_items is not None and (not isinstance(num_items, int) or isinstance(num_items, bool)):
        yield "custom_data.num_items must be an integer"


def _is_hash(value: Any) -> bool:
    return isinstance(value, str) and bool(
        SHA256_RE.fullmatch(value) or BUILDER_HASH_RE.fullmatch(value)
    )


# Graph API error envelopes by status, for the replies to scripted failures.
ERRORS: dict[int, dict[str, Any]] = {
    400: {"message": "Invalid parameter", "type": "OAuthException", "code": 100},
    401: {"message": "Error validating access token", "type": "OAuthException", "code": 190},
    403: {"message": "Permissions error", "type": "OAuthException", "code": 200},
    429: {"message": "User request limit reached", "type": "OAuthException", "code": 17},
    500: {
        "message": "An unexpected error has occurred. Please retry your request later.",
        "type": "OAuthException",
        "code": 2,
        "is_transient": True,
    },
}


def reply(received: Received, status: int) -> bytes:
    """Meta's answer for `status`: the success object, or an error envelope."""
    trace = f"A{abs(hash(received.body)) % 10**10:010d}"
    if 200 <= status < 300:
        try:
            count = len(msgspec.json.decode(received.body)["data"])
        except (msgspec.DecodeError, KeyError, TypeError):
            count = 0
        return msgspec.json.encode({"events_received": count, "messages": [], "fbtrace_id": trace})
    error = dict(ERRORS.get(status, ERRORS[500 if status >= 500 else 400]))
    problem = problems(received) if status == 400 else None
    if problem is not None and problem.startswith("(#2635)"):
        error = {"message": problem, "type": "OAuthException", "code": 2635}
    elif status == 400:
        error.update(
            error_subcode=2804019,
            is_transient=False,
            error_user_title="Server Side Api Parameter Error",
            error_user_msg=problem or "Invalid parameter",
        )
    error["fbtrace_id"] = trace
    return msgspec.json.encode({"error": error})
