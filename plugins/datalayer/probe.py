"""Event data -> the two kinds of hit the `datalayer` client takes, for `sgtm audit`'s probes.

- an sgtm.js push (`POST`, JSON): the event as a dataLayer holds it, commerce fields under
  `ecommerce`, without a `client_id` so the client names the visitor from its `_dcid` cookie;
- a Stape Data Tag hit (`GET ?v=2&event=...&dtdc=...`): every standard key under each of its
  aliases (`email`, `userEmail`, `url`...), which the client keeps beside the standard key, and
  the important cookies as the Data Tag reads them.
The user agent, IP and cookies are the request's, as for a real hit.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import msgspec

from sgtm.plugin import EventData, HitRequest, get_path

from .mapping import ALIASES, IMPORTANT_COOKIES

ECOMMERCE = ("currency", "value", "transaction_id", "items", "tax", "shipping", "coupon")
FROM_REQUEST = ("user_agent", "ip_override")


def probe_requests(event: EventData, base: HitRequest, path: str) -> list[HitRequest]:
    return [_push(event, base, path), _data_tag(event, base, path)]


def _push(event: EventData, base: HitRequest, path: str) -> HitRequest:
    push: dict[str, Any] = {"event": event["event_name"]}
    ecommerce = {}
    for key, value in event.items():
        if key in ("event_name", "client_id", *FROM_REQUEST):
            continue
        if key in ECOMMERCE:
            ecommerce[key] = value
        else:
            push[key] = value
    if ecommerce:
        push["ecommerce"] = ecommerce
    return replace(
        base,
        method="POST",
        path=path,
        headers={**base.headers, "content-type": "text/plain;charset=UTF-8"},
        body=msgspec.json.encode(push),
    )


def _data_tag(event: EventData, base: HitRequest, path: str) -> HitRequest:
    data: dict[str, Any] = {
        key: value
        for key, value in event.items()
        if key not in ("event_name", "user_data", *FROM_REQUEST)
    }
    for target, aliases in ALIASES.items():
        value = get_path(event, target)
        if value is not None and not isinstance(value, (dict, list)):
            data.update(dict.fromkeys(aliases, value))
    cookies = {name: [base.cookies[name]] for name in IMPORTANT_COOKIES if name in base.cookies}
    if cookies:
        data["important_cookie_values"] = cookies
    encoded = base64.b64encode(msgspec.json.encode(data)).decode("ascii")
    query = urlencode({"v": "2", "event": event["event_name"], "dtdc": encoded})
    return replace(base, method="GET", path=path, query_string=query)
