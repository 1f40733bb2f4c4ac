"""sGTM event data -> the params of one `/g/collect` hit: the GA4 client's mapping run backwards.

Pure functions, no I/O. The table is the client's own (`parse.PARAMS`), so every protocol field
goes back under the name it arrived with; where two wire names fill one key (`ck`/`ct`,
`edid`/`_edid`) the first one the table lists is sent. Values:
- numbers (`_p _s sct _et tfd`, `epn.*`, `upn.*`, item `pr qt ds lp`) as JavaScript writes
  them: integral values without a decimal point, others in their shortest exact form;
- booleans of protocol fields (`uamb uaw _ee lps`) as `1` / `0`; elsewhere as `true` / `false`;
- strings as they are, empty ones included (real hits carry `uam=` and `ur=`).

What else comes back:
- `items` -> `pr1`..`prN`: the two-letter keys of `parse.ITEM_FIELDS`, other item keys (ten at
  most) as the numbered pairs `k<i><name>` / `v<i><value>`;
- `x-ga-mp2-user_properties` -> `up.*` (strings) / `upn.*` (numbers), without `_user_id` (that is
  `uid`);
- `x-ga-mp2-<name>` -> `<name>`, `x-ga-system_properties.<name>` -> `_<name>`,
  `x-sst-system_properties.<name>` -> `sst.<name>`: what the client passed through goes back
  under its wire name, except what the server itself added (`request_start_time_ms`, the
  decoded `consent`, `gse`, `ngs`) and `richsstsse`, which asks a server container for a
  streamed answer and means nothing to Google;
- `user_data` -> `em` (`user_data.py`);
- every other top-level key -> `ep.<key>` (text, booleans) or `epn.<key>` (numbers); `value`,
  `tax` and `shipping` given as numeric text go as numbers, since GA4 counts revenue only then.
  Never as event params: keys the protocol fields above already carry, request facts
  (`user_agent`, `ip_override`, `event_location`, `consent_state`, ...), `x-*` keys, and the
  visitor's direct identifiers (`sgtm.kit.mapping.PERSONAL_KEYS`: sGTM's `email_address`,
  `phone_number`, names, `address`, and the Data Tag aliases `email`, `userEmail`, `phone`,
  `ip`...): GA4 forbids personal data in params; it travels only hashed, in `em`.
- `debug_mode` (truthy) adds `_dbg=1`, which DebugView needs, when the hit had no `_dbg`.
- Without `gcs` or `gcd` (an event gtag did not send), an event that states `ad_storage` /
  `analytics_storage` (the datalayer client's `consent_state`) gets
  `gcs=G1<ad_storage><analytics_storage>`, the container's default filling the type it does not
  state: otherwise GA4 would take a denial for a grant.

Objects and lists where GA4 takes a scalar (and `~` inside item values, which would split the
item) are dropped or removed and reported through `warn`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from sgtm.kit.mapping import PERSONAL_KEYS
from sgtm.plugin import EventData, consent_state

from . import user_data
from .parse import ITEM_FIELDS, ITEM_NUMBER_FIELDS, MAX_ITEMS, PARAMS, full_version_list, to_bool
from .parse import to_number as parse_number

Warn = Callable[[str], None]
Params = dict[str, str]

# encodeURIComponent's unreserved set, as gtag encodes names and values.
URI_COMPONENT_SAFE = "!~*'()"
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~!*'()-]*")
NOT_FORWARDED = frozenset({"richsstsse"})
SERVER_SYSTEM_PROPERTIES = frozenset({"request_start_time_ms", "consent", "gse", "ngs"})
NUMBER_PARAMS = frozenset({"value", "tax", "shipping"})
REQUEST_KEYS = frozenset(
    {
        "event_name",
        "items",
        "user_data",
        "user_agent",
        "ip_override",
        "page_path",
        "page_encoding",
        "viewport_size",
        "event_location",
        "consent_state",
        "timestamp_micros",
    }
)
_ITEM_KEYS = {field: key for key, field in ITEM_FIELDS.items()}
# Pairs k0..k9 only: from k10 on a value starting with a digit is ambiguous on the wire (`v1010`:
# pair 1 or pair 10?). Ten is also the Measurement Protocol's documented limit per item.
MAX_CUSTOM_ITEM_FIELDS = 10
_GCS_TYPES = ("ad_storage", "analytics_storage")


def _protocol_fields() -> dict[str, tuple[str, Any]]:
    """Wire name -> (event data path, converter) for the names the tag sends: the first name
    the client's table lists for each path."""
    seen: set[str] = set()
    fields = {}
    for name, (paths, convert) in PARAMS.items():
        if paths[0] in seen or name in NOT_FORWARDED:
            continue
        seen.add(paths[0])
        fields[name] = (paths[0], convert)
    return fields


