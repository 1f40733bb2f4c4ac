"""Validation messages for a Measurement Protocol request, in the shape of Google's validation
server (`/debug/mp/collect`), from the limits and names in `rules.py` that the `ga4_mp` tag
enforces when it sends.

    {"validationMessages": [{"fieldPath": "events", "description": "...",
                             "validationCode": "NAME_INVALID"}]}

Codes are Google's: VALUE_INVALID, VALUE_REQUIRED, NAME_INVALID, NAME_RESERVED,
VALUE_OUT_OF_BOUNDS, EXCEEDED_MAX_ENTITIES, NAME_DUPLICATED. Where Google's own wording is known
(an invalid event name, a missing client_id, a client_id without GA's `<number>.<number>` form, a
param that is not a string or number, an unknown field) it is used; the rest say the same kind of
thing about the rule at hand. Unlike Google's server, which answers one message at a time, every
problem found is listed (at most `MAX_MESSAGES`).

Booleans in params pass, as the tag sends them (GA4 stores them as text).
"""

from __future__ import annotations

import re
from typing import Any

from .rules import (
    ITEM_FIELDS,
    MAX_AGE_SECONDS,
    MAX_BODY_BYTES,
    MAX_CUSTOM_ITEM_PARAMS,
    MAX_EVENTS_PER_REQUEST,
    MAX_ITEMS_PER_EVENT,
    MAX_NAME_CHARS,
    MAX_PARAMS_PER_EVENT,
    MAX_USER_ID_CHARS,
    MAX_USER_PROPERTIES,
    MAX_USER_PROPERTY_NAME_CHARS,
    MAX_USER_PROPERTY_VALUE_CHARS,
    MAX_VALUE_CHARS,
    RESERVED_EVENT_NAMES,
    RESERVED_PREFIXES,
    RESERVED_USER_PROPERTY_NAMES,
    VALUE_CHARS,
    name_problem,
)

Message = dict[str, str]
MAX_MESSAGES = 100

REQUEST_FIELDS = frozenset(
    {
        "client_id",
        "app_instance_id",
        "user_id",
        "timestamp_micros",
        "user_properties",
        "user_data",
        "consent",
        "non_personalized_ads",
        "user_location",
        "ip_override",
        "device",
        "validation_behavior",
        "validationBehavior",
        "events",
    }
)
EVENT_FIELDS = frozenset({"name", "params", "timestamp_micros"})
_GA_CLIENT_ID = re.compile(r"[0-9]+\.[0-9]+")


def message(code: str, description: str, field_path: str | None = None) -> Message:
    out = {"description": description, "validationCode": code}
    return {"fieldPath": field_path, **out} if field_path is not None else out


def validation_messages(
    body: Any, now: float, *, size: int = 0, app: bool = False
) -> list[Message]:
    """Everything GA4 (or the `ga4_mp` tag) would refuse or drop in this request body. `app`:
    the request names a `firebase_app_id` (its id field is `app_instance_id`)."""
    out = unusable(body, app)
    if not isinstance(body, dict):
        return out
    if size >= MAX_BODY_BYTES:
        out.append(
            message(
                "VALUE_OUT_OF_BOUNDS",
                f"Measurement request body is {size} bytes; it must be smaller than "
                f"{MAX_BODY_BYTES} bytes.",
            )
        )
    for key in body:
        if key not in REQUEST_FIELDS:
            out.append(
                message(
                    "VALUE_INVALID",
                    f"Unable to parse Measurement Protocol JSON payload. {str(key)[:40]}: "
                    "Cannot find field.",
                )
            )
    out += _recommendations(body, app)
    out += _user_id(body.get("user_id"))
    out += _timestamp("timestamp_micros", body.get("timestamp_micros"), now)
    events = body.get("events")
    for index, entry in enumerate(
        events[:MAX_EVENTS_PER_REQUEST] if isinstance(events, list) else []
    ):
        out += event_messages(index, entry, now)
    out += _user_properties(body.get("user_properties"))
    return out[:MAX_MESSAGES]


