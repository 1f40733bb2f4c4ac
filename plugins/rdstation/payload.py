"""RD Station Marketing payloads from sGTM event data (docs/tags/rdstation.md has the tables).

Two families: CONVERSION (creates or updates the contact, custom `cf_*` fields, tags, traffic
source) and the `ECOMMERCE_*` events (orders and carts, with `line_items`). Every limit RD
documents is checked here, so an event RD would reject is reported `invalid: <why>` instead.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from sgtm.kit import mapping as m
from sgtm.plugin import BuildContext, EventData, InvalidEvent, consent_state, get_path

# GA4 event name -> RD event type, used with OAuth (`event_type: auto`); any other name is sent
# as a CONVERSION whose identifier is the event name. The api_key endpoint takes CONVERSION only.
EVENT_MAP: dict[str, str] = {
    "begin_checkout": "ECOMMERCE_CHECKOUT_STARTED",
    "purchase": "ECOMMERCE_ORDER_PAID",
    "refund": "ECOMMERCE_ORDER_REFUNDED",
}

ECOMMERCE_TYPES = frozenset(
    {
        "ECOMMERCE_CHECKOUT_STARTED",
        "ECOMMERCE_CART_ABANDONED",
        "ECOMMERCE_ORDER_PLACED",
        "ECOMMERCE_ORDER_PAID",
        "ECOMMERCE_ORDER_CANCELLED",
        "ECOMMERCE_ORDER_REFUNDED",
    }
)
EVENT_TYPES = frozenset({"CONVERSION", *ECOMMERCE_TYPES})
# Rejected by RD after 2025-12-31 (developers.rdstation.com, eventos-ecommerce-deprecated).
DEPRECATED_TYPES = frozenset(
    {"ORDER_PLACED", "ORDER_PLACED_ITEM", "CART_ABANDONED", "CART_ABANDONED_ITEM"}
)

CART_TYPES = frozenset({"ECOMMERCE_CHECKOUT_STARTED", "ECOMMERCE_CART_ABANDONED"})
ORDER_TOTAL_TYPES = frozenset({"ECOMMERCE_ORDER_PLACED", "ECOMMERCE_ORDER_PAID"})

# Contact fields filled from sGTM's standard keys.
CONTACT_FIELDS: dict[str, str] = {
    "email": "user_data.email_address",
    "mobile_phone": "user_data.phone_number",
    "city": "user_data.address.city",
    "state": "user_data.address.region",
    "country": "user_data.address.country",
}
NAME_PARTS = ("user_data.address.first_name", "user_data.address.last_name")
# Fields every ECOMMERCE_* event takes besides its own (RD's n8n node sends these).
SHARED_FIELDS = frozenset({"email", "name", "mobile_phone", "personal_phone"})
# Fields RD documents for the ECOMMERCE_* events only; everything else in `fields` (cf_*,
# job_title, company_name...) belongs to CONVERSION.
ECOMMERCE_FIELDS = frozenset(
    {
        "identifier",
        "checkout_url",
        "currency",
        "price",
        "total_items",
        "shipping_price",
        "shipping_city",
        "shipping_state",
        "shipping_country",
        "order_url",
        "payment_methods",
        "cancel_reason",
    }
)
# Settings of their own, so `fields` cannot also set them.
DEDICATED_FIELDS = {
    "tags": "tags",
    "legal_bases": "legal_bases",
    "conversion_identifier": "conversion_identifier",
    "line_items": "the event's items",
}

FIELD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
LEGAL_BASIS_TYPES = (
    "pre_existent_contract",
    "consent",
    "legitimate_interest",
    "judicial_process",
    "vital_interest",
    "public_interest",
)

MAX_BODY_BYTES = 200_000  # "O tamanho do body ... possui um limite de 0,2Mb"
MAX_TEXT = 255
MAX_LINE_ITEMS = 20
MAX_CATEGORIES = 10
MAX_PAYMENT_METHODS = 5
ITEM_CATEGORY_KEYS = ("item_category", *(f"item_category{i}" for i in range(2, 6)))


def payload(event: EventData, event_type: str, settings: Any, ctx: BuildContext) -> dict[str, Any]:
    """The `payload` object of one RD event, checked against RD's limits."""
    fields = m.overlay(_contact(event), settings.fields)
    if event_type == "CONVERSION":
        body = _conversion(event, fields, settings, ctx)
    else:
        body = _ecommerce(event, event_type, fields)
    address = body.get("email")
    cleaned = m.email(address)
    if cleaned is None:
        if address is None:
            raise InvalidEvent(
                "no email: RD Station identifies contacts by user_data.email_address"
            )
        if isinstance(address, str) and m.is_sha256(address.strip().lower()):
            raise InvalidEvent("email is a SHA-256 hash: RD Station needs the plain address")
        raise InvalidEvent("email is not a valid address")
    body["email"] = cleaned
    basis = legal_basis(event, settings.legal_bases, ctx)
    if basis is not None:
        body["legal_bases"] = [basis]
    return body


