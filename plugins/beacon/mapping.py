"""Validated beacon bodies -> sGTM event data (the keys are listed in docs/clients/beacon.md).

Ad events keep the vendor's signed URL as it came (`ad_event_url`): it is forwarded, never
rebuilt. Conversions become `purchase` events: `price` is the unit price paid (Newtail's
`promotional_price`), the list price stays in `item_list_price` and the per-unit difference is
GA4's `discount`; `value` is the sum of unit price paid times quantity unless the body has one.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from sgtm.plugin import EventData

# Newtail's signed URLs: .../v1/beacon/{impression|view|click}/{AD_ID}?...
_AD_PATH = re.compile(r".*/(?:impression|view|click)/([^/]+)/?")
_EVENT_ID_NAMESPACE = uuid.UUID("9b1f6f2e-54a1-4c5e-9d53-6a0bf3f1f0c1")

COMMON_KEYS = ("session_id", "user_id", "event_id", "page_location", "consent_state")

# Conversion fields kept under their own names (no sGTM equivalent).
KEPT = ("publisher_id", "channel", "brand", "created_at", "gender", "is_company", "currency")
USER_DATA = {
    "email": "user_data.email_address",
    "email_hashed": "user_data.sha256_email_address",
    "phone": "user_data.phone_number",
    "phone_hashed": "user_data.sha256_phone_number",
    "first_name_hashed": "user_data.address.sha256_first_name",
    "last_name_hashed": "user_data.address.sha256_last_name",
    "uf": "user_data.address.region",
    "city": "user_data.address.city",
    "social_id_hashed": "user_data.sha256_social_id",
}
HASHED = frozenset(k for k in USER_DATA if k.endswith("_hashed"))


def without_nulls(body: dict[str, Any]) -> dict[str, Any]:
    """The validated body without its null fields (null means "not sent"), items included."""
    out = {key: value for key, value in body.items() if value is not None}
    if isinstance(out.get("items"), list):
        out["items"] = [
            {k: v for k, v in item.items() if v is not None} if isinstance(item, dict) else item
            for item in out["items"]
        ]
    return out


def ad_event(kind: str, body: dict[str, Any]) -> EventData:
    url: str = body.get(f"{kind}_url") or body["url"]
    event: EventData = {
        "event_name": f"ad_{kind}",
        "ad_event_type": kind,
        "ad_event_url": url,
    }
    if ad_id := ad_id_from(url):
        event["ad_id"] = ad_id
    _copy_common(body, event)
    # A resent beacon (same kind, same signed URL) is the same event.
    event.setdefault("event_id", str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{kind} {url}")))
    return event


def ad_id_from(url: str) -> str | None:
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    match = _AD_PATH.fullmatch(path)
    return match[1] if match else None


def conversion(body: dict[str, Any], default_currency: str | None) -> EventData:
    event: EventData = {"event_name": "purchase", "transaction_id": body["order_id"]}
    _copy_common(body, event)
    for key in KEPT:
        if key in body:
            event[key] = body[key]
    if "currency" not in event and default_currency:
        event["currency"] = default_currency
    items = [_item(raw) for raw in body["items"]]
    event["items"] = items
    if "value" in body:
        event["value"] = body["value"]
    else:
        total = sum(
            (Decimal(repr(item["price"])) * Decimal(repr(item["quantity"])) for item in items),
            Decimal(0),
        )
        event["value"] = _number(total)
    user_data: dict[str, Any] = {}
    for key, path in USER_DATA.items():
        if key in body and body[key] is not None:
            value = body[key].lower() if key in HASHED else body[key]
            _set(user_data, path.removeprefix("user_data.").split("."), value)
    if user_data:
        event["user_data"] = user_data
    return event


def _item(raw: dict[str, Any]) -> dict[str, Any]:
    paid, listed = raw["promotional_price"], raw["price"]
    item: dict[str, Any] = {
        "item_id": raw["sku"],
        "quantity": raw["quantity"],
        "price": paid,
        "item_list_price": listed,
    }
    discount = Decimal(repr(listed)) - Decimal(repr(paid))
    if discount > 0:
        item["discount"] = _number(discount)
    for key in ("seller_id", "product_id"):
        if key in raw:
            item[key] = raw[key]
    return item


def _number(value: Decimal) -> int | float:
    exact = value == value.to_integral_value() and abs(value) < 2**53
    return int(value) if exact else float(value)


def _copy_common(body: dict[str, Any], event: EventData) -> None:
    for key in COMMON_KEYS:
        if key in body:
            event[key] = body[key]


def _set(node: dict[str, Any], parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