def unusable(body: Any, app: bool = False) -> list[Message]:
    """What leaves GA4 nothing to record: not an object, no client id, no events or too many."""
    if not isinstance(body, dict):
        return [message("VALUE_INVALID", "Unable to parse Measurement Protocol JSON payload.")]
    out = []
    id_field = "app_instance_id" if app else "client_id"
    cid = body.get(id_field)
    if cid is None or cid == "":
        out.append(message("VALUE_REQUIRED", f"Measurement requires a {id_field}.", id_field))
    elif not isinstance(cid, str):
        out.append(message("VALUE_INVALID", f"{id_field} must be a string.", id_field))
    events = body.get("events")
    if not isinstance(events, list) or not events:
        out.append(message("VALUE_REQUIRED", "Measurement requires events.", "events"))
    elif len(events) > MAX_EVENTS_PER_REQUEST:
        out.append(
            message(
                "EXCEEDED_MAX_ENTITIES",
                f"Measurement has {len(events)} events; at most {MAX_EVENTS_PER_REQUEST} "
                "are allowed.",
                "events",
            )
        )
    return out


def _recommendations(body: dict[str, Any], app: bool) -> list[Message]:
    """With `validation_behavior: ENFORCE_RECOMMENDATIONS`: a client_id in GA's form."""
    cid = body.get("client_id")
    if app or _behavior(body) != "ENFORCE_RECOMMENDATIONS" or not isinstance(cid, str) or not cid:
        return []
    if _GA_CLIENT_ID.fullmatch(cid):
        return []
    return [
        message(
            "VALUE_INVALID",
            f"client_id [{cid[:60]}] has invalid format. It should be in <number>.<number> format.",
            "client_id",
        )
    ]


def _user_id(uid: Any) -> list[Message]:
    if uid is not None and not isinstance(uid, str):
        return [message("VALUE_INVALID", "user_id must be a string.", "user_id")]
    if isinstance(uid, str) and len(uid) > MAX_USER_ID_CHARS:
        return [
            message(
                "VALUE_OUT_OF_BOUNDS",
                f"user_id is {len(uid)} characters; at most {MAX_USER_ID_CHARS} are allowed.",
                "user_id",
            )
        ]
    return []


def _behavior(body: dict[str, Any]) -> Any:
    return body.get("validation_behavior", body.get("validationBehavior"))


def _timestamp(path: str, value: Any, now: float) -> list[Message]:
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool):
        return [message("VALUE_INVALID", f"Measurement {path} must be an integer.", path)]
    if value < (now - MAX_AGE_SECONDS) * 1_000_000:
        return [
            message(
                "VALUE_INVALID",
                f"Measurement {path} has timestamp [{value}] that is more than "
                f"{MAX_AGE_SECONDS // 3600} hours in the past.",
                path,
            )
        ]
    return []


def event_messages(index: int, entry: Any, now: float) -> list[Message]:
    where = f"events[{index}]"
    if not isinstance(entry, dict):
        return [message("VALUE_INVALID", f"Event at index: [{index}] is not an object.", where)]
    out = [
        message(
            "VALUE_INVALID",
            f"Unable to parse Measurement Protocol JSON payload. ({where}) {str(key)[:40]}: "
            "Cannot find field.",
        )
        for key in entry
        if key not in EVENT_FIELDS
    ]
    out += name_messages(index, entry.get("name"))
    out += _timestamp(f"{where}.timestamp_micros", entry.get("timestamp_micros"), now)
    params = entry.get("params", {})
    if not isinstance(params, dict):
        return [*out, message("VALUE_INVALID", "params must be an object.", f"{where}.params")]
    if len(params) > MAX_PARAMS_PER_EVENT:
        out.append(
            message(
                "EXCEEDED_MAX_ENTITIES",
                f"Event at index: [{index}] has {len(params)} params; at most "
                f"{MAX_PARAMS_PER_EVENT} are allowed.",
                f"{where}.params",
            )
        )
    for key, value in params.items():
        out += _param(f"{where}.params", key, value)
    return out


def name_messages(index: int, name: Any) -> list[Message]:
    """Problems with an event's name: it is required, GA4's charset and length, not reserved."""
    if name is None or name == "":
        return [message("VALUE_REQUIRED", "Event name is required.", f"events[{index}].name")]
    if not isinstance(name, str):
        return [message("VALUE_INVALID", "Event name must be a string.", f"events[{index}].name")]
    shown = name[:60]
    problem = name_problem(name)
    if problem is not None:
        code = "NAME_RESERVED" if "reserved" in problem else "NAME_INVALID"
        return [
            message(
                code,
                f"Event at index: [{index}] has invalid name [{shown}]. {_name_rule(name)}",
                "events",
            )
        ]
    if name in RESERVED_EVENT_NAMES:
        return [
            message(
                "NAME_RESERVED",
                f"Event at index: [{index}] has name [{shown}] which is reserved.",
                "events",
            )
        ]
    return []


