"""One sGTM event -> one TikTok Events API 2.0 `data[]` entry, checked before it is queued.

TikTok "fails an entire batch if it detects an erroneous row", so what it would refuse is
`invalid` here: no event name, an unreadable `event_time`, a currency that is no ISO 4217 code, a
value that is no number, `contents` / `content_ids` that are not lists. A value without a currency
is dropped with a warning (the event still counts). Personal data is normalized per
`normalize.py`'s TikTok rules and SHA-256 hashed; a value that already is 64 hex characters is sent
lower-cased, never hashed twice. Pure functions of the event, the settings, the request's
cookies and `now`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from sgtm.kit import hashing as pii
from sgtm.kit import mapping as m
from sgtm.kit.cookies import is_cookie_value, query_param
from sgtm.plugin import EventData, InvalidEvent, get_path

from . import normalize
from .mapping import (
    CONTENT_FIELDS,
    EVENT_MAP,
    HASHED_SOURCES,
    LIST_FIELDS,
    LOCATION_SOURCES,
    MAX_LIST_VALUES,
)
from .settings import TikTokSettings

Warn = Callable[[str], None]

MAX_PII_CHARS = 1024  # longer text is no email, phone or name: dropped unread
MAX_ID_CHARS = 500  # ttclid / _ttp; a longer value is no click or browser id
VALUE_EVENTS = ("Purchase", "PlaceAnOrder", "CompletePayment")
_TTP_RE = re.compile(r"[A-Za-z0-9._|:\-]{1,256}")

NORMALIZERS: dict[str, Callable[[Any, str | None], str | None]] = {
    "email": lambda raw, _: normalize.tiktok_email(raw),
    "phone": pii.e164,
    "external_id": lambda raw, _: normalize.tiktok_external_id(raw),
    "first_name": lambda raw, _: pii.lower_without_spaces(raw),
    "last_name": lambda raw, _: pii.lower_without_spaces(raw),
    "zip_code": lambda raw, _: pii.lower_without_spaces(m.text(raw)),
}


def tiktok_event_name(event: EventData, overrides: dict[str, str]) -> str:
    raw = event.get("event_name")
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidEvent("no event_name")
    return overrides.get(raw) or EVENT_MAP.get(raw) or raw


def event_id(event: EventData, name: str) -> str | None:
    """The event's own id: `event_id`, else `transaction_id` for a purchase. This is what the
    pixel must send as `event_id` for TikTok to deduplicate the two."""
    keys = ("event_id", "transaction_id") if name in VALUE_EVENTS else ("event_id",)
    for key in keys:
        value = m.text(event.get(key))
        if value:
            return value
    return None


def data_entry(
    event: EventData,
    settings: TikTokSettings,
    now: float,
    cookies: Mapping[str, str],
    warn: Warn,
) -> dict[str, Any]:
    name = tiktok_event_name(event, settings.event_map)
    seconds = min(int(m.event_time_ms(event, now) // 1000), int(now))  # never in the future
    out: dict[str, Any] = {
        "event": name,
        "event_time": seconds,
        "event_id": event_id(event, name) or m.generated_event_id(event, now),
        "user": user(event, settings, cookies),
    }
    properties = build_properties(event, settings, name, warn)
    if properties:
        out["properties"] = properties
    page = {}
    if url := _http_url(event.get("page_location")):
        page["url"] = url
    if referrer := _http_url(event.get("page_referrer")):
        page["referrer"] = referrer
    if page:
        out["page"] = page
    limited = event.get("limited_data_use")
    if isinstance(limited, bool):
        out["limited_data_use"] = limited
    elif settings.limited_data_use:
        out["limited_data_use"] = True
    return out


# -- user ----------------------------------------------------------------------------------------


def user(event: EventData, settings: TikTokSettings, cookies: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    address = _address(event)
    for field, sources in HASHED_SOURCES.items():
        for key in sources:
            hashed = _hashed(field, _source(event, address, key), settings.phone_country_code)
            if hashed:
                out[field] = hashed
                break
    for field, sources in LOCATION_SOURCES.items():
        for key in sources:
            value = normalize.tiktok_location(_source(event, address, key))
            if value:
                out[field] = value
                break
    if ttclid := click_id(event, cookies):
        out["ttclid"] = ttclid
    if ttp := browser_id(event, cookies):
        out["ttp"] = ttp
    if ip := m.client_ip(event.get("ip_override")):
        out["ip"] = ip
    if user_agent := m.text(event.get("user_agent")):
        out["user_agent"] = user_agent
    return out


def _hashed(field: str, raw: Any, country_code: str | None) -> str | list[str] | None:
    if isinstance(raw, list) and field in LIST_FIELDS:
        hashes = pii.distinct(
            raw, lambda value: _hash_one(field, value, country_code), MAX_LIST_VALUES
        )
        return hashes[0] if len(hashes) == 1 else hashes or None
    return _hash_one(field, raw, country_code)


def _hash_one(field: str, raw: Any, country_code: str | None) -> str | None:
    if isinstance(raw, str) and len(raw) > MAX_PII_CHARS:
        return None
    already = pii.hashed(raw)
    if already is not None:
        return already
    normalized = NORMALIZERS[field](raw, country_code)
    return pii.sha256_hex(normalized) if normalized else None


def click_id(event: EventData, cookies: Mapping[str, str]) -> str | None:
    """`ttclid`: the page URL's (a fresh click wins), else the event's, else the `ttclid`
    cookie the request carries."""
    for candidate in (
        query_param(event.get("page_location"), "ttclid"),
        event.get("ttclid"),
        cookies.get("ttclid"),
    ):
        if _usable_id(candidate):
            return str(candidate)
    return None


def browser_id(event: EventData, cookies: Mapping[str, str]) -> str | None:
    """`ttp`: the pixel's `_ttp` cookie the request carries, else what the event carries."""
    for candidate in (cookies.get("_ttp"), event.get("ttp"), event.get("_ttp")):
        if _usable_id(candidate) and _TTP_RE.fullmatch(str(candidate)):
            return str(candidate)
    return None


