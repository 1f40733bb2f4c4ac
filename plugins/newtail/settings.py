"""The `newtail` tag's settings, checked when the container loads.

`publisher_id`, `channel`, `brand` and `fields` may be `{{templates}}`. `allowed_event_hosts`,
`endpoint` and `event_endpoint` never can: they decide where requests go, and an event must never
choose that (the ad events' URLs come from input: allowed_event_hosts is what guards them).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from sgtm.kit.hashing import check_calling_code
from sgtm.plugin import Url

Kind = Literal["impression", "view", "click", "conversion"]

DEFAULT_ENDPOINT = "https://events.newtail-media.newtail.com.br"
# The hosts Newtail / VTEX Ads document for the signed event URLs (docs/tags/newtail.md):
# Newtail's event host, the one its older docs used, and VTEX Ads' developer portal's.
EVENT_HOSTS = (
    "events.newtail-media.newtail.com.br",
    "newtail-media.newtail.com.br",
    "events-api.ads.vtex.com",
)
# Conversion fields a container may set or remove with `fields` (the hashed ones come from
# user_data, so that they are always normalized and hashed; ids and items from the event).
FIELDS = frozenset(
    {"user_id", "session_id", "channel", "brand", "gender", "uf", "city", "is_company"}
)

_DNS_NAME = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
)


def _templated(value: object) -> bool:
    return isinstance(value, str) and "{{" in value


class NewtailSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Your publisher id at Newtail / VTEX Ads (sent with every conversion).
    publisher_id: str
    # Hosts the signed impression / view / click URLs may point at: exact names, `host:port` for
    # a port other than 443. An ad event's URL comes from the browser: nothing else is called.
    allowed_event_hosts: list[str] = msgspec.field(default_factory=lambda: list(EVENT_HOSTS))
    # Sales channel of conversions when the event has none (e.g. ecommerce, app, physical_store).
    channel: str = "ecommerce"
    # Brand / site of conversions when the event has none (required by Newtail with several sites).
    brand: str | None = None
    # Country calling code for phone numbers written without one ("55" for Brazil).
    phone_country_code: str | None = None
    # Event name -> impression | view | click | conversion, merged over the built-in table.
    event_map: dict[str, Kind] = {}
    # Conversion / ad event fields set from the container (templates allowed); null removes one.
    fields: dict[str, Any] = {}
    # Base URL of the conversion API: proxies, tests. Never a template.
    endpoint: Url = DEFAULT_ENDPOINT
    # Base URL ad events go through instead of their own host (an egress proxy, tests): the
    # checked URL's path and query are appended. Never a template.
    event_endpoint: Url | None = None

    def __post_init__(self) -> None:
        if not self.publisher_id.strip():
            raise ValueError("publisher_id: empty")
        if not self.allowed_event_hosts:
            raise ValueError(
                "allowed_event_hosts: empty, so no ad event could be sent; leave it out for "
                "Newtail's documented hosts (" + ", ".join(EVENT_HOSTS) + ")"
            )
        self.allowed_event_hosts = [_host_entry(entry) for entry in self.allowed_event_hosts]
        check_calling_code(self.phone_country_code)
        unknown = sorted(set(self.fields) - FIELDS)
        if unknown:
            raise ValueError(
                f"fields: unknown field {unknown[0]!r} (known: {', '.join(sorted(FIELDS))})"
            )
        for name in ("endpoint", "event_endpoint"):
            value = getattr(self, name)
            if value is None:
                continue
            parts = urlsplit(value)
            if "{{" in value:
                raise ValueError(f"{name}: cannot be a template")
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
                raise ValueError(
                    f"{name}: expected a base URL like {DEFAULT_ENDPOINT}, got {value!r}"
                )

    @property
    def conversion_url(self) -> str:
        return self.endpoint.rstrip("/") + "/v1/beacon/conversion"


def _host_entry(entry: str) -> str:
    """`host` or `host:port`, lower-cased; a DNS name, never an IP address."""
    if _templated(entry):
        raise ValueError("allowed_event_hosts: cannot be a template")
    text = entry.strip().lower()
    host, _, port = text.partition(":")
    if port and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError(f"allowed_event_hosts: {entry!r} has a bad port")
    if port == "443":
        text = host
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        raise ValueError(f"allowed_event_hosts: {entry!r} is an IP address; name the host")
    if not _DNS_NAME.fullmatch(host):
        raise ValueError(
            f"allowed_event_hosts: {entry!r} is not a host name like events.example.com"
        )
    return text