def _contact(event: EventData) -> dict[str, Any]:
    fields = m.read(event, CONTACT_FIELDS)
    name = " ".join(filter(None, (m.text(get_path(event, path)) for path in NAME_PARTS)))
    if name:
        fields["name"] = name
    return fields


def _conversion(
    event: EventData, fields: dict[str, Any], settings: Any, ctx: BuildContext
) -> dict[str, Any]:
    identifier = m.text(settings.conversion_identifier) or m.text(event.get("event_name"))
    if identifier is None:
        raise InvalidEvent("no conversion_identifier: set it, or send an event_name")
    body: dict[str, Any] = {"conversion_identifier": identifier}
    body.update(_traffic(event, ctx))
    body.update({k: v for k, v in fields.items() if k not in ECOMMERCE_FIELDS})
    tags = sorted({t.strip().lower() for t in settings.tags if isinstance(t, str) and t.strip()})
    if tags:
        body["tags"] = tags
    if len(identifier) > MAX_TEXT:
        raise InvalidEvent(f"conversion_identifier is longer than {MAX_TEXT} characters")
    return body


def _traffic(event: EventData, ctx: BuildContext) -> dict[str, str]:
    """RD's lead tracking cookies when the hit carried them, else the UTM tags of the page."""
    out: dict[str, str] = {}
    cookies = ctx.request.cookies if ctx.request is not None else {}
    if tracking := m.text(cookies.get("_rdtrk")):
        out["client_tracking_id"] = tracking
    if source := m.text(cookies.get("__trf.src")):
        out["traffic_source"] = source
    location = event.get("page_location")
    if isinstance(location, str):
        try:
            query = parse_qs(urlsplit(location).query)
        except ValueError:
            query = {}
        utm = {
            "traffic_source": "utm_source",
            "traffic_medium": "utm_medium",
            "traffic_campaign": "utm_campaign",
            "traffic_value": "utm_term",
        }
        for field, param in utm.items():
            values = query.get(param)
            if values and values[0].strip() and field not in out:
                out[field] = values[0].strip()
    return out


def _ecommerce(event: EventData, event_type: str, fields: dict[str, Any]) -> dict[str, Any]:
    identifier = (
        m.text(event.get("transaction_id"))
        or m.text(event.get("event_id"))
        or _session_cart(event, event_type)
    )
    body: dict[str, Any] = {"identifier": identifier} if identifier else {}
    if event_type in CART_TYPES or event_type in ORDER_TOTAL_TYPES:
        body.update(_totals(event, event_type))
    if event_type in CART_TYPES:
        location = event.get("page_location")
        if isinstance(location, str) and urlsplit(location).scheme in ("http", "https"):
            body["checkout_url"] = location
    if event_type in ORDER_TOTAL_TYPES:
        shipping = m.number(event.get("shipping"))
        if shipping is not None and shipping >= 0:
            body["shipping_price"] = shipping
        if payment := m.text(event.get("payment_type")):
            body["payment_methods"] = [payment]
    if event_type in CART_TYPES or event_type in ORDER_TOTAL_TYPES:
        lines = _line_items(event)
        if lines:
            body["line_items"] = lines
    body.update({k: v for k, v in fields.items() if k in SHARED_FIELDS or k in ECOMMERCE_FIELDS})
    _check_ecommerce(body, event_type)
    return body


