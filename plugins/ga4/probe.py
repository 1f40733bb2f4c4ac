"""Event data -> a `/g/collect` hit, for `sgtm audit`'s probes: `parse_hits` read backwards.

Each key goes where gtag.js would put it: the protocol param that `parse` maps to that key alone
(`client_id` -> `cid`, `page_location` -> `dl`...), `user_data` as `ep.user_data.*` (with gtag's
`email` / `phone` names), items as `pr<n>`, consent as `gcs` / `gcd`, any other text or number as
`ep.` / `epn.`. The user agent and IP are the request's, as for a real hit.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from sgtm.plugin import EventData, HitRequest

from .parse import (
    _BASE64URL,
    CONSENT_TYPES,
    ITEM_FIELDS,
    PARAMS,
    USER_DATA_ALIASES,
    to_number,
    to_str,
)

MEASUREMENT_ID = "G-SGTMAUDIT1"
# Event data key -> the param that sets it and nothing else (the first one listed wins).
PARAM_FOR: dict[str, str] = {}
for _name, (_paths, _convert) in PARAMS.items():
    _key = _paths[0]
    if "." not in _key and not _key.startswith("x-") and _convert in (to_str, to_number):
        PARAM_FOR.setdefault(_key, _name)
ITEM_PARAM_FOR = {field: code for code, field in ITEM_FIELDS.items()}
USER_DATA_NAMES = {key: alias for alias, key in USER_DATA_ALIASES.items()}
# Taken from the request, as a browser's hit does: never params.
FROM_REQUEST = frozenset({"user_agent", "ip_override"})
# A gcd letter with both the default and the update state granted (3) or denied (2).
_GCD = {True: _BASE64URL[(3 << 2) | 3], False: _BASE64URL[(2 << 2) | 2]}


def probe_request(event: EventData, base: HitRequest, path: str) -> HitRequest:
    params: list[tuple[str, str]] = [("v", "2"), ("tid", MEASUREMENT_ID)]
    for key, value in event.items():
        if key in FROM_REQUEST or value is None or isinstance(value, bool):
            continue
        if key == "user_data" and isinstance(value, dict):
            params.extend(_user_data(value, "ep.user_data"))
        elif key == "items" and isinstance(value, list):
            params.extend(
                (f"pr{i}", _item(item)) for i, item in enumerate(value, 1) if isinstance(item, dict)
            )
        elif key == "consent_state" and isinstance(value, dict):
            params.extend(_consent(value))
        elif isinstance(value, (dict, list)):
            continue
        elif key in PARAM_FOR:
            params.append((PARAM_FOR[key], str(value)))
        else:
            prefix = "epn" if isinstance(value, (int, float)) else "ep"
            params.append((f"{prefix}.{key}", str(value)))
    return replace(base, method="GET", path=path, query_string=urlencode(params))


def _user_data(data: dict[str, Any], prefix: str) -> list[tuple[str, str]]:
    out = []
    for key, value in data.items():
        name = USER_DATA_NAMES.get(key, key) if prefix == "ep.user_data" else key
        if isinstance(value, dict):
            out.extend(_user_data(value, f"{prefix}.{name}"))
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            out.append((f"{prefix}.{name}", str(value)))
    return out


def _item(item: dict[str, Any]) -> str:
    return "~".join(
        f"{ITEM_PARAM_FOR[key]}{value}" for key, value in item.items() if key in ITEM_PARAM_FOR
    )


def _consent(state: dict[str, Any]) -> list[tuple[str, str]]:
    granted = {name: state.get(name) is True for name in CONSENT_TYPES}
    gcs = "G1" + "".join("1" if granted[n] else "0" for n in CONSENT_TYPES[:2])
    letters = [_GCD[granted[name]] for name in CONSENT_TYPES]
    return [("gcs", gcs), ("gcd", f"13{letters[0]}3{letters[1]}3{letters[2]}3{letters[3]}5l1")]
