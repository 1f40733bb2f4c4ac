"""One sGTM event -> one Meta Conversions API server event, checked as Meta checks it.

Everything here is a pure function of the event data, the settings and `now` (the pipeline's
clock). One exception, inherited on purpose from Meta's normalizer: a date of birth is valid up
to next year by the local clock's year (see `normalize.normalize_dob`).

Validation raises `InvalidEvent` for what Meta would refuse, because Meta refuses a whole batch
for one bad event (reference/destinations/meta-capi.md §2-§3):
- `event_time` more than 7 days old (62 for `physical_store`); a future time is clamped to now;
- `action_source` outside Meta's list;
- `website` events without an http(s) `event_source_url` (page_location) or a
  `client_user_agent` (user_agent);
- `app` events without `app_data` (ATT flag and the 16 extinfo strings: `app_data.py`);
- Purchase without a currency or a value (a value is summed from the items' price x quantity
  when the event has none; a currency is never invented);
- a currency that is not a 3-letter ISO 4217 code, a value that is not a finite number,
  `contents` / `content_ids` that are not lists;
- no user_data at all.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, get_args
from urllib.parse import urlsplit

import msgspec

from sgtm.kit import hashing as pii
from sgtm.kit.cookies import CookieSettings, cookie_domain, query_param
from sgtm.kit.mapping import client_ip, event_time_ms, generated_event_id
from sgtm.kit.mapping import currency as event_currency
from sgtm.plugin import EventData, InvalidEvent, get_path

from .app_data import app_data, opt_out
from .mapping import (
    CONTENT_FIELDS,
    CUSTOM_DATA_OVERRIDES,
    EVENT_MAP,
    FBC_SOURCES,
    FBP_SOURCES,
    HASHED_FIELDS,
    PLAIN_SOURCES,
    VALUE_SOURCES,
)
from .normalize import fbc_from, hash_pii, is_prehashed, is_valid_fbp_fbc, subdomain_index
from .settings import ActionSource, MetaCapiSettings

ACTION_SOURCES = frozenset(get_args(ActionSource))
DAY = 86400
MAX_AGE_DAYS = {"physical_store": 62}
DEFAULT_MAX_AGE_DAYS = 7
# Longer text is no name, email or phone number (Meta's own test cases go up to 10,000
# characters): it is dropped unread, which bounds the normalizers' work per event.
MAX_PII_CHARS = 16_384
MAX_PII_VALUES = 10  # per user_data field: a hit's list is cut to this many distinct values

_AUTO_DOMAIN = CookieSettings()


def server_event(event: EventData, settings: MetaCapiSettings, now: float) -> dict[str, Any]:
    """The `data[]` entry for this event; raises InvalidEvent when Meta would refuse it."""
    name = meta_event_name(event, settings.event_map)
    action_source = _action_source(event, settings)
    time_ms = event_time_ms(event, now)
    seconds = _checked_seconds(time_ms, now, action_source)
    out: dict[str, Any] = {
        "event_name": name,
        "event_time": seconds,
        "event_id": event_id(event, name) or generated_event_id(event, now),
        "action_source": action_source,
    }
    url = _http_url(event.get("page_location"))
    if url:
        out["event_source_url"] = url
    referrer = _http_url(event.get("page_referrer"))
    if referrer:
        out["referrer_url"] = referrer
    # Dates of birth are checked against the pipeline's clock, never the machine's.
    current_year = datetime.fromtimestamp(now, UTC).year
    user_data = build_user_data(event, settings, time_ms, current_year)
    if action_source == "website":
        if not url:
            raise InvalidEvent(
                "action_source website needs event_source_url: the event has no http(s) "
                "page_location"
            )
        if "client_user_agent" not in user_data:
            raise InvalidEvent(
                "action_source website needs client_user_agent: the event has no user_agent"
            )
    if not user_data:
        raise InvalidEvent("no user_data: Meta needs at least one customer information field")
    out["user_data"] = user_data
    if action_source == "app":
        out["app_data"] = app_data(event)
    opted_out = opt_out(event, settings.opt_out)
    if opted_out is not None:
        out["opt_out"] = opted_out
    custom_data = build_custom_data(event, settings, name)
    if custom_data:
        out["custom_data"] = custom_data
    out.update(_data_processing_options(event, settings))
    return out


# -- event name, time, id ----------------------------------------------------------------------


def meta_event_name(event: EventData, overrides: dict[str, str]) -> str:
    raw = event.get("event_name")
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidEvent("no event_name")
    return overrides.get(raw) or EVENT_MAP.get(raw) or raw


def _action_source(event: EventData, settings: MetaCapiSettings) -> str:
    # An event may state its own (Meta's sGTM template reads `action_source` from event data).
    value = event.get("action_source")
    if value is None or value == "":
        return settings.action_source
    if not isinstance(value, str) or value not in ACTION_SOURCES:
        raise InvalidEvent(
            f"action_source {str(value)[:40]!r} is not one of: {', '.join(sorted(ACTION_SOURCES))}"
        )
    return str(value)


def _checked_seconds(time_ms: float, now: float, action_source: str) -> int:
    seconds = min(int(time_ms // 1000), int(now))  # Meta refuses future times: clamp to now
    max_days = MAX_AGE_DAYS.get(action_source, DEFAULT_MAX_AGE_DAYS)
    if now - seconds > max_days * DAY:
        age = (now - seconds) / DAY
        raise InvalidEvent(
            f"event_time is {age:.1f} days old; Meta refuses {action_source} events older than "
            f"{max_days} days"
        )
    return seconds


def event_id(event: EventData, meta_name: str) -> str | None:
    """The event's own id: `event_id`, else `transaction_id` for a Purchase. This is what the
    browser pixel must send as `eventID` for Meta to deduplicate the two."""
    for key in ("event_id", "transaction_id") if meta_name == "Purchase" else ("event_id",):
        value = _text(event.get(key))
        if value:
            return value
    return None


# -- user_data ---------------------------------------------------------------------------------


def build_user_data(
    event: EventData, settings: MetaCapiSettings, time_ms: float, current_year: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    address = _address(event)
    country_code = settings.phone_country_code
    for field, sources in HASHED_FIELDS.items():
        for key in sources:
            hashed = _hashed(field, _source(event, address, key), country_code, current_year)
            if hashed:
                out[field] = hashed
                break
    ip = client_ip(event.get("ip_override"))
    if ip:
        out["client_ip_address"] = ip
    user_agent = _text(event.get("user_agent"))
    if user_agent:
        out["client_user_agent"] = user_agent
    fbp = _first(event, FBP_SOURCES, is_valid_fbp_fbc)
    if fbp:
        out["fbp"] = fbp
    fbc = _fbc(event, time_ms)
    if fbc:
        out["fbc"] = fbc
    for field, sources in PLAIN_SOURCES.items():
        value = _first(event, sources, bool)
        if value:
            out[field] = value
    for field, value in settings.user_data.items():
        # Explicit settings win; an empty or rejected value removes the field.
        result = (
            _hashed(field, value, country_code, current_year)
            if field in HASHED_FIELDS
            else _text(value)
        )
        if result:
            out[field] = result
        else:
            out.pop(field, None)
    return out


def _address(event: EventData) -> dict[str, Any]:
    address = get_path(event, "user_data.address")
    if isinstance(address, list):
        address = address[0] if address else None
    return address if isinstance(address, dict) else {}


def _source(event: EventData, address: dict[str, Any], key: str) -> Any:
    if key.startswith("address."):
        return address.get(key[len("address.") :])
    return get_path(event, key)


def _hashed(
    field: str, value: Any, country_code: str | None, current_year: int
) -> str | list[str] | None:
    """Meta's normalization and SHA-256 (`normalize.hash_pii`), after turning numbers into text
    and giving phones their country code; 64-hex input passes unchanged (lowercased) and is
    never hashed twice."""
    if isinstance(value, list):
        hashed = pii.distinct(
            value, lambda v: _hashed_one(field, v, country_code, current_year), MAX_PII_VALUES
        )
        return hashed or None
    return _hashed_one(field, value, country_code, current_year)


def _hashed_one(field: str, value: Any, country_code: str | None, current_year: int) -> str | None:
    text = _field_text(field, value, country_code)
    hashed = hash_pii(field, text, current_year=current_year) if text else None
    return hashed if isinstance(hashed, str) else None


def _field_text(field: str, value: Any, country_code: str | None) -> str | None:
    text = _pii_text(value)
    if text is None or field != "ph" or country_code is None or is_prehashed(text):
        return text
    return international_phone(text, country_code)


def international_phone(text: str, country_code: str) -> str | None:
    """A phone with its country code, as Meta's parameter builder reads a number the page gave
    with its country's phone code (`phoneCode` then `phoneNumber`, digits kept, leading zeros
    dropped): the shared E.164 rule (`+` or `00` means international; a national number loses
    its trunk zeros and gets `country_code`), without the `+`. None when it cannot be a phone
    number (fewer than 7 or more than 15 digits)."""
    number = pii.e164(text, country_code)
    return number[1:] if number else None


def _pii_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and len(value) <= MAX_PII_CHARS:
        return value
    return None


def _fbc(event: EventData, time_ms: float) -> str | None:
    """The click id: the `_fbc` the event carries, or one made from an `fbclid` in page_location
    (kept when it holds that same fbclid), as Meta's capi-param-builder decides."""
    existing = _first(event, FBC_SOURCES, is_valid_fbp_fbc)
    location = event.get("page_location")
    fbclid = query_param(location, "fbclid") or None
    if fbclid is None or not isinstance(location, str):  # no fbclid unless location is text
        return existing
    try:
        host = urlsplit(location).hostname or ""
    except ValueError:
        host = ""
    # The index counts the labels of the cookie domain, as the clients that set _fbc compute it.
    index = subdomain_index(cookie_domain(host, _AUTO_DOMAIN) or host)
    return fbc_from(existing, fbclid, index, int(time_ms))


