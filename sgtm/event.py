"""Event data: a plain dict keyed exactly as sGTM's common event data, with dotted-path access.

Nested objects are real nested dicts, so `get(event, "user_data.address.city")` walks them. A key
that itself contains a dot (rare, but `x-ga-*` names never do) is found first as a literal key.
"""

from __future__ import annotations

from typing import Any

import msgspec

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
    if "." not in path:  # most keys are top-level: no walk
        return default
    node: Any = event
    for part in path.split("."):
        if isinstance(node, dict):
            node = node.get(part, _MISSING)
        elif isinstance(node, list) and _is_index(part):
            index = int(part)
            node = node[index] if index < len(node) else _MISSING
        else:
            return default
        if node is _MISSING:
            return default
    return node


def has(event: EventData, path: str) -> bool:
    return get(event, path, _MISSING) is not _MISSING


def _is_index(part: str) -> bool:
    return part.isascii() and part.isdigit()  # "²".isdigit() is true, int("²") fails


def _in_list(node: Any, part: str) -> bool:
    return isinstance(node, list) and _is_index(part) and int(part) < len(node)


def set_path(event: EventData, path: str, value: Any) -> None:
    """Set a value, creating intermediate dicts (replacing non-dict values on the way).

    Like `get`, an existing list is walked by index (`items.0.price`); it is replaced only when
    the next part is not one of its indexes.
    """
    parts = path.split(".")
    node: Any = event  # a dict, or a list whose index `part` was checked on the way
    for i, part in enumerate(parts[:-1]):
        key: Any = int(part) if isinstance(node, list) else part
        child = node[key] if isinstance(node, list) else node.get(part)
        if not (isinstance(child, dict) or _in_list(child, parts[i + 1])):
            child = {}
            node[key] = child
        node = child
    last = parts[-1]
    node[int(last) if isinstance(node, list) else last] = value


def delete_path(event: EventData, path: str) -> None:
    if path in event:
        del event[path]
        return
    parts = path.split(".")
    node: Any = event
    for part in parts[:-1]:
        if isinstance(node, dict):
            node = node.get(part)
        elif _in_list(node, part):
            node = node[int(part)]
        else:
            return
    if isinstance(node, dict):
        node.pop(parts[-1], None)
    elif _in_list(node, parts[-1]):
        del node[int(parts[-1])]


def own_path(event: EventData, path: str, owned: dict[int, Any]) -> None:
    """Make every dict or list on the way to `path`'s last part one of `owned` (by `id`; the
    values keep each copy alive, so no id is reused while the caller holds them): a container
    not yet owned is replaced by a shallow copy of it. Then `set_path` and `delete_path` on
    `event` (owned itself) change only owned containers: copy on write, for a view of an event
    that shares with it whatever is not written under. Walks the same way as those two."""
    parts = path.split(".")
    node: Any = event
    for part in parts[:-1]:
        if isinstance(node, dict):
            key: Any = part
            child = node.get(part)
        elif _in_list(node, part):
            key = int(part)
            child = node[key]
        else:
            return
        if isinstance(child, dict | list):
            if id(child) not in owned:
                child = child.copy()
                owned[id(child)] = child
                node[key] = child
        else:
            return  # a scalar or nothing: set_path puts a new dict there, delete_path stops
        node = child


def copy_event(event: EventData) -> EventData:
    """A deep copy of the dict/list structure (leaves are immutable JSON scalars)."""
    try:
        # A msgpack round trip copies in C, about twice as fast as walking the structure.
        copied: EventData = _copy_decoder.decode(_copy_encoder.encode(event))
    except (TypeError, ValueError, OverflowError, msgspec.MsgspecError):
        return _copy(event)  # type: ignore[no-any-return]  # a value msgpack cannot hold
    return copied


_copy_encoder = msgspec.msgpack.Encoder()
_copy_decoder = msgspec.msgpack.Decoder(dict)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
