"""A purchase event -> Newtail's conversion body (`POST /v1/beacon/conversion`).

Pure functions. Every field Newtail requires is filled or the event is `invalid` (Newtail would
answer 422); items carry UNIT prices, never multiplied by quantity:
- `promotional_price` (the price paid per unit) <- the item's `price`, as GA4 defines it;
- `price` (the list price per unit) <- `item_list_price` (the beacon client's), else `price` +
  `discount` (GA4's per-unit discount), else `price`.
Personal data is normalized and hashed per Newtail's rules (`.normalize`); a value already hashed
(64 hex characters) is sent lower-cased, never hashed twice. docs/tags/newtail.md has the table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sgtm.kit import hashing as pii
from sgtm.kit.cookies import visitor_id
from sgtm.kit.mapping import items as event_items
from sgtm.kit.mapping import number, overlay, present, text
from sgtm.plugin import EventData, InvalidEvent, get_path

from . import normalize
from .settings import NewtailSettings

Warn = Callable[[str], None]

# Hashed fields: (event keys already hashed, event keys in clear, normalizer). `address.` is
# `user_data.address`, or its first entry when it is a list.
HASHED_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "email_hashed": (
        ("user_data.sha256_email_address",),
        ("user_data.email_address", "user_data.email"),
        "email",
    ),
    "phone_hashed": (
        ("user_data.sha256_phone_number",),
        ("user_data.phone_number", "user_data.phone"),
        "phone",
    ),
    "social_id_hashed": (
        ("user_data.sha256_social_id",),
        ("user_data.social_id", "user_data.cpf", "user_data.cnpj"),
        "social_id",
    ),
    "first_name_hashed": (
        ("address.sha256_first_name",),
        ("address.first_name", "user_data.first_name"),
        "text",
    ),
    "last_name_hashed": (
        ("address.sha256_last_name",),
        ("address.last_name", "user_data.last_name"),
        "text",
    ),
}
# Plain fields: the event keys read in order (after `fields`, before the settings' defaults).
PLAIN_FIELDS: dict[str, tuple[str, ...]] = {
    "channel": ("channel",),
    "brand": ("brand",),
    "gender": ("gender", "user_data.gender"),
    "uf": ("uf", "address.region"),
    "city": ("address.city",),
    "is_company": ("is_company",),
}
GENDERS = {
    "f": "F",
    "female": "F",
    "feminino": "F",
    "mulher": "F",
    "m": "M",
    "male": "M",
    "masculino": "M",
    "homem": "M",
    "o": "O",
    "other": "O",
    "outro": "O",
    "outros": "O",
}
CPF_CHARS, CNPJ_CHARS = 11, 14
# Newtail's own field order (its conversion table), for bodies a person can read.
ORDER = (
    "publisher_id",
    "user_id",
    "session_id",
    "order_id",
    "created_at",
    "items",
    "channel",
    "brand",
    "gender",
    "uf",
    "city",
    "is_company",
    *HASHED_FIELDS,
)


def conversion(
    event: EventData,
    settings: NewtailSettings,
    now: float,
    warn: Warn,
    cookies: Mapping[str, str],
) -> dict[str, Any]:
    overrides = overlay({}, settings.fields)
    own_publisher = text(event.get("publisher_id"))
    if own_publisher is not None and own_publisher != settings.publisher_id:
        raise InvalidEvent(
            f"publisher_id {own_publisher[:60]!r} in the event is not this tag's publisher_id"
        )
    order_id = text(event.get("transaction_id")) or text(event.get("order_id"))
    if order_id is None:
        raise InvalidEvent("no order id: Newtail needs transaction_id (or order_id)")
    hashed = {field: _hashed(event, field, settings.phone_country_code) for field in HASHED_FIELDS}
    if hashed["email_hashed"] is None:
        raise InvalidEvent(
            "no email: Newtail needs email_hashed (user_data.email_address or "
            "user_data.sha256_email_address)"
        )
    # Newtail needs a user id; without one, the hashed email stands in: stable across channels,
    # as Newtail's own VTEX app does with the email (which it sends in clear).
    user_id, session_id = ids(event, settings, cookies)
    if session_id is None:
        raise InvalidEvent(
            "no session_id: Newtail needs one (session_id, else the visitor's _ga / _dcid id)"
        )
    body: dict[str, Any] = {
        "publisher_id": settings.publisher_id,
        "user_id": user_id or hashed["email_hashed"],
        "session_id": session_id,
        "order_id": order_id,
        "created_at": created_at(event, now),
        "items": conversion_items(event, warn),
    }
    for field, keys in PLAIN_FIELDS.items():
        # A field named in `fields` comes only from there (null there: not from the event).
        value = overrides.get(field) if field in settings.fields else _first(event, keys)
        value = _plain(field, value)
        if value is not None:
            body[field] = value
    body.setdefault("channel", settings.channel)
    if settings.brand:
        body.setdefault("brand", settings.brand)
    if "is_company" not in body and hashed["social_id_hashed"] is not None:
        social = _first(event, HASHED_FIELDS["social_id_hashed"][1])
        length = len(normalize.newtail_social_id(social) or "")
        if length in (CPF_CHARS, CNPJ_CHARS):
            body["is_company"] = length == CNPJ_CHARS  # a CNPJ names a company, a CPF a person
    for field, value in hashed.items():
        if value is not None:
            body[field] = value
    return {field: body[field] for field in ORDER if field in body}


def ids(
    event: EventData, settings: NewtailSettings, cookies: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """(user_id, session_id) as Newtail needs them on ad events and conversions alike
    (docs/tags/newtail.md, "Session and user ids"): `fields` first, then the event's own; a
    session id the page did not choose is the visitor's persistent first-party id
    (`sgtm.kit.cookies.visitor_id`: GA's client id, else sgtm's `_dcid`), which the beacon client
    also gives ad events, and never GA4's 30-minute session id. `cookies` are the request's."""
    fields = overlay({}, settings.fields)
    user_id = text(fields.get("user_id")) or text(event.get("user_id"))
    session_id = text(fields.get("session_id")) or text(event.get("session_id"))
    return user_id, session_id or visitor_id(event, cookies)


def created_at(event: EventData, now: float) -> str:
    """ISO 8601 in UTC, `2024-05-01T12:30:00Z`: the event's `created_at` (an ISO date-time, a
    naive one read as UTC, or Unix seconds/ms), else when the hit arrived, else now."""
    raw = event.get("created_at")
    if raw is None:
        start = number(get_path(event, "x-sst-system_properties.request_start_time_ms"))
        seconds = start / 1000 if start is not None and start > 0 else now
    elif isinstance(raw, str) and number(raw) is None:
        try:
            parsed = datetime.fromisoformat(raw.strip().replace("z", "Z").replace("Z", "+00:00"))
        except ValueError:
            raise InvalidEvent(f"created_at {raw[:40]!r} is not an ISO 8601 date-time") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        seconds = parsed.timestamp()
    else:
        value = number(raw)
        if value is None or value <= 0:
            raise InvalidEvent(f"created_at {str(raw)[:40]!r} is not a date-time")
        seconds = value / 1000 if value >= 1e11 else value
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidEvent("created_at is out of range") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def conversion_items(event: EventData, warn: Warn) -> list[dict[str, Any]]:
    out = []
    for index, item in enumerate(event_items(event)):
        sku = text(item.get("item_id")) or text(item.get("sku"))
        quantity = _decimal(item.get("quantity", 1))
        paid = _decimal(item.get("price"))
        if sku is None:
            warn(f"items[{index}] not sent: no item_id")
            continue
        if quantity is None or quantity <= 0:
            warn(f"items[{index}] not sent: quantity is not a number above 0")
            continue
        if paid is None or paid < 0:
            warn(f"items[{index}] not sent: price is not a number of at least 0")
            continue
        listed = _decimal(item.get("item_list_price"))
        if listed is None:
            discount = _decimal(item.get("discount"))
            listed = paid + discount if discount is not None and discount > 0 else paid
        entry: dict[str, Any] = {
            "sku": sku,
            "quantity": _json_number(quantity),
            "price": _json_number(listed),
            "promotional_price": _json_number(paid),
        }
        for key in ("seller_id", "product_id"):
            value = text(item.get(key))
            if value is not None:
                entry[key] = value
        out.append(entry)
    if not out:
        raise InvalidEvent("no items: Newtail needs at least one item with item_id and price")
    return out


def _hashed(event: EventData, field: str, phone_country_code: str | None) -> str | None:
    hashed_keys, plain_keys, kind = HASHED_FIELDS[field]
    for key in hashed_keys:
        digest = pii.hashed(_get(event, key))
        if digest is not None:
            return digest
    for key in plain_keys:
        raw = _get(event, key)
        digest = pii.hashed(raw)  # a hash given where clear text was expected
        if digest is not None:
            return digest
        normalized = _normalize(kind, raw, phone_country_code)
        if normalized is not None:
            return pii.sha256_hex(normalized)
    return None


def _normalize(kind: str, raw: Any, phone_country_code: str | None) -> str | None:
    if kind == "email":
        return normalize.newtail_email(raw)
    if kind == "phone":
        return pii.e164(raw, phone_country_code)
    if kind == "social_id":
        return normalize.newtail_social_id(raw)
    return normalize.newtail_text(raw)


def _plain(field: str, value: Any) -> Any:
    if field == "is_company":
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        return value if isinstance(value, bool) else None
    found = text(value)
    if found is None:
        return None
    if field == "gender":
        return GENDERS.get(found.lower())
    if field == "uf" and len(found) == 2:
        return found.upper()
    return found


def _first(event: EventData, keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = _get(event, key)
        if present(value):
            return value
    return None


def _get(event: EventData, key: str) -> Any:
    if not key.startswith("address."):
        return get_path(event, key)
    address = get_path(event, "user_data.address")
    if isinstance(address, list):
        address = address[0] if address else None
    return address.get(key.removeprefix("address.")) if isinstance(address, dict) else None


def _decimal(value: Any) -> Decimal | None:
    """Exact arithmetic on prices (9.9 + 0.1 is 10, not 10.000000000000002)."""
    found = number(value)
    if found is None:
        return None
    try:
        return Decimal(repr(found))
    except InvalidOperation:
        return None


def _json_number(value: Decimal) -> int | float:
    exact = value == value.to_integral_value() and abs(value) < 2**53
    return int(value) if exact else float(value)
