"""Event data -> a conversion beacon, for `sgtm audit`'s probes.

Only a purchase is a conversion; the body carries what Newtail's conversion body can carry in
clear (`email`, `phone`, `city`, `uf`) beside the ids, and the fields the schema requires.
Impressions, views and clicks carry no personal data the conversion does not.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import msgspec

from sgtm.plugin import EventData, HitRequest, get_path

PUBLISHER = "sgtmaudit-publisher"
CLEAR = {
    "email": "user_data.email_address",
    "phone": "user_data.phone_number",
    "city": "user_data.address.city",
    "uf": "user_data.address.region",
}
COMMON = ("user_id", "session_id", "event_id", "page_location", "consent_state", "currency")


def probe_requests(event: EventData, base: HitRequest, prefix: str) -> list[HitRequest]:
    if event.get("event_name") != "purchase":
        return []
    start_ms = get_path(event, "x-sst-system_properties.request_start_time_ms")
    seconds = start_ms / 1000 if isinstance(start_ms, (int, float)) else 0
    body: dict[str, Any] = {
        "publisher_id": PUBLISHER,
        "order_id": str(event.get("transaction_id") or "sgtmaudit-order"),
        "created_at": datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "channel": "site",
        "items": [
            {
                "sku": str(item.get("item_id", "sgtmaudit-sku")),
                "quantity": item.get("quantity", 1),
                "price": item.get("price", 1),
                "promotional_price": item.get("price", 1),
            }
            for item in event.get("items") or []
            if isinstance(item, dict)
        ],
    }
    for key in COMMON:
        if event.get(key) is not None:
            body[key] = event[key]
    body.setdefault("session_id", event.get("client_id"))
    for key, path in CLEAR.items():
        if (value := get_path(event, path)) is not None:
            body[key] = value
    return [
        replace(
            base,
            method="POST",
            path=f"{prefix}/conversion",
            headers={**base.headers, "content-type": "text/plain;charset=UTF-8"},
            body=msgspec.json.encode(body),
        )
    ]