FIELDS = _protocol_fields()
# Event data keys the protocol fields are read from: never sent again as event params.
_FIELD_KEYS = frozenset(path.partition(".")[0] for paths, _ in PARAMS.values() for path in paths)
# System properties the table maps; the others are passed through.
_KNOWN_SYSTEM_PROPERTIES = frozenset(
    p.removeprefix("x-ga-system_properties.")
    for paths, _ in PARAMS.values()
    for p in paths
    if p.startswith("x-ga-system_properties.")
)
_KNOWN_MP2 = frozenset(
    p.removeprefix("x-ga-mp2-")
    for paths, _ in PARAMS.values()
    for p in paths
    if p.startswith("x-ga-mp2-")
)


def encode(
    event: EventData,
    *,
    consent_default: str = "granted",
    send_user_data: bool = True,
    warn: Warn,
) -> Params:
    """Every param of the hit `event` describes, in the order gtag puts them."""
    params: Params = {}
    for name, (path, convert) in FIELDS.items():
        text = _field_text(name, _lookup(event, path), convert, warn)
        if text is not None:
            params[name] = text
    if "_dbg" not in params and _truthy(event.get("debug_mode")):
        params["_dbg"] = "1"
    if "gcs" not in params and "gcd" not in params and (gcs := _gcs(event, consent_default)):
        params["gcs"] = gcs
    _passthrough(event, params)
    _user_properties(event.get("x-ga-mp2-user_properties"), params, warn)
    if send_user_data and consent_state(event).get("ad_user_data") is not False:
        em = user_data.encode(event.get("user_data"))
        if em is not None:
            params["em"] = em
    _event_params(event, params, warn)
    _items(event.get("items"), params, warn)
    return params


def query(params: Mapping[str, str]) -> str:
    return "&".join(f"{_component(name)}={_component(value)}" for name, value in params.items())


def _component(text: str) -> str:
    # Most names and many values need no escape; quote() is the costliest step of a build.
    if _UNRESERVED.fullmatch(text):
        return text
    # errors="replace": a lone surrogate (possible in JSON-born event data) becomes "?"
    return quote(text, safe=URI_COMPONENT_SAFE, errors="replace")


def number_text(value: Any) -> str | None:
    """A number as JavaScript's String(n) writes it; numeric text as it is; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, str) and parse_number(value) is not None:
        return value.strip()
    return None


def _field_text(name: str, value: Any, convert: Any, warn: Warn) -> str | None:
    if value is None:
        return None
    if convert is parse_number:
        text = number_text(value)
        if text is None:
            warn(f"{name}: {_kind(value)} is not a number; not sent")
        return text
    if convert is to_bool:
        flag = to_bool(value) if isinstance(value, str) else value
        if not isinstance(flag, bool):
            warn(f"{name}: {_kind(value)} is not a boolean; not sent")
            return None
        return "1" if flag else "0"
    if convert is full_version_list:
        text = _full_version_list(value)
        if text is None:
            warn(f"{name}: {_kind(value)} is not a brand list; not sent")
        return text
    text = _scalar_text(value, true="1", false="0")
    if text is None:
        warn(f"{name}: {_kind(value)} is not text; not sent")
    elif name == "uap":
        text = text.strip('"')  # the Sec-CH-UA-Platform header keeps its quotes
    return text


def _full_version_list(value: Any) -> str | None:
    """`uafvl`: `brand;version` pairs joined by `|`, each brand percent-encoded once more."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        return None
    entries = [
        f"{quote(str(entry.get('brand', '')), safe=URI_COMPONENT_SAFE)};{entry.get('version', '')}"
        for entry in value
        if isinstance(entry, dict)
    ]
    return "|".join(entries)


def _gcs(event: EventData, consent_default: str) -> str | None:
    state = consent_state(event)
    if not any(t in state for t in _GCS_TYPES):
        return None
    default = consent_default == "granted"
    return "G1" + "".join("1" if state.get(t, default) else "0" for t in _GCS_TYPES)


def _passthrough(event: EventData, params: Params) -> None:
    for key, value in event.items():
        if key.startswith("x-ga-mp2-"):
            name = key.removeprefix("x-ga-mp2-")
            if name not in _KNOWN_MP2 and name != "user_properties":
                _put(params, name, value)
    for name, value in _object_items(event, "x-ga-system_properties"):
        if name not in _KNOWN_SYSTEM_PROPERTIES:
            _put(params, f"_{name}", value)
    for name, value in _object_items(event, "x-sst-system_properties"):
        if name not in SERVER_SYSTEM_PROPERTIES:
            _put(params, f"sst.{name}", value)


