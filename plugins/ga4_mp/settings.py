"""The `ga4_mp` tag's settings, checked when the container loads.

Values may be `{{variable}}` / `{{event.key}}` templates (a lookup variable can choose the
measurement id and secret per site); such a value is checked again once rendered for an event,
and a bad rendered value makes that event `invalid: settings: ...`. `endpoint` can never be a
template: an event must not choose where a request goes.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from sgtm.plugin import Secret, Url

from .rules import (
    MAX_USER_PROPERTY_NAME_CHARS,
    RESERVED_EVENT_NAMES,
    RESERVED_USER_PROPERTY_NAMES,
    is_measurement_id,
    name_problem,
)

ENDPOINTS = {
    "global": "https://www.google-analytics.com",
    "eu": "https://region1.google-analytics.com",  # collected and processed in the EU
}
_COUNTRY_CODE = re.compile(r"[1-9][0-9]{0,2}")


def _templated(value: object) -> bool:
    return isinstance(value, str) and "{{" in value


class Ga4MpSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The web data stream's measurement id, "G-XXXXXXXXXX".
    measurement_id: str
    # A Measurement Protocol API secret of that stream (Admin > Data streams > Measurement
    # Protocol API secrets); from the environment: "${GA4_API_SECRET}".
    api_secret: Secret
    # Where Google collects: "global" (www.google-analytics.com) or "eu" (region1...).
    region: Literal["global", "eu"] = "global"
    # Send to /debug/mp/collect instead: Google validates and answers validationMessages, but
    # records NOTHING. Messages make the delivery a dead letter with them as the reason.
    validate: bool = False
    # With validate: RELAXED, or ENFORCE_RECOMMENDATIONS (also flags recommended fields).
    validation_behavior: Literal["RELAXED", "ENFORCE_RECOMMENDATIONS"] = "RELAXED"
    # Overrides the client id the tag would choose (see the docs), e.g. "{{event.client_id}}".
    client_id: str | None = None
    # Event name -> GA4 event name, merged over the built-in table (none: names pass as they are).
    event_map: dict[str, str] = {}
    # Params added to every event (templates allowed); null removes a param the event has.
    params: dict[str, Any] = {}
    # User properties added to every event's request; null removes one.
    user_properties: dict[str, Any] = {}
    # Country calling code for phone numbers written without one (e.g. "55" for Brazil).
    phone_country_code: str | None = None
    # Send user_data (hashed email, phone, name, address) when the event has some.
    send_user_data: bool = True
    # Base URL: proxies, tests. Overrides `region`. Never a template.
    endpoint: Url | None = None

    def __post_init__(self) -> None:
        if not _templated(self.measurement_id) and not is_measurement_id(self.measurement_id):
            raise ValueError(
                "measurement_id: expected a web stream's id like 'G-ABC123XYZ9', got "
                f"{self.measurement_id[:40]!r}"
            )
        if not self.api_secret.strip():
            raise ValueError("api_secret: empty (set it from the environment)")
        if self.phone_country_code is not None and not _COUNTRY_CODE.fullmatch(
            self.phone_country_code
        ):
            raise ValueError("phone_country_code: 1-3 digits, e.g. '55'")
        for source, target in self.event_map.items():
            problem = name_problem(target) if not _templated(target) else None
            if problem or target in RESERVED_EVENT_NAMES:
                raise ValueError(
                    f"event_map.{source}: {target!r} is not a GA4 event name "
                    f"({problem or 'reserved by GA4'})"
                )
        for name in self.params:
            problem = name_problem(name)
            if problem:
                raise ValueError(f"params.{name}: the name is {problem}")
        for name in self.user_properties:
            problem = name_problem(name, MAX_USER_PROPERTY_NAME_CHARS)
            if problem is None and name in RESERVED_USER_PROPERTY_NAMES:
                problem = "reserved by GA4"
            if problem:
                raise ValueError(f"user_properties.{name}: the name is {problem}")
        if self.endpoint is not None:
            parts = urlsplit(self.endpoint)
            if "{{" in self.endpoint:
                raise ValueError("endpoint: cannot be a template")
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
                raise ValueError(
                    f"endpoint: expected a base URL like {ENDPOINTS['global']}, "
                    f"got {self.endpoint!r}"
                )

    @property
    def base_url(self) -> str:
        return (self.endpoint or ENDPOINTS[self.region]).rstrip("/")