# -- custom_data -------------------------------------------------------------------------------


def build_custom_data(
    event: EventData, settings: MetaCapiSettings, meta_name: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    items = _items(event)
    contents = [c for c in (_content(item) for item in items) if "id" in c]
    if contents:
        out["contents"] = contents
        out["content_ids"] = [c["id"] for c in contents]
        out["content_type"] = _text(event.get("content_type")) or "product"
    if len(items) == 1:
        for field, key in (("content_name", "item_name"), ("content_category", "item_category")):
            if text := _text(items[0].get(key)):
                out[field] = text
    value = _value(event)
    if value is None and meta_name == "Purchase":
        value = _items_total(items)
    if value is not None:
        out["value"] = value
    currency = event_currency(event, items)
    if currency:
        out["currency"] = currency
    if meta_name == "InitiateCheckout" and items:
        out["num_items"] = sum(_quantity_or_one(item) for item in items)
    if order_id := _text(event.get("transaction_id")):
        out["order_id"] = order_id
    if search := _text(event.get("search_term")):
        out["search_string"] = search
    for field in CUSTOM_DATA_OVERRIDES:
        override = _override(event.get(f"x-fb-cd-{field}"))
        if override is not None:
            out[field] = override
    for field, extra in settings.custom_data.items():
        if extra is None or extra == "":
            out.pop(field, None)
        else:
            out[field] = extra
    for field in ("contents", "content_ids"):
        if field in out and not isinstance(out[field], list):
            # Meta refuses it with "$['data'][0]['custom_data']['contents'] must be an array"
            raise InvalidEvent(f"custom_data.{field} must be a list (JSON array)")
    if meta_name == "Purchase":
        if "currency" not in out:
            raise InvalidEvent("Purchase needs a currency: the event has no currency")
        if out.get("value") is None:
            raise InvalidEvent("Purchase needs a value: the event has no value or item prices")
    return out


def _items(event: EventData) -> list[dict[str, Any]]:
    items = event.get("items")
    if not isinstance(items, list):
        items = get_path(event, "ecommerce.items")
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _content(item: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = {}
    for key, field in CONTENT_FIELDS.items():
        raw = item.get(key)
        if field == "quantity":
            value: Any = _quantity(raw)
        elif field == "item_price":
            value = _number(raw)
        else:
            value = _text(raw)
        if value is not None and value != "":
            content[field] = value
    return content


def _quantity(raw: Any) -> int | None:
    number = _number(raw)
    if number is None or not float(number).is_integer() or number < 0:
        return None
    return int(number)


def _quantity_or_one(item: dict[str, Any]) -> int:
    quantity = _quantity(item.get("quantity"))
    return 1 if quantity is None else quantity


def _items_total(items: list[dict[str, Any]]) -> float | None:
    """Σ price x quantity (quantity 1 when absent), or None when no item has a price."""
    total, priced = 0.0, False
    for item in items:
        price = _number(item.get("price"))
        if price is None:
            continue
        priced = True
        total += price * _quantity_or_one(item)
    return round(total, 6) if priced else None


def _value(event: EventData) -> float | int | None:
    for key in VALUE_SOURCES:
        raw = event.get(key)
        if raw is None or raw == "":
            continue
        number = _number(raw)
        if number is None:
            raise InvalidEvent(f"{key} {str(raw)[:40]!r} is not a number")
        return number
    return None


def _override(raw: Any) -> Any:
    """An `x-fb-cd-*` value; JSON text is decoded (MTAG accepts `contents` as a JSON string)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, str) and raw[:1] in ("[", "{"):
        try:
            return msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return raw
    return raw


# -- data processing options (Limited Data Use) ------------------------------------------------


def _data_processing_options(event: EventData, settings: MetaCapiSettings) -> dict[str, Any]:
    options = event.get("data_processing_options")
    if options == "LDU":  # a single value, as a GA4 event parameter carries it
        options = ["LDU"]
    if options is None or options == "":
        if settings.data_processing_options is None:
            return {}
        return {
            "data_processing_options": list(settings.data_processing_options),
            "data_processing_options_country": settings.data_processing_options_country,
            "data_processing_options_state": settings.data_processing_options_state,
        }
    if not isinstance(options, list) or any(option != "LDU" for option in options):
        raise InvalidEvent('data_processing_options must be [] or ["LDU"]')
    out: dict[str, Any] = {"data_processing_options": options}
    for key, allowed in (("country", (0, 1)), ("state", (0, 1000))):
        raw = event.get(f"data_processing_options_{key}")
        value = 0 if raw is None or raw == "" else _number(raw)
        if value not in allowed:
            raise InvalidEvent(
                f"data_processing_options_{key} must be one of {allowed}, got {value!r}"
            )
        out[f"data_processing_options_{key}"] = value
    return out


# -- small readers -----------------------------------------------------------------------------


def _first(event: EventData, keys: tuple[str, ...], valid: Any) -> str | None:
    for key in keys:
        value = _text(get_path(event, key))
        if value and valid(value):
            return value
    return None


def _text(value: Any) -> str | None:
    """A non-empty trimmed string from a string or a number; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and math.isfinite(value):
        return str(int(value)) if float(value).is_integer() else str(value)
    if isinstance(value, str):
        return value.strip() or None
    return None


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        if "_" in value:  # float() accepts "1_000"; a number in event data never has one
            return None
        try:
            number = float(value.strip())
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    return None


def _http_url(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    url = value.strip()
    return url if url.lower().startswith(("http://", "https://")) else None
