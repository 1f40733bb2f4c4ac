"""The canaries of `sgtm audit`: one recognizable value per personal-data field.

The core knows the fields of sGTM's common event data (below); plugins add the ones they know
(cookies, click ids, their own event keys) through the `register_personal_data` hook. Every value
is already in the form most normalizers produce (lower-case where case does not matter, an
E.164 phone, letters only in names), so a tag's normalization changes it little and its SHA-256
is among the few the search computes (`sgtm.audit.search`). Values shorter than a few characters
(a region or country code) cannot be distinctive and are matched only as a whole value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

from sgtm import consent
from sgtm.event import EventData, set_path
from sgtm.plugin import PersonalData
from sgtm.request import HitRequest

# Category -> what a privacy officer calls it (the report's legend). Plugins may add categories.
CATEGORIES: dict[str, str] = {
    "email": "e-mail address",
    "phone": "phone number",
    "name": "first or last name",
    "address": "postal address (street, city, region, postal code, country)",
    "user_id": "external / user id",
    "ip": "IP address",
    "user_agent": "user agent",
    "device_id": "device or cookie id (client id, first-party cookies)",
    "click_id": "ad click id",
    "page_url": "precise page URL (with its query)",
}

PAGE = "https://www.shop.example/sgtmaudit-page"
PAGE_QUERY = [("sgtmaudit", "page-query")]
REFERRER = "https://search.example/sgtmaudit-referrer?q=sgtmaudit-search"
IP = "203.0.113.77"  # TEST-NET-3: never a real visitor

# The probe's commerce fields, so that tags which need a purchase's value and items fire.
COMMERCE: EventData = {
    "currency": "USD",
    "value": 10,
    "transaction_id": "sgtmaudit-order-1",
    "items": [{"item_id": "sgtmaudit-sku", "item_name": "Audit item", "price": 10, "quantity": 1}],
}
# Names that make most tags fire: a page view, a lead, a purchase.
EVENT_NAMES = ("page_view", "generate_lead", "purchase")


def _field(
    category: str,
    key: str,
    value: str,
    marks: tuple[str, ...] = (),
    anonymized: tuple[str, ...] = (),
) -> PersonalData:
    return PersonalData(
        category=category,
        name=key,
        value=value,
        event_keys=(key,),
        marks=marks,
        anonymized=anonymized,
    )


CORE: tuple[PersonalData, ...] = (
    _field("email", "user_data.email_address", "sgtmaudit.email@example.com"),
    _field("phone", "user_data.phone_number", "+5511987650432"),
    _field("name", "user_data.address.first_name", "Sgtmauditfirst"),
    _field("name", "user_data.address.last_name", "Sgtmauditlast"),
    _field("address", "user_data.address.street", "42 Sgtmaudit Street"),
    _field("address", "user_data.address.city", "Sgtmauditcity"),
    _field("address", "user_data.address.region", "QZ"),
    _field("address", "user_data.address.postal_code", "86420135"),
    _field("address", "user_data.address.country", "XZ"),
    _field("user_id", "user_id", "sgtmaudit-user-7301"),
    _field("ip", "ip_override", IP, anonymized=("203.0.113.0",)),
    _field(
        "user_agent",
        "user_agent",
        "Mozilla/5.0 (X11; Linux x86_64) SgtmAuditBrowser/7.3",
        marks=("SgtmAuditBrowser/7.3",),
    ),
    _field("device_id", "client_id", "975318642.1357924680"),
    _field(
        "page_url",
        "page_referrer",
        REFERRER,
        marks=("sgtmaudit-referrer?q=sgtmaudit-search",),
        anonymized=("search.example/sgtmaudit-referrer",),
    ),
)


@dataclass(frozen=True, slots=True)
class Canaries:
    """Every field the audit probes for: the core's, the page URL, and the plugins'."""

    fields: tuple[PersonalData, ...]

    @classmethod
    def build(cls, extra: Iterable[PersonalData] = ()) -> Canaries:
        extra = tuple(extra)
        # Click ids travel in the page URL, as they do when a visitor lands from an ad.
        query = PAGE_QUERY + [(f.url_param, f.value) for f in extra if f.url_param]
        page = PersonalData(
            category="page_url",
            name="page_location",
            value=f"{PAGE}?{urlencode(query)}",
            event_keys=("page_location",),
            marks=(f"sgtmaudit-page?{urlencode(PAGE_QUERY)}",),
            anonymized=(PAGE.split("://", 1)[1],),
        )
        return cls((*CORE, page, *extra))

    def categories(self) -> list[str]:
        return list(dict.fromkeys([*CATEGORIES, *(f.category for f in self.fields)]))

    def value(self, key: str) -> str:
        return next(f.value for f in self.fields if key in f.event_keys)

    def event(self, event_name: str, now: float) -> EventData:
        """A probe event: every field's canary at each of its event keys, consent granted, and
        the time the hit arrived, as clients write it."""
        event: EventData = {"event_name": event_name, "event_id": f"sgtmaudit-{event_name}"}
        set_path(event, "x-sst-system_properties.request_start_time_ms", int(now * 1000))
        for key, value in COMMERCE.items():
            event[key] = list(map(dict, value)) if isinstance(value, list) else value
        event["consent_state"] = dict.fromkeys(consent.KNOWN_TYPES, True)
        for field in self.fields:
            for key in field.event_keys:
                set_path(event, key, field.value)
        return event

    def request(self, host: str, client_ip: str | None) -> HitRequest:
        """What a browser adds to any hit: user agent, page as Referer, cookies, its IP."""
        cookies = "; ".join(f"{f.cookie}={f.value}" for f in self.fields if f.cookie)
        headers = {
            "host": host,
            "user-agent": self.value("user_agent"),
            "referer": self.value("page_location"),
            "accept-language": "en-US,en;q=0.9",
        }
        if cookies:
            headers["cookie"] = cookies
        return HitRequest(method="GET", path="/", headers=headers, client_ip=client_ip, host=host)
