"""Field maps from event data: the tables vendor tags fill their payloads from.

A tag keeps its default table as data, `{vendor_field: "dotted.event.key"}`, filled from sGTM's
standard keys (`user_data.email_address`, `transaction_id`, ...). A container's `fields` setting
adds or replaces entries; its values are what the core rendered from the YAML (`"{{event.plan}}"`,
`"{{plan}}"`, or a constant), so a tag uses them as they are. A value that is null or empty
leaves the field out, which is also how a container removes a default field (`Phone: null`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from sgtm import event as ev
from sgtm.event import EventData

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


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