def _session_cart(event: EventData, event_type: str) -> str | None:
    # A checkout has no order id yet: one cart per GA4 session is the stable id a retry repeats.
    if event_type not in CART_TYPES:
        return None
    client, session = m.text(event.get("client_id")), m.text(event.get("ga_session_id"))
    return f"{client}.{session}" if client and session else None


def _totals(event: EventData, event_type: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if currency := m.text(event.get("currency")):
        out["currency"] = currency.upper()
    value = m.number(event.get("value"))
    if value is not None:
        out["price"] = value
    quantity = 0
    for item in m.items(event):
        count = m.number(item.get("quantity"))
        quantity += int(count) if count is not None and count >= 1 else 1
    out["total_items"] = quantity
    return out


def _line_items(event: EventData) -> list[dict[str, Any]]:
    lines = []
    # RD takes at most 20 line items; totals above still describe the whole order.
    for index, item in enumerate(m.items(event)[:MAX_LINE_ITEMS]):
        product_id = m.text(item.get("item_id")) or m.text(item.get("item_name"))
        title = m.text(item.get("item_name")) or m.text(item.get("item_id"))
        if product_id is None or title is None:
            raise InvalidEvent(f"items[{index}] has neither item_id nor item_name")
        price = m.number(item.get("price"))
        if price is None or price < 0:
            raise InvalidEvent(f"items[{index}].price: RD needs a price of 0 or more")
        count = m.number(item.get("quantity"))
        if count is not None and (count < 1 or not count.is_integer()):
            raise InvalidEvent(f"items[{index}].quantity: RD needs a whole number of 1 or more")
        line: dict[str, Any] = {
            "product_id": product_id,
            "product_title": title,
            "price": price,
            "quantity": int(count) if count is not None else 1,
        }
        if variant := m.text(item.get("item_variant")):
            line["variant_title"] = variant
        categories = [c for key in ITEM_CATEGORY_KEYS if (c := m.text(item.get(key)))]
        if categories:
            line["categories"] = categories[:MAX_CATEGORIES]
        lines.append(line)
    return lines


def _check_ecommerce(body: dict[str, Any], event_type: str) -> None:
    if not m.text(body.get("identifier")):
        raise InvalidEvent(
            f"{event_type} needs an identifier: transaction_id or event_id"
            + (" (or client_id and ga_session_id)" if event_type in CART_TYPES else "")
        )
    if event_type in CART_TYPES or event_type in ORDER_TOTAL_TYPES:
        if not m.text(body.get("currency")):
            raise InvalidEvent(f"{event_type} needs currency")
        price = m.number(body.get("price"))
        if price is None or price < 0:
            raise InvalidEvent(f"{event_type} needs value (price) of 0 or more")
    if event_type in CART_TYPES:
        if not m.text(body.get("checkout_url")):
            raise InvalidEvent(f"{event_type} needs checkout_url: an http(s) page_location")
        if body.get("total_items", 0) < 1:
            raise InvalidEvent(f"{event_type} needs at least one item")
    methods = body.get("payment_methods")
    if isinstance(methods, list) and len(methods) > MAX_PAYMENT_METHODS:
        raise InvalidEvent(f"payment_methods: RD takes at most {MAX_PAYMENT_METHODS}")


def legal_basis(event: EventData, policy: Any, ctx: BuildContext) -> dict[str, str] | None:
    """One `legal_bases` entry from the site's policy and the event's consent, or None."""
    if policy is None:
        return None
    granted = status_value(policy.status)
    if policy.status is msgspec.UNSET and policy.consent_type is not None:
        granted = consent_state(event).get(policy.consent_type)
    if granted is None:
        if policy.when_unknown == "omit":
            return None
        granted = False
    return {
        "category": "communications",
        "type": policy.type,
        "status": "granted" if granted else "declined",
    }


def status_value(value: Any) -> bool | None:
    """granted / declined (also true/false, yes/no, 1/0) as a bool; None when unknown."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("granted", "true", "yes", "1", "on"):
            return True
        if lowered in ("declined", "denied", "false", "no", "0", "off"):
            return False
    return None