def _put(params: Params, name: str, value: Any) -> None:
    text = _scalar_text(value, true="1", false="0")
    if text is not None and name not in params and name not in NOT_FORWARDED:
        params[name] = text


def _user_properties(properties: Any, params: Params, warn: Warn) -> None:
    if not isinstance(properties, dict):
        return
    for name, value in properties.items():
        if name == "_user_id" or value is None:
            continue
        _typed(params, "up", name, value, warn)


def _event_params(event: EventData, params: Params, warn: Warn) -> None:
    for key, value in event.items():
        if (
            value is None
            or key in _FIELD_KEYS
            or key in REQUEST_KEYS
            or key in PERSONAL_KEYS
            or key.startswith("x-")
        ):
            continue
        if key in NUMBER_PARAMS and isinstance(value, str) and parse_number(value) is not None:
            params[f"epn.{key}"] = value.strip()
        else:
            _typed(params, "ep", key, value, warn)


def _typed(params: Params, prefix: str, name: str, value: Any, warn: Warn) -> None:
    """`<prefix>.<name>` for text, `<prefix>n.<name>` for numbers."""
    number = number_text(value) if isinstance(value, int | float) else None
    if number is not None:
        params[f"{prefix}n.{name}"] = number
        return
    text = _scalar_text(value, true="true", false="false")
    if text is None:
        warn(f"{prefix}.{name}: {_kind(value)} is not text or a number; not sent")
    else:
        params[f"{prefix}.{name}"] = text


def _items(items: Any, params: Params, warn: Warn) -> None:
    if not isinstance(items, list):
        if items is not None:
            warn(f"items: {_kind(items)} is not a list; not sent")
        return
    if len(items) > MAX_ITEMS:
        warn(f"items: {len(items)} items; GA4 takes {MAX_ITEMS}, the rest are not sent")
    number = 0
    for index, item in enumerate(items[:MAX_ITEMS]):
        encoded = _item(item, index, warn) if isinstance(item, dict) else None
        if encoded:
            number += 1
            params[f"pr{number}"] = encoded
        else:
            warn(f"items[{index}]: no field GA4 can take; not sent")


def _item(item: Mapping[str, Any], index: int, warn: Warn) -> str:
    fields: list[str] = []
    custom: list[str] = []
    for key, value in item.items():
        if value is None:
            continue
        where = f"items[{index}].{key}"
        if (short := _ITEM_KEYS.get(key)) is not None:
            if key in ITEM_NUMBER_FIELDS:
                text = number_text(value)
                if text is None:
                    warn(f"{where}: {_kind(value)} is not a number; not sent")
                    continue
            else:
                text = _item_text(where, value, warn)
            if text is not None:
                fields.append(short + text)
        elif key[:1].isdigit() or not key or "~" in key:
            warn(f"{where}: GA4 item param names cannot start with a digit or hold '~'")
        elif len(custom) // 2 == MAX_CUSTOM_ITEM_FIELDS:
            warn(f"{where}: GA4 items take {MAX_CUSTOM_ITEM_FIELDS} custom fields; not sent")
        elif (text := _item_text(where, value, warn)) is not None:
            pair = len(custom) // 2
            custom += [f"k{pair}{key}", f"v{pair}{text}"]
    return "~".join(fields + custom)


def _item_text(where: str, value: Any, warn: Warn) -> str | None:
    text = number_text(value) if isinstance(value, int | float) else None
    if text is None:
        text = _scalar_text(value, true="true", false="false")
    if text is None:
        warn(f"{where}: {_kind(value)} is not text or a number; not sent")
        return None
    if "~" in text:
        warn(f"{where}: '~' separates item fields; removed")
        text = text.replace("~", "")
    return text


def _scalar_text(value: Any, *, true: str, false: str) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return true if value else false
    return number_text(value) if isinstance(value, int | float) else None


def _lookup(event: EventData, path: str) -> Any:
    parent, _, leaf = path.partition(".")
    if not leaf:
        return event.get(path)
    node = event.get(parent)
    return node.get(leaf) if isinstance(node, dict) else None


def _object_items(event: EventData, key: str) -> list[tuple[str, Any]]:
    node = event.get(key)
    return list(node.items()) if isinstance(node, dict) else []


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true")
    return value is True or (isinstance(value, int) and value == 1)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {str(value)[:40]!r}"
