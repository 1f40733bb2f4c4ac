"""Event data: a plain dict keyed exactly as sGTM's common event data, with dotted-path access.

Nested objects are real nested dicts, so `get(event, "user_data.address.city")` walks them. A key
that itself contains a dot (rare, but `x-ga-*` names never do) is found first as a literal key.
"""

from __future__ import annotations

from typing import Any

EventData = dict[str, Any]

_MISSING = object()

# The sGTM common event data keys (reference/sgtm-model.md §3.1); used by docs and the schema.
COMMON_KEYS = (
    "event_name",
    "client_id",
    "page_location",
    "page_hostname",
    "page_path",
    "page_referrer",
    "page_title",
    "page_encoding",
    "language",
    "screen_resolution",
    "viewport_size",
    "user_agent",
    "ip_override",
    "user_id",
    "currency",
    "value",
    "items",
    "user_data.email_address",
    "user_data.phone_number",
    "user_data.address.first_name",
    "user_data.address.last_name",
    "user_data.address.street",
    "user_data.address.city",
    "user_data.address.region",
    "user_data.address.postal_code",
    "user_data.address.country",
)


def get(event: EventData, path: str, default: Any = None) -> Any:
    """Value at a dotted path; list indexes are allowed (`items.0.item_id`)."""
    if path in event:
        return event[path]
    node: Any = event
    for part in path.split("."):
        if isinstance(node, dict):
            node = node.get(part, _MISSING)
        elif isinstance(node, list) and part.isdigit():
            index = int(part)
            node = node[index] if index < len(node) else _MISSING
        else:
            return default
        if node is _MISSING:
            return default
    return node


def has(event: EventData, path: str) -> bool:
    return get(event, path, _MISSING) is not _MISSING


def set_path(event: EventData, path: str, value: Any) -> None:
    """Set a value, creating intermediate dicts (replacing non-dict values on the way)."""
    parts = path.split(".")
    node = event
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def delete_path(event: EventData, path: str) -> None:
    if path in event:
        del event[path]
        return
    parts = path.split(".")
    node: Any = event
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(parts[-1], None)


def copy_event(event: EventData) -> EventData:
    """A deep copy of the dict/list structure (leaves are immutable JSON scalars)."""
    return _copy(event)  # type: ignore[no-any-return]


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