def _name_rule(name: str) -> str:
    """The rule a name breaks, worded as Google's validation server words the first one."""
    if not name[:1].isascii() or not name[:1].isalpha():
        return "Names must start with an alphabetic character."
    if name.lower().startswith(RESERVED_PREFIXES):
        return f"Names must not start with {', '.join(RESERVED_PREFIXES)}."
    if len(name) > MAX_NAME_CHARS:
        return f"Names must be at most {MAX_NAME_CHARS} characters."
    return "Names must contain only alphanumeric characters and underscores."


def _param(parent: str, key: Any, value: Any) -> list[Message]:
    path = f"{parent}.{str(key)[:60]}"
    problem = name_problem(str(key))
    if problem is not None:
        code = "NAME_RESERVED" if "reserved" in problem else "NAME_INVALID"
        return [message(code, f"Param name [{str(key)[:60]}] is {problem}.", path)]
    if key == "items":
        return _items(path, value)
    limit = VALUE_CHARS.get(key, MAX_VALUE_CHARS)
    return _scalar(path, value, limit)


def _scalar(path: str, value: Any, limit: int) -> list[Message]:
    if isinstance(value, str):
        if len(value) > limit:
            return [
                message(
                    "VALUE_OUT_OF_BOUNDS",
                    f"Value is {len(value)} characters; at most {limit} are allowed.",
                    path,
                )
            ]
        return []
    if isinstance(value, int | float | bool):
        return []
    return [message("VALUE_INVALID", "Value is not a string or number.", path)]


def _items(path: str, value: Any) -> list[Message]:
    if not isinstance(value, list):
        return [message("VALUE_INVALID", "items must be an array of item objects.", path)]
    out = []
    if len(value) > MAX_ITEMS_PER_EVENT:
        out.append(
            message(
                "EXCEEDED_MAX_ENTITIES",
                f"{len(value)} items; at most {MAX_ITEMS_PER_EVENT} are allowed.",
                path,
            )
        )
    for index, item in enumerate(value[:MAX_ITEMS_PER_EVENT]):
        where = f"{path}[{index}]"
        if not isinstance(item, dict):
            out.append(message("VALUE_INVALID", "An item must be an object.", where))
            continue
        if "item_id" not in item and "item_name" not in item:
            out.append(message("VALUE_REQUIRED", "An item needs item_id or item_name.", where))
        custom = [k for k in item if k not in ITEM_FIELDS]
        if len(custom) > MAX_CUSTOM_ITEM_PARAMS:
            out.append(
                message(
                    "EXCEEDED_MAX_ENTITIES",
                    f"Item has {len(custom)} custom params; at most {MAX_CUSTOM_ITEM_PARAMS} "
                    "are allowed.",
                    where,
                )
            )
        for key, field in item.items():
            out += _param(where, key, field) if key != "items" else []
    return out


def _user_properties(value: Any) -> list[Message]:
    if value is None:
        return []
    if not isinstance(value, dict):
        return [message("VALUE_INVALID", "user_properties must be an object.", "user_properties")]
    out = []
    if len(value) > MAX_USER_PROPERTIES:
        out.append(
            message(
                "EXCEEDED_MAX_ENTITIES",
                f"{len(value)} user properties; at most {MAX_USER_PROPERTIES} are allowed.",
                "user_properties",
            )
        )
    for name, prop in value.items():
        path = f"user_properties.{str(name)[:60]}"
        problem = name_problem(str(name), MAX_USER_PROPERTY_NAME_CHARS)
        if problem is None and name in RESERVED_USER_PROPERTY_NAMES:
            problem = "reserved by GA4"
        if problem is not None:
            code = "NAME_RESERVED" if "reserved" in problem else "NAME_INVALID"
            out.append(message(code, f"User property name [{str(name)[:60]}] is {problem}.", path))
            continue
        if not isinstance(prop, dict) or "value" not in prop:
            out.append(message("VALUE_REQUIRED", 'A user property is {"value": ...}.', path))
            continue
        out += _scalar(f"{path}.value", prop["value"], MAX_USER_PROPERTY_VALUE_CHARS)
    return out
