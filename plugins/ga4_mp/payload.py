"""One sGTM event -> one GA4 Measurement Protocol event and the request it travels in.

Pure functions of the event data, the settings and `now`. GA4's production endpoint answers 2xx
to everything, so this is where a mistake is caught (rules.py has the limits):
- what GA4 would refuse as a whole (no client id, a bad or reserved event name, a time more than
  72 hours back, a body of 130 kB or more) raises `InvalidEvent`: nothing is sent;
- what GA4 would silently drop or cut (a param with a bad name, an object, a value over its
  length, the 26th param, an item without id or name...) is dropped or cut here the same way,
  keeping the most data GA4 would keep, and said with `warn` (shown by `sgtm emulate`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sgtm.kit import hashing as pii
from sgtm.kit.mapping import PERSONAL_KEYS, number, overlay, present, text, values
from sgtm.plugin import EventData, InvalidEvent, consent_state, get_path

from . import normalize as google
from .rules import (
    ITEM_FIELDS,
    ITEM_NUMBER_FIELDS,
    MAX_AGE_SECONDS,
    MAX_CUSTOM_ITEM_PARAMS,
    MAX_ITEMS_PER_EVENT,
    MAX_PARAMS_PER_EVENT,
    MAX_USER_ID_CHARS,
    MAX_USER_PROPERTIES,
    MAX_USER_PROPERTY_NAME_CHARS,
    MAX_USER_PROPERTY_VALUE_CHARS,
    MAX_VALUE_CHARS,
    NUMBER_PARAMS,
    RESERVED_EVENT_NAMES,
    RESERVED_USER_PROPERTY_NAMES,
    STANDARD_PARAMS,
    VALUE_CHARS,
    name_problem,
)
from .settings import Ga4MpSettings

Warn = Callable[[str], None]

# sGTM / GA4 event names -> GA4 event names. Empty: event data already uses GA4's names; a
# container's `event_map` renames (e.g. a CRM's `lead_created` to `generate_lead`).
EVENT_MAP: dict[str, str] = {}

# Event data keys that are not event params: the request-level fields they feed, page parts GA4
# derives itself, GA4 client internals, and a visitor's direct identifiers (GA4 forbids personal
# data in params). (`x-*` keys are never params either.)
NOT_PARAMS = PERSONAL_KEYS | frozenset(
    {
        "event_name",
        "client_id",
        "user_id",
        "user_data",
        "ip_override",
        "user_agent",
        "language",
        "screen_resolution",
        "viewport_size",
        "page_hostname",
        "page_path",
        "page_encoding",
        "client_hints",
        "event_location",
        "consent_state",
        "ga_session_id",
        "ga_session_number",
        "session_id",
        "engagement_time_msec",
        "timestamp_micros",
    }
)

_GA_CLIENT_ID = re.compile(r"[0-9]{1,20}\.[0-9]{1,20}")
_SESSION_ID = re.compile(r"[0-9]{1,20}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_SCREEN = re.compile(r"[0-9]{1,5}x[0-9]{1,5}")
_COUNTRY_ID = re.compile(r"[A-Z]{2}")
_REGION_ID = re.compile(r"[A-Z]{2}-[A-Z0-9]{1,3}")
MAX_IDENTIFIERS = 10  # per user_data field: sgtm's cap, enough for any real profile
_MAX_NAMES_SHOWN = 5


@dataclass(slots=True)
class MpEvent:
    """The request-level fields (`envelope`), the event and its user properties: a batch merges
    events whose envelopes are equal, and the user properties of all of them."""

    envelope: dict[str, Any]
    event: dict[str, Any]
    user_properties: dict[str, dict[str, Any]]


def build(
    event: EventData, settings: Ga4MpSettings, now: float, consent_default: str, warn: Warn
) -> MpEvent:
    name = event_name(event, settings)
    cid = client_id(event, settings)
    if cid is None:
        raise InvalidEvent(
            "no client_id: GA4 needs one per request (event data client_id or x-ga-js_client_id)"
        )
    micros = timestamp_micros(event, now, warn)
    envelope: dict[str, Any] = {"client_id": cid}
    uid = user_id(event, warn)
    if uid is not None:
        envelope["user_id"] = uid
    consent_fields = consent(event, consent_default)
    if consent_fields:
        envelope["consent"] = consent_fields
    if settings.send_user_data and consent_fields.get("ad_user_data") != "DENIED":
        data = user_data(event, settings.phone_country_code)
        if data:
            envelope["user_data"] = data
    ip = ip_override(event)
    if ip is not None:
        envelope["ip_override"] = ip
    location = user_location(event)
    if location:
        envelope["user_location"] = location
    dev = device(event)
    if dev:
        envelope["device"] = dev
    if settings.validate:
        envelope["validation_behavior"] = settings.validation_behavior
    entry = {"name": name, "params": params(event, settings, warn), "timestamp_micros": micros}
    properties = user_properties(event, settings, micros, warn)
    return MpEvent(envelope, entry, properties)


# -- name, ids, time ---------------------------------------------------------------------------


def event_name(event: EventData, settings: Ga4MpSettings) -> str:
    raw = event.get("event_name")
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidEvent("no event_name")
    name = settings.event_map.get(raw) or EVENT_MAP.get(raw) or raw
    problem = name_problem(name)
    if problem:
        raise InvalidEvent(f"event name {name[:60]!r} is {problem}; GA4 drops such events")
    if name in RESERVED_EVENT_NAMES:
        raise InvalidEvent(
            f"event name {name!r} is reserved by GA4, which drops such events "
            "(rename it with event_map)"
        )
    return name


def client_id(event: EventData, settings: Ga4MpSettings) -> str | None:
    """The setting, else `client_id` in GA's `<number>.<number>` form, else the `_ga` cookie's id
    the GA4 client keeps in `x-ga-js_client_id` (with a server-managed FPID, `client_id` is the
    FPID's), else `client_id` as it is."""
    if settings.client_id and settings.client_id.strip():
        return settings.client_id.strip()
    own = text(event.get("client_id"))
    if own is not None and _GA_CLIENT_ID.fullmatch(own):
        return own
    js = text(event.get("x-ga-js_client_id"))
    if js is not None and _GA_CLIENT_ID.fullmatch(js):
        return js
    return own


def user_id(event: EventData, warn: Warn) -> str | None:
    uid = text(event.get("user_id"))
    if uid is not None and len(uid) > MAX_USER_ID_CHARS:
        warn(f"user_id not sent: {len(uid)} characters, GA4 takes {MAX_USER_ID_CHARS}")
        return None
    return uid


def timestamp_micros(event: EventData, now: float, warn: Warn) -> int:
    """When the event happened: `timestamp_micros`, else when the hit arrived
    (`x-sst-system_properties.request_start_time_ms`), else now. A future time becomes now."""
    now_us = int(now * 1_000_000)
    raw = event.get("timestamp_micros")
    if raw is not None:
        value = number(raw)
        if value is None:
            raise InvalidEvent(f"timestamp_micros {str(raw)[:40]!r} is not a number")
        micros = int(value)
    else:
        start = number(get_path(event, "x-sst-system_properties.request_start_time_ms"))
        micros = int(start * 1000) if start is not None and start > 0 else now_us
    if micros > now_us:
        warn("timestamp in the future: sent as now")
        micros = now_us
    age = (now_us - micros) / 1_000_000
    if age > MAX_AGE_SECONDS:
        raise InvalidEvent(
            f"event is {age / 3600:.1f} hours old; GA4 takes events up to "
            f"{MAX_AGE_SECONDS // 3600} hours back"
        )
    return micros


# -- params ------------------------------------------------------------------------------------


def params(event: EventData, settings: Ga4MpSettings, warn: Warn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    session = session_id(event, warn)
    if session is not None:
        out["session_id"] = session
    out["engagement_time_msec"] = engagement_time_msec(event)
    if get_path(event, "x-ga-system_properties.dbg") and "debug_mode" not in event:
        out["debug_mode"] = True

    raw = {
        key: value
        for key, value in event.items()
        if key not in NOT_PARAMS and not key.startswith("x-")
    }
    raw = overlay(raw, settings.params)
    order = [*STANDARD_PARAMS, *settings.params, *raw]
    for name in dict.fromkeys(order):
        if name not in raw or name in out:
            continue
        value = param_value(name, raw[name], warn)
        if value is not None:
            out[name] = value

    if "value" in out and "currency" not in out:
        warn("value sent without currency: GA4 counts no revenue for it")
    if len(out) > MAX_PARAMS_PER_EVENT:
        dropped = list(out)[MAX_PARAMS_PER_EVENT:]
        warn(
            f"{len(dropped)} params dropped, GA4 takes {MAX_PARAMS_PER_EVENT} per event: "
            + _names(dropped)
        )
        out = dict(list(out.items())[:MAX_PARAMS_PER_EVENT])
    return out


def session_id(event: EventData, warn: Warn) -> str | None:
    """GA4's session id (`ga_session_id`; an event's own `session_id` if it has GA4's form)."""
    for key in ("ga_session_id", "session_id"):
        value = text(event.get(key))
        if value is None:
            continue
        if _SESSION_ID.fullmatch(value):
            return value
        warn(f"{key} not sent as session_id: GA4 session ids are numbers")
    return None


def engagement_time_msec(event: EventData) -> int:
    """The event's, at least 1: GA4 shows an event in Realtime only with engagement time."""
    value = number(event.get("engagement_time_msec"))
    return max(1, int(value)) if value is not None and value < 2**53 else 1


def param_value(name: str, value: Any, warn: Warn) -> Any:
    """The value GA4 would keep for one param, or None (with a warning when data is lost)."""
    if value is None:
        return None
    problem = name_problem(name)
    if problem:
        warn(f"param {name[:60]!r} dropped: the name is {problem}")
        return None
    if name == "items":
        found = items(value, warn)
        return found or None
    if isinstance(value, dict | list):
        warn(f"param {name!r} dropped: GA4 takes text and numbers, not {_kind(value)}")
        return None
    if name in NUMBER_PARAMS:
        amount = number(value)
        if amount is None:
            warn(f"param {name!r} dropped: not a number")
        return _plain_number(amount)
    if name == "currency":
        code = (text(value) or "").upper()
        if not _CURRENCY.fullmatch(code):
            warn("param 'currency' dropped: not a 3-letter ISO 4217 code")
            return None
        return code
    return _scalar(name, value, VALUE_CHARS.get(name, MAX_VALUE_CHARS), "param", warn)


def items(value: Any, warn: Warn) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        warn("param 'items' dropped: not a list")
        return []
    out: list[dict[str, Any]] = []
    for index, raw in enumerate(value):
        if len(out) == MAX_ITEMS_PER_EVENT:
            warn(f"{len(value) - index} items dropped, GA4 takes {MAX_ITEMS_PER_EVENT} per event")
            break
        if not isinstance(raw, dict):
            warn(f"items[{index}] dropped: not an object")
            continue
        item = _item(raw, index, warn)
        if "item_id" not in item and "item_name" not in item:
            warn(f"items[{index}] dropped: it has neither item_id nor item_name")
            continue
        out.append(item)
    return out


def _item(raw: Mapping[str, Any], index: int, warn: Warn) -> dict[str, Any]:
    item: dict[str, Any] = {}
    custom: list[str] = []
    for name, value in raw.items():
        if value is None:
            continue
        where = f"items[{index}].{name[:60]}"
        problem = name_problem(name)
        if problem:
            warn(f"{where} dropped: the name is {problem}")
            continue
        if isinstance(value, dict | list):
            warn(f"{where} dropped: GA4 takes text and numbers, not {_kind(value)}")
            continue
        if name in ITEM_NUMBER_FIELDS:
            amount = _plain_number(number(value))
            if amount is None:
                warn(f"{where} dropped: not a number")
                continue
            item[name] = amount
        elif name in ITEM_FIELDS:
            kept = _scalar(where, text(value), MAX_VALUE_CHARS, "item param", warn)
            if kept is not None:
                item[name] = kept
        elif len(custom) < MAX_CUSTOM_ITEM_PARAMS:
            kept = _scalar(where, value, MAX_VALUE_CHARS, "item param", warn)
            if kept is not None:
                custom.append(name)
                item[name] = kept
        else:
            warn(f"{where} dropped: GA4 takes {MAX_CUSTOM_ITEM_PARAMS} custom params per item")
    return item


def _scalar(where: str, value: Any, limit: int, what: str, warn: Warn) -> Any:
    if isinstance(value, str):
        if len(value) > limit:
            warn(f"{what} {where!r} cut to {limit} characters (was {len(value)})")
            return value[:limit]
        return value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        amount = _plain_number(number(value))
        if amount is None:
            warn(f"{what} {where!r} dropped: not a finite number")
        return amount
    return str(value)[:limit]


def _plain_number(value: float | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


# -- user properties ---------------------------------------------------------------------------


def user_properties(
    event: EventData, settings: Ga4MpSettings, micros: int, warn: Warn
) -> dict[str, dict[str, Any]]:
    """`x-ga-mp2-user_properties` (the GA4 client's `up.*` / `upn.*`) without `_user_id`, with
    the `user_properties` setting on top, each as `{"value": v, "timestamp_micros": t}`."""
    found = event.get("x-ga-mp2-user_properties")
    raw = {k: v for k, v in found.items() if k != "_user_id"} if isinstance(found, dict) else {}
    out: dict[str, dict[str, Any]] = {}
    names = list(overlay(raw, settings.user_properties).items())
    for position, (name, value) in enumerate(names):
        if not present(value):
            continue
        if len(out) == MAX_USER_PROPERTIES:
            warn(
                f"{len(names) - position} user properties dropped, GA4 takes {MAX_USER_PROPERTIES}"
            )
            break
        problem = name_problem(name, MAX_USER_PROPERTY_NAME_CHARS)
        if problem is None and name in RESERVED_USER_PROPERTY_NAMES:
            problem = "reserved by GA4"
        if problem:
            warn(f"user property {name[:60]!r} dropped: the name is {problem}")
            continue
        if isinstance(value, dict | list):
            warn(f"user property {name!r} dropped: GA4 takes text and numbers")
            continue
        kept = _scalar(name, value, MAX_USER_PROPERTY_VALUE_CHARS, "user property", warn)
        if kept is not None:
            out[name] = {"value": kept, "timestamp_micros": micros}
    return out


# -- consent, user data, device ----------------------------------------------------------------


def consent(event: EventData, consent_default: str) -> dict[str, str]:
    """`ad_user_data` / `ad_personalization` as the event states them. A type the event does not
    state is sent only when the container's default is `denied` (a denial is never lost, and
    consent is never claimed for a visitor who did not give it)."""
    state = consent_state(event)
    out = {}
    for name in ("ad_user_data", "ad_personalization"):
        granted = state.get(name)
        if granted is None:
            if consent_default == "granted":
                continue
            granted = False
        out[name] = "GRANTED" if granted else "DENIED"
    return out


def user_data(event: EventData, phone_country_code: str | None) -> dict[str, Any]:
    """Google's `user_data`, normalized and hashed per Google's rules (.normalize). Values already
    hashed (64 hex characters) are sent as they are."""
    data = event.get("user_data")
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {}
    emails = _hashes(
        values(data, "sha256_email_address", "email_address", "email"), google.google_email
    )
    if emails:
        out["sha256_email_address"] = emails
    phones = _hashes(
        values(data, "sha256_phone_number", "phone_number", "phone"),
        lambda raw: pii.e164(raw, phone_country_code),
    )
    if phones:
        out["sha256_phone_number"] = phones
    # Entries are sliced before they are normalized: a hit may list thousands.
    entries = _address_entries(data)[: MAX_IDENTIFIERS * pii.LOOKED_AT_PER_KEPT]
    addresses = [a for a in map(_address, entries) if a][:MAX_IDENTIFIERS]
    if addresses:
        out["address"] = addresses
    return out


def _hashes(values: Iterable[Any], normalize: Callable[[Any], str | None]) -> list[str]:
    def digest_of(value: Any) -> str | None:
        digest = pii.hashed(value)
        if digest is None:
            normalized = normalize(value)
            digest = pii.sha256_hex(normalized) if normalized else None
        return digest or None

    return pii.distinct(values, digest_of, MAX_IDENTIFIERS)


def _address_entries(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    address = data.get("address")
    entries = address if isinstance(address, list) else [address]
    return [entry for entry in entries if isinstance(entry, dict)]


_HASHED_ADDRESS = {
    "sha256_first_name": ("first_name", google.google_name),
    "sha256_last_name": ("last_name", google.google_name),
    "sha256_street": ("street", google.google_street),
}
_PLAIN_ADDRESS = {
    "city": google.google_city,
    "region": google.google_region,
    "postal_code": google.google_postal_code,
    "country": google.google_country,
}


def _address(entry: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for field, (plain_key, normalize) in _HASHED_ADDRESS.items():
        found = _hashes(values(entry, field, plain_key), normalize)
        if found:
            out[field] = found[0]
    for field, normalize in _PLAIN_ADDRESS.items():
        value = normalize(entry.get(field))
        if value:
            out[field] = value
    return out


def ip_override(event: EventData) -> str | None:
    value = text(event.get("ip_override"))
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        return None


def user_location(event: EventData) -> dict[str, str]:
    """From the server's geolocation (`event_location`), when it has the codes GA4 takes."""
    found = event.get("event_location")
    if not isinstance(found, dict):
        return {}
    out = {}
    country = (text(found.get("country")) or "").upper()
    if _COUNTRY_ID.fullmatch(country):
        out["country_id"] = country
    region = (text(found.get("region")) or "").upper()
    if _REGION_ID.fullmatch(region):
        out["region_id"] = region
    city = text(found.get("city"))
    if city:
        out["city"] = city[:MAX_VALUE_CHARS]
    return out


def device(event: EventData) -> dict[str, str]:
    """Language and screen from the hit, the rest from its client hints."""
    out: dict[str, str] = {}
    language = text(event.get("language"))
    if language:
        out["language"] = language[:MAX_VALUE_CHARS]
    screen = text(event.get("screen_resolution"))
    if screen and _SCREEN.fullmatch(screen):
        out["screen_resolution"] = screen
    hints = event.get("client_hints")
    if not isinstance(hints, dict):
        return out
    mobile = hints.get("mobile")
    if isinstance(mobile, bool):
        out["category"] = "mobile" if mobile else "desktop"
    for field, key in (
        ("operating_system", "platform"),
        ("operating_system_version", "platform_version"),
        ("model", "model"),
    ):
        value = text(hints.get(key))
        if value:
            out[field] = value[:MAX_VALUE_CHARS]
    browser = _browser(hints.get("full_version_list"))
    if browser is not None:
        out["browser"], out["browser_version"] = browser
    return out


def _browser(brands: Any) -> tuple[str, str] | None:
    """The real browser of a client-hints brand list: not a GREASE brand ("Not A;Brand"), and
    Chromium only when nothing more specific is listed."""
    if not isinstance(brands, list):
        return None
    found = []
    for entry in brands:
        if not isinstance(entry, dict):
            continue
        brand, version = text(entry.get("brand")), text(entry.get("version"))
        if brand and version and "not" not in brand.lower():
            found.append((brand[:MAX_VALUE_CHARS], version[:MAX_VALUE_CHARS]))
    specific = [b for b in found if b[0] != "Chromium"]
    candidates = specific or found
    return candidates[0] if candidates else None


# -- helpers -----------------------------------------------------------------------------------


def _kind(value: Any) -> str:
    return "an object" if isinstance(value, dict) else "a list"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMES_SHOWN])
    return shown + (f" and {len(names) - _MAX_NAMES_SHOWN} more" if len(names) > 5 else "")