def _usable_id(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_ID_CHARS and is_cookie_value(value)


def _address(event: EventData) -> dict[str, Any]:
    address = get_path(event, "user_data.address")
    if isinstance(address, list):
        address = address[0] if address else None
    return address if isinstance(address, dict) else {}


def _source(event: EventData, address: dict[str, Any], key: str) -> Any:
    if key.startswith("address."):
        return address.get(key.removeprefix("address."))
    return get_path(event, key)


# -- properties ------------------------------------------------------------------------------------


def build_properties(
    event: EventData, settings: TikTokSettings, name: str, warn: Warn
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    items = m.items(event)
    contents = [c for c in (_content(item) for item in items) if "content_id" in c]
    if contents:
        out["contents"] = contents
        out["content_ids"] = [c["content_id"] for c in contents]
        out["content_type"] = m.text(event.get("content_type")) or "product"
    value = _value(event)
    if value is None and name in VALUE_EVENTS:
        value = _items_total(items)
    currency = m.currency(event, items)
    if value is not None:
        if currency is None:
            warn("value not sent: the event has no currency (TikTok needs both)")
        else:
            out["value"], out["currency"] = value, currency
    if order_id := m.text(event.get("transaction_id")):
        out["order_id"] = order_id
    if search := m.text(event.get("search_term")):
        out["search_string"] = search
    for field, extra in settings.properties.items():
        if m.present(extra):
            out[field] = extra
        else:
            out.pop(field, None)
    for field in ("contents", "content_ids"):
        if field in out and not isinstance(out[field], list):
            raise InvalidEvent(f"properties.{field} must be a list (JSON array)")
    return out


def _content(item: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = {}
    for key, field in CONTENT_FIELDS.items():
        raw = item.get(key)
        value: Any
        if field == "price":
            value = m.number(raw)
        elif field == "quantity":
            found = m.number(raw)
            value = int(found) if found is not None and found.is_integer() and found > 0 else None
        else:
            value = m.text(raw)  # content_id as text: TikTok refuses numbers there
        if value is not None:
            content[field] = value
    return content


def _value(event: EventData) -> float | int | None:
    raw = event.get("value")
    if raw is None or raw == "":
        return None
    found = m.number(raw)
    if found is None:
        raise InvalidEvent(f"value {str(raw)[:40]!r} is not a number")
    return int(found) if found.is_integer() and abs(found) < 2**53 else found


def _items_total(items: list[dict[str, Any]]) -> float | None:
    """Σ price x quantity (quantity 1 when absent), or None when no item has a price."""
    total, priced = 0.0, False
    for item in items:
        price = m.number(item.get("price"))
        if price is None:
            continue
        priced = True
        quantity = m.number(item.get("quantity"))
        total += price * (quantity if quantity is not None and quantity > 0 else 1)
    return round(total, 6) if priced else None


def _http_url(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 8192:
        return None
    url = value.strip()
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None
