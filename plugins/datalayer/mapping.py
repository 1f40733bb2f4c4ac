"""One raw event object (a dataLayer push or a Data Tag hit) -> sGTM event data. Pure functions.

dataLayer pushes (GA4's ecommerce schema, as sgtm.js forwards them):
- `event` -> `event_name` (`event_name` or `eventName`, when sent, win: the Data Tag's names).
- The `ecommerce` object's keys move to the top level, as gtag sends ecommerce parameters:
  `ecommerce.items` -> `items`, `.value` -> `value`, `.currency`, `.transaction_id`, `.tax`,
  `.shipping`, `.coupon`, ... Its values win over top-level keys of the same name.
- Everything else is kept as sent (`user_data` nested, page context, `event_id`, custom keys),
  except GTM's internal `gtm.*` keys.

Data Tag hits (Stape's Data Client rules, applied only to them): `data_tag_custom_data` entries
become keys, `important_cookie_values` (`_fbp`, `_fbc`, `_dcid`) become keys, and the aliases of
ALIASES fill a standard key the hit lacks (`url` -> `page_location`, `ip` -> `ip_override`,
`email` -> `user_data.email_address`...). Aliases stay in the event as Stape keeps them. The
transport parameters `v`, `richsstsse` and `data_tag` are dropped.

Types of the standard keys are checked (TYPES); a wrong one drops that key and counts
`datalayer.invalid_field`, the event is kept. Numeric strings are accepted for numbers
(`"12.50"` -> 12.5) and numbers for identifiers (`1001` -> `"1001"`). `items` keeps its objects
(`datalayer.invalid_item` for anything else), at most MAX_ITEMS (`datalayer.too_many_items`).
An event without a usable name raises `EventError`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from sgtm.kit.mapping import number, present
from sgtm.plugin import EventData, get_path, set_path

Drop = Callable[[str], None]

NAME_KEYS = ("event_name", "eventName", "event")
MAX_NAME_CHARS = 256
MAX_ITEMS = 200
DATA_TAG_TRANSPORT = ("v", "richsstsse", "data_tag")
IMPORTANT_COOKIES = ("_fbp", "_fbc", "_dcid")

# Stape Data Client: the first alias with a value fills the standard key when it is absent.
ALIASES: dict[str, tuple[str, ...]] = {
    "page_location": ("pageLocation", "url", "href"),
    "page_referrer": ("pageReferrer", "referrer"),
    "page_hostname": ("pageHostname", "hostname"),
    "page_path": ("pagePath",),
    "page_title": ("pageTitle",),
    "page_encoding": ("pageEncoding",),
    "screen_resolution": ("screenResolution",),
    "viewport_size": ("viewportSize",),
    "user_id": ("userId",),
    "user_agent": ("userAgent",),
    "ip_override": ("ip", "ipOverride"),
    "user_data.email_address": ("userEmail", "email_address", "email", "mail"),
    "user_data.phone_number": ("userPhoneNumber", "phone_number", "phoneNumber", "phone"),
    "user_data.address.first_name": ("userFirstName", "first_name", "firstName", "name"),
    "user_data.address.last_name": (
        "userLastName",
        "last_name",
        "lastName",
        "surname",
        "family_name",
        "familyName",
    ),
    "user_data.address.street": ("street",),
    "user_data.address.city": ("city",),
    "user_data.address.region": ("region", "state"),
    "user_data.address.country": ("country",),
    "user_data.address.postal_code": ("postal_code", "postalCode", "zip"),
}


class EventError(ValueError):
    """The object cannot become an event; the message says why."""


class _Invalid(Exception):
    pass


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid
    return value


def _identifier(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _Invalid
    return str(value)


def _number(value: Any) -> int | float:
    found = number(value)
    if found is None:
        raise _Invalid
    return int(found) if found.is_integer() and abs(found) < 2**53 else found


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid
    return value


def _ip(value: Any) -> str:
    try:
        return str(ipaddress.ip_address(_text(value).strip()))
    except ValueError:
        raise _Invalid from None


def _consent(value: Any) -> dict[str, bool]:
    """`{type: bool}` from booleans or `granted`/`denied` (what gtag and the Data Tag send);
    entries of another kind (`wait_for_update: 500`) are left out."""
    state = {}
    for name, given in _object(value).items():
        if isinstance(given, bool):
            state[name] = given
        elif isinstance(given, str) and given.strip().lower() in ("granted", "denied"):
            state[name] = given.strip().lower() == "granted"
    return state


TYPES: dict[str, Callable[[Any], Any]] = {
    "value": _number,
    "tax": _number,
    "shipping": _number,
    "currency": _text,
    "transaction_id": _identifier,
    "event_id": _identifier,
    "client_id": _identifier,
    "user_id": _identifier,
    "page_location": _text,
    "page_referrer": _text,
    "page_title": _text,
    "language": _text,
    "screen_resolution": _text,
    "user_agent": _text,
    "ip_override": _ip,
    "user_data": _object,
    "consent_state": _consent,
}


def to_event(entry: dict[str, Any], *, data_tag: bool, drop: Drop) -> EventData:
    rest = {k: v for k, v in entry.items() if not k.startswith("gtm.")}
    event: EventData = {"event_name": _name(rest)}
    event.update(rest)
    if data_tag:
        _data_tag_fields(event)
    ecommerce = event.pop("ecommerce", None)
    if isinstance(ecommerce, dict):
        event.update(ecommerce)
    elif ecommerce is not None:
        drop("datalayer.invalid_field")
    for key, check in TYPES.items():
        if key in event:
            try:
                event[key] = check(event[key])
            except _Invalid:
                del event[key]
                drop("datalayer.invalid_field")
    if "items" in event:
        _items(event, drop)
    return event


def _name(entry: dict[str, Any]) -> str:
    found = [entry.pop(key) for key in NAME_KEYS if key in entry]
    if not found:
        raise EventError("no event name: send `event` (or `event_name`)")
    name = found[0]
    if not isinstance(name, str) or not name.strip():
        raise EventError("the event name must be a non-empty string")
    if len(name) > MAX_NAME_CHARS:
        raise EventError(f"the event name is longer than {MAX_NAME_CHARS} characters")
    return name


def _data_tag_fields(event: EventData) -> None:
    for key in DATA_TAG_TRANSPORT:
        event.pop(key, None)
    custom = event.pop("data_tag_custom_data", None)
    pairs = custom.values() if isinstance(custom, dict) else custom
    if isinstance(pairs, list):
        for pair in pairs:
            if isinstance(pair, dict) and isinstance(pair.get("name"), str) and pair["name"]:
                event[pair["name"]] = pair.get("value")
    cookies = event.pop("important_cookie_values", None)
    if isinstance(cookies, dict):
        for name in IMPORTANT_COOKIES:
            values = cookies.get(name)
            if isinstance(values, list) and values and isinstance(values[0], str):
                event[name] = values[0]
    user_data_ok = isinstance(event.get("user_data", {}), dict)
    for target, sources in ALIASES.items():
        if present(get_path(event, target)) or (
            target.startswith("user_data.") and not user_data_ok
        ):
            continue
        for source in sources:
            value = event.get(source)
            if present(value) and not isinstance(value, (dict, list)):
                set_path(event, target, value)
                break


def _items(event: EventData, drop: Drop) -> None:
    found = event["items"]
    if not isinstance(found, list):
        del event["items"]
        drop("datalayer.invalid_field")
        return
    kept = [item for item in found if isinstance(item, dict)]
    if len(kept) < len(found):
        drop("datalayer.invalid_item")
    if len(kept) > MAX_ITEMS:
        drop("datalayer.too_many_items")
        kept = kept[:MAX_ITEMS]
    event["items"] = kept
