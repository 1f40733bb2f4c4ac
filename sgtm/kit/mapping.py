"""Field maps from event data: the tables vendor tags fill their payloads from, and the event
facts every ad-platform tag reads the same way (when it happened, its id, the client IP, the
currency).

A tag keeps its default table as data, `{vendor_field: "dotted.event.key"}`, filled from sGTM's
standard keys (`user_data.email_address`, `transaction_id`, ...). A container's `fields` setting
adds or replaces entries; its values are what the core rendered from the YAML (`"{{event.plan}}"`,
`"{{plan}}"`, or a constant), so a tag uses them as they are. A value that is null or empty
leaves the field out, which is also how a container removes a default field (`Phone: null`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from sgtm import event as ev
from sgtm.event import EventData
from sgtm.plugin import InvalidEvent

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


# Top-level event data keys that hold a visitor's direct identifiers: sGTM's own and the Stape
# Data Tag aliases a dataLayer client keeps beside them (`email`, `userEmail`, `ip`...). Tags
# that forward event keys as parameters (analytics) leave these out: GA4 forbids personal data
# in parameters, and a vendor receives it only in the fields meant (and hashed) for it.
PERSONAL_KEYS = frozenset(
    {
        "user_data",
        "ip_override",
        *("email_address", "email", "mail", "userEmail"),
        *("phone_number", "phone", "phoneNumber", "userPhoneNumber"),
        *("first_name", "firstName", "userFirstName", "name"),
        *("last_name", "lastName", "surname", "family_name", "familyName", "userLastName"),
        *("address", "street", "postal_code", "postalCode", "zip"),
        *("ip", "ipOverride"),
    }
)


def present(value: Any) -> bool:
    """A value worth sending: not None, not an empty or blank string, not an empty list/dict."""
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip() != ""
    if isinstance(value, (list, dict)):
        return len(value) > 0
    return True


def read(event: EventData, table: Mapping[str, str]) -> dict[str, Any]:
    """`{field: value}` for every field of `table` whose dotted event key has a value."""
    out = {}
    for field, path in table.items():
        value = ev.get(event, path)
        if present(value):
            out[field] = value.strip() if isinstance(value, str) else value
    return out


def overlay(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` on top; an override without a value removes the field."""
    out = dict(base)
    for field, value in overrides.items():
        if present(value):
            out[field] = value.strip() if isinstance(value, str) else value
        else:
            out.pop(field, None)
    return out


def number(value: Any) -> float | None:
    """A finite number from a number or a numeric string (GA4 sends `"12.50"`); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        result = float(value)
    elif isinstance(value, str):
        if "_" in value:  # float() accepts "1_000"; a number in event data never has one
            return None
        try:
            result = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def text(value: Any) -> str | None:
    """A scalar as text (`12.0` -> `"12"`, booleans as `true`/`false`); None for containers."""
    if value is None or isinstance(value, (list, dict)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    result = str(value).strip()
    return result or None


def items(event: EventData) -> list[dict[str, Any]]:
    """The event's `items` that are objects (anything else in the list is ignored)."""
    found = event.get("items")
    if not isinstance(found, list):
        return []
    return [item for item in found if isinstance(item, dict)]


def values(data: Mapping[str, Any], *keys: str) -> list[Any]:
    """Every value under `keys`, in order, a list's elements one by one, without the nulls: the
    several places one identifier may come from (`sha256_email_address`, `email_address`, ...)."""
    found: list[Any] = []
    for key in keys:
        value = data.get(key)
        found.extend(value if isinstance(value, list) else [value])
    return [v for v in found if v is not None]


def is_sha256(value: str) -> bool:
    return _SHA256_RE.match(value) is not None


def email(value: Any) -> str | None:
    """A plain-text email address, trimmed and lower-cased, or None if it does not look like one."""
    if not isinstance(value, str):
        return None
    cleaned = value.strip().lower()
    if len(cleaned) > 254 or not _EMAIL_RE.match(cleaned):
        return None
    return cleaned


# -- event facts shared by ad-platform tags ------------------------------------------------------

# A timestamp this large is in milliseconds: 1e11 seconds is the year 5138.
_MILLISECONDS_FROM = 1e11
_canonical = msgspec.json.Encoder(order="sorted", enc_hook=str)


def event_time_ms(event: EventData, now: float) -> float:
    """When the event happened, in ms: `event_time` (seconds, ms or ISO 8601; a naive time is
    UTC), else the time the hit arrived (`x-sst-system_properties.request_start_time_ms`), else
    now. InvalidEvent when `event_time` is unreadable."""
    raw = event.get("event_time")
    if raw is not None and raw != "":
        seconds = _timestamp(raw)
        if seconds is None:
            raise InvalidEvent(f"event_time {str(raw)[:40]!r} is not a Unix time or ISO 8601")
        return seconds * 1000
    start = number(ev.get(event, "x-sst-system_properties.request_start_time_ms"))
    if start is not None and start > 0:
        return start
    return now * 1000


def _timestamp(raw: Any) -> float | None:
    found = number(raw)
    if found is not None:
        return found / 1000 if found >= _MILLISECONDS_FROM else found
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return None


def generated_event_id(event: EventData, now: float) -> str:
    """A deterministic id for an event that carries none: `sgtm-` + 32 hex characters of the
    SHA-256 of the whole event data (as the tag receives it, keys sorted) plus, when the event
    holds no time of its own, `now` in ms. The same event data always gets the same id."""
    digest = hashlib.sha256(_canonical.encode(event))
    if event.get("event_time") in (None, "") and not number(
        ev.get(event, "x-sst-system_properties.request_start_time_ms")
    ):
        digest.update(b"\x00" + str(int(now * 1000)).encode())
    return "sgtm-" + digest.hexdigest()[:32]


def client_ip(raw: Any) -> str | None:
    """The first address of `ip_override`, without a port (ad platforms refuse one) or a zone."""
    if not isinstance(raw, str):
        return None
    first = raw.replace(" ", "").split(",")[0]
    if first.startswith("["):  # [2001:db8::1]:443
        host = first[1 : first.find("]")] if "]" in first else ""
    elif first.count(":") == 1:  # 203.0.113.7:5678
        host = first.split(":")[0]
    else:
        host = first
    try:
        return str(ipaddress.ip_address(host.split("%")[0]))
    except ValueError:
        return None


def currency(event: EventData, event_items: list[dict[str, Any]]) -> str | None:
    """The event's ISO 4217 code (`currency`, else the first item's), upper-cased; None when it
    has none; InvalidEvent when it is no 3-letter code (`R$`, `EURO`)."""
    raw = event.get("currency")
    if raw is None or raw == "":
        raw = next((item.get("currency") for item in event_items if item.get("currency")), None)
    if raw is None or raw == "":
        return None
    code = raw.strip().upper() if isinstance(raw, str) else ""
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise InvalidEvent(f"currency {str(raw)[:40]!r} is not an ISO 4217 code such as EUR")
    return code
