"""The beacon bodies as JSON Schemas, checked with Ajv's messages (Newtail's API answers 422 with
Ajv `allErrors` output, reference/destinations/newtail.md §3), so one response names every
problem: `[{"instancePath": "/items/0/quantity", "keyword": "type", "message": "must be number",
"params": {"type": "number"}, "schemaPath": "#/properties/items/items/properties/quantity/type"}]`.

The schemas are data; `validate` implements only the keywords they use, with Ajv v8's wording.
As in Ajv, a value of the wrong type gets only its `type` error, and unknown properties are
allowed (and ignored by the mapping). A property that is `null` counts as absent: Newtail's own
conversion example sends `"seller_id": null` and its reference JavaScript `seller_id:
item.sellerId || null`, so optional fields take null, and a required one that is null is
reported missing.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

Schema = dict[str, Any]
AjvError = dict[str, Any]

MAX_ITEMS = 500
MAX_URL_CHARS = 4096

ID: Schema = {"type": "string", "minLength": 1, "maxLength": 256}
TEXT: Schema = {"type": "string", "maxLength": 256}
SHA256: Schema = {"type": "string", "pattern": "^[A-Fa-f0-9]{64}$"}
# http(s) only, a host of host characters (no user info), then printable ASCII: a signed event
# URL is never anything else. Which hosts may be called is the newtail tag's decision.
EVENT_URL: Schema = {
    "type": "string",
    "maxLength": MAX_URL_CHARS,
    "pattern": "^https?://[A-Za-z0-9.:\\[\\]-]+([/?#][!-~]*)?$",
}
PAGE_URL: Schema = {"type": "string", "maxLength": 8192}
CONSENT_STATE: Schema = {
    "type": "object",
    "maxProperties": 16,
    "additionalProperties": {"type": ["boolean", "string"]},
}
COMMON: dict[str, Schema] = {
    "session_id": ID,
    "user_id": ID,
    "event_id": ID,
    "page_location": PAGE_URL,
    "consent_state": CONSENT_STATE,
}


def ad_event_schema(kind: str) -> Schema:
    """impression / view / click: the signed URL under `<kind>_url`, or under `url`."""
    return {
        "type": "object",
        "required": ["session_id", f"{kind}_url"],
        "properties": {**COMMON, f"{kind}_url": EVENT_URL, "url": EVENT_URL},
    }


ITEM: Schema = {
    "type": "object",
    "required": ["sku", "quantity", "price", "promotional_price"],
    "properties": {
        "sku": ID,
        "quantity": {"type": "number", "exclusiveMinimum": 0},
        "price": {"type": "number", "minimum": 0},
        "promotional_price": {"type": "number", "minimum": 0},
        "seller_id": ID,
        "product_id": ID,
    },
}

# Newtail's conversion fields; `email` / `phone` may stand in for their hashes (sgtm hashes).
CONVERSION: Schema = {
    "type": "object",
    "required": [
        "publisher_id",
        "user_id",
        "session_id",
        "order_id",
        "created_at",
        "items",
        "channel",
        "email_hashed",
    ],
    "properties": {
        **COMMON,
        "publisher_id": ID,
        "order_id": ID,
        "created_at": {"type": "string", "format": "date-time"},
        "items": {"type": "array", "minItems": 1, "maxItems": MAX_ITEMS, "items": ITEM},
        "channel": {"type": "string", "minLength": 1, "maxLength": 64},
        "brand": TEXT,
        "email_hashed": SHA256,
        "phone_hashed": SHA256,
        "social_id_hashed": SHA256,
        "first_name_hashed": SHA256,
        "last_name_hashed": SHA256,
        "email": {"type": "string", "minLength": 3, "maxLength": 256},
        "phone": {"type": "string", "minLength": 3, "maxLength": 64},
        "gender": {"enum": ["F", "M", "O", None]},
        "uf": TEXT,
        "city": TEXT,
        "is_company": {"type": "boolean"},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "value": {"type": "number", "minimum": 0},
    },
}

# A required property also counts as present when one of these stands in for it.
STAND_INS = {
    "email_hashed": ("email",),
    "impression_url": ("url",),
    "view_url": ("url",),
    "click_url": ("url",),
}

_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})"
)
_PY_TYPES: dict[str, Any] = {
    "string": str,
    "object": dict,
    "array": list,
    "boolean": bool,
    "null": type(None),
}


# A sender learns what to fix from the first errors; listing one per item of a 500-item body
# would cost as much as 40 hits to refuse it.
MAX_ERRORS = 20


def validate(value: Any, schema: Schema) -> list[AjvError]:
    """Ajv-style errors, at most MAX_ERRORS of them (validation stops there)."""
    errors: list[AjvError] = []
    _check(value, schema, "", "#", errors)
    return errors[:MAX_ERRORS]


def _error(path: str, schema_path: str, keyword: str, message: str, **params: Any) -> AjvError:
    return {
        "instancePath": path,
        "keyword": keyword,
        "message": message,
        "params": params,
        "schemaPath": f"{schema_path}/{keyword}",
    }


def _is_type(value: Any, name: str) -> bool:
    if name == "number":  # JSON numbers; a bool is not one, and NaN never comes out of JSON
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _PY_TYPES[name])


def _check(value: Any, schema: Schema, path: str, spath: str, errors: list[AjvError]) -> None:
    if len(errors) >= MAX_ERRORS:
        return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(
            _error(
                path,
                spath,
                "enum",
                "must be equal to one of the allowed values",
                allowedValues=schema["enum"],
            )
        )
        return
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(_is_type(value, name) for name in names):
            joined = ",".join(names)
            errors.append(_error(path, spath, "type", f"must be {joined}", type=joined))
            return
    if isinstance(value, str):
        _check_string(value, schema, path, spath, errors)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(value, schema, path, spath, errors)
    elif isinstance(value, list):
        _check_array(value, schema, path, spath, errors)
    elif isinstance(value, dict):
        _check_object(value, schema, path, spath, errors)


def _check_string(value: str, schema: Schema, path: str, spath: str, errors: list[Any]) -> None:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        limit = schema["maxLength"]
        message = f"must NOT have more than {limit} characters"
        errors.append(_error(path, spath, "maxLength", message, limit=limit))
        return  # and do not run patterns over megabytes
    if "minLength" in schema and len(value) < schema["minLength"]:
        limit = schema["minLength"]
        message = f"must NOT have fewer than {limit} characters"
        errors.append(_error(path, spath, "minLength", message, limit=limit))
    # Every pattern here is anchored; fullmatch also refuses the newline `$` would let through.
    if "pattern" in schema and not re.fullmatch(schema["pattern"], value):
        pattern = schema["pattern"]
        message = f'must match pattern "{pattern}"'
        errors.append(_error(path, spath, "pattern", message, pattern=pattern))
    if schema.get("format") == "date-time" and not _is_date_time(value):
        message = 'must match format "date-time"'
        errors.append(_error(path, spath, "format", message, format="date-time"))


def _is_date_time(value: str) -> bool:
    if not _DATE_TIME.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value.upper().replace(" ", "T"))
    except ValueError:  # 2024-02-30, 25:00 ...
        return False
    return True


def _check_number(value: float, schema: Schema, path: str, spath: str, errors: list[Any]) -> None:
    if not math.isfinite(value):
        errors.append(_error(path, spath, "type", "must be number", type="number"))
    elif "minimum" in schema and value < schema["minimum"]:
        limit = schema["minimum"]
        errors.append(
            _error(path, spath, "minimum", f"must be >= {limit}", comparison=">=", limit=limit)
        )
    elif "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        limit = schema["exclusiveMinimum"]
        errors.append(
            _error(
                path, spath, "exclusiveMinimum", f"must be > {limit}", comparison=">", limit=limit
            )
        )


def _check_array(
    value: list[Any], schema: Schema, path: str, spath: str, errors: list[Any]
) -> None:
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        limit = schema["maxItems"]
        message = f"must NOT have more than {limit} items"
        errors.append(_error(path, spath, "maxItems", message, limit=limit))
        return
    if "minItems" in schema and len(value) < schema["minItems"]:
        limit = schema["minItems"]
        message = f"must NOT have fewer than {limit} items"
        errors.append(_error(path, spath, "minItems", message, limit=limit))
    if "items" in schema:
        for index, item in enumerate(value):
            if len(errors) >= MAX_ERRORS:
                return
            _check(item, schema["items"], f"{path}/{index}", f"{spath}/items", errors)


def _check_object(
    value: dict[str, Any], schema: Schema, path: str, spath: str, errors: list[Any]
) -> None:
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        limit = schema["maxProperties"]
        message = f"must NOT have more than {limit} properties"
        errors.append(_error(path, spath, "maxProperties", message, limit=limit))
        return
    value = {name: item for name, item in value.items() if item is not None}
    for name in schema.get("required", ()):
        if name not in value and not any(alt in value for alt in STAND_INS.get(name, ())):
            message = f"must have required property '{name}'"
            errors.append(_error(path, spath, "required", message, missingProperty=name))
    properties = schema.get("properties", {})
    for name, sub in properties.items():
        if name in value:
            _check(
                value[name], sub, f"{path}/{_pointer(name)}", f"{spath}/properties/{name}", errors
            )
    extra = schema.get("additionalProperties")
    if extra is not None:
        for name, item in value.items():
            if name not in properties:
                sub_path = f"{spath}/additionalProperties"
                _check(item, extra, f"{path}/{_pointer(name)}", sub_path, errors)


def _pointer(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")
