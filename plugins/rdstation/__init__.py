"""`rdstation`: RD Station Marketing events (conversions, orders and carts). docs/tags/rdstation.md.

Two ways in, as RD documents them: an API key (`POST /platform/conversions?api_key=...`, CONVERSION
events only, never expires) or OAuth (`POST /platform/events`, every event type, with a Bearer
token the delivery engine obtains from the refresh token and renews on `401`). Each event is one
request: RD's batch endpoint reports no per-event results, so one bad event would fail the others.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import quote

import msgspec

from sgtm.kit import mapping as m
from sgtm.kit.http import http_url, json_or_none
from sgtm.plugin import (
    BuildContext,
    Credential,
    EventData,
    InvalidEvent,
    Outbound,
    Outcome,
    PersonalData,
    RateLimit,
    Secret,
    Tag,
    Url,
    Verdict,
    hookimpl,
)

from . import payload as p

DEFAULT_ENDPOINT = "https://api.rd.services"
ORDER_DEDUPE_SECONDS = 30 * 86400
EVENT_DEDUPE_SECONDS = 86400


class LegalBasisPolicy(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How the tag fills `legal_bases` (LGPD) on every event it sends."""

    # The LGPD basis recorded for email/WhatsApp communications.
    type: Literal[
        "pre_existent_contract",
        "consent",
        "legitimate_interest",
        "judicial_process",
        "vital_interest",
        "public_interest",
    ] = "consent"
    # The consent signal of the event that decides granted / declined (sGTM consent state), e.g.
    # a `newsletter` type the site's consent banner sends. No default: Google's ad_user_data
    # records consent to advertising, not the LGPD consent to email / WhatsApp messages.
    consent_type: str | None = None
    # A fixed status (or a template such as "{{event.newsletter_optin}}"): granted / declined,
    # true / false. When set, the consent signal is not read (a template that renders nothing
    # gives an unknown status). UNSET, not None, is "not set": a rendered template may be None.
    status: str | bool | msgspec.UnsetType | None = msgspec.UNSET
    # No signal and no status: leave legal_bases out (RD keeps what it has), or send declined.
    when_unknown: Literal["omit", "declined"] = "omit"

    def __post_init__(self) -> None:
        if self.consent_type is not None and not self.consent_type.strip():
            raise ValueError("consent_type: empty")
        if self.status is not msgspec.UNSET or self.consent_type is not None:
            return
        if self.type == "consent":
            raise ValueError(
                "consent_type: name the consent signal that records the visitor's consent to "
                "email / WhatsApp communications (e.g. newsletter), or set status (e.g. "
                '"{{event.newsletter_optin}}"); there is no default: ad_user_data is consent '
                "to advertising, not to communications"
            )
        raise ValueError(
            f"status: set the status of the {self.type} basis (granted, declined or a "
            "template), or a consent_type to read it from"
        )


class RDStationSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # API key ("${RD_API_KEY}"): CONVERSION events only. Or OAuth: all three below.
    api_key: Secret | None = None
    client_id: str | None = None
    client_secret: Secret | None = None
    refresh_token: Secret | None = None
    # The conversion's name in RD; default: the event name.
    conversion_identifier: str | None = None
    # `auto`: event_map decides (OAuth), CONVERSION for everything else; or one type for all.
    event_type: str = "auto"
    # GA4 event name -> RD event type, over the defaults (begin_checkout, purchase, refund).
    event_map: dict[str, str] = {}
    # Payload fields over the defaults: cf_* custom fields, job_title, shipping_city, ...
    fields: dict[str, Any] = {}
    # Tags added to the contact on CONVERSION events (sent lower-case, as RD requires).
    tags: list[str] = []
    legal_bases: LegalBasisPolicy | None = None
    endpoint: Url = DEFAULT_ENDPOINT

    def __post_init__(self) -> None:
        self.endpoint = http_url("endpoint", self.endpoint)
        oauth = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
        }
        if self.api_key and any(oauth.values()):
            raise ValueError(
                "api_key: set api_key (conversions only) or client_id + client_secret + "
                "refresh_token (OAuth), not both"
            )
        if not self.api_key:
            missing = [name for name, value in oauth.items() if not value]
            if len(missing) == len(oauth):
                raise ValueError(
                    "api_key: no credentials: set api_key, or client_id + client_secret + "
                    "refresh_token"
                )
            if missing:
                raise ValueError(f"{missing[0]}: required for OAuth (or use api_key instead)")
        for name, value in self.event_map.items():
            check_event_type(value, "event_map", bool(self.api_key), name)
        if self.event_type != "auto":
            check_event_type(self.event_type, "event_type", bool(self.api_key))
        for name in self.fields:
            if name in p.DEDICATED_FIELDS:
                raise ValueError(f"fields: {name!r} is set with {p.DEDICATED_FIELDS[name]}")
            if not p.FIELD_NAME_RE.match(name):
                raise ValueError(f"fields: {name!r}: RD field names are lower-case snake_case")

    @property
    def oauth(self) -> bool:
        return not self.api_key


def check_event_type(value: str, where: str, api_key: bool, event: str = "") -> None:
    value_text = f"{event} -> {value}" if event else value
    if value in p.DEPRECATED_TYPES:
        raise ValueError(
            f"{where}: {value_text} is deprecated and rejected by RD since 2026; use the "
            "ECOMMERCE_* events (ECOMMERCE_ORDER_PLACED, ECOMMERCE_CART_ABANDONED, ...)"
        )
    if value not in p.EVENT_TYPES:
        known = ", ".join(sorted(p.EVENT_TYPES))
        raise ValueError(f"{where}: {value_text}: unknown RD event type (supported: {known})")
    if api_key and value != "CONVERSION":
        raise ValueError(
            f"{where}: {value_text}: the api_key endpoint takes CONVERSION events only; OAuth "
            "(client_id + client_secret + refresh_token) sends the others"
        )


class RDStationTag(Tag[RDStationSettings]):
    name = "rdstation"
    Settings = RDStationSettings
    description = (
        "RD Station Marketing: conversions (API key or OAuth) and ECOMMERCE_* order/cart events."
    )
    # Events per account: 120 / min on Light, Basic and Pro (500 on Advanced).
    rate_limit = RateLimit(requests=120, per=60)

    def event_type(self, event: EventData, settings: RDStationSettings) -> str:
        if settings.event_type != "auto":
            return settings.event_type
        if not settings.oauth:
            return "CONVERSION"
        table = {**p.EVENT_MAP, **settings.event_map}
        return table.get(str(event.get("event_name")), "CONVERSION")

    def build(
        self, event: EventData, settings: RDStationSettings, ctx: BuildContext
    ) -> list[Outbound]:
        event_type = self.event_type(event, settings)
        body = msgspec.json.encode(
            {
                "event_type": event_type,
                "event_family": "CDP",
                "payload": p.payload(event, event_type, settings, ctx),
            }
        )
        if len(body) > p.MAX_BODY_BYTES:
            raise InvalidEvent(f"request body is {len(body)} bytes; RD takes at most 0.2 MB")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if settings.api_key:
            api_key = quote(settings.api_key, safe="")
            url = f"{settings.endpoint}/platform/conversions?api_key={api_key}"
        else:
            # RD's own examples write the conversion type lower-case in the query.
            query = "conversion" if event_type == "CONVERSION" else event_type
            url = f"{settings.endpoint}/platform/events?event_type={query}"
            headers["Authorization"] = f"Bearer {ctx.credential()}"
        key = m.text(event.get("event_id"))
        return [
            Outbound(
                method="POST",
                url=url,
                headers=headers,
                body=body,
                destination=account(settings),
                idempotency_key=key,
            )
        ]

    def dedupe_key(self, event: EventData, settings: RDStationSettings) -> tuple[str, float] | None:
        # RD has no idempotency key: a reloaded thank-you page must not pay an order twice.
        event_type = self.event_type(event, settings)
        order = m.text(event.get("transaction_id"))
        if event_type in p.ECOMMERCE_TYPES and event_type not in p.CART_TYPES and order:
            return f"{event_type}:{order}", ORDER_DEDUPE_SECONDS
        event_id = m.text(event.get("event_id"))
        return (f"event:{event_id}", EVENT_DEDUPE_SECONDS) if event_id else None

    # -- credentials (OAuth) --------------------------------------------------------------

    def auth_request(self, settings: RDStationSettings) -> Outbound | None:
        if not settings.oauth:
            return None
        return Outbound(
            method="POST",
            url=f"{settings.endpoint}/auth/token",
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            body=msgspec.json.encode(
                {
                    "client_id": settings.client_id,
                    "client_secret": settings.client_secret,
                    "refresh_token": settings.refresh_token,
                }
            ),
            destination=account(settings),
        )

    def parse_auth(
        self, status: int, headers: dict[str, str], body: bytes, now: float
    ) -> Credential:
        data = json_or_none(body)
        if status != 200 or not isinstance(data, dict):
            raise ValueError(f"RD Station token request failed: {status} {error_text(data)}")
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise ValueError("RD Station token response has no access_token")
        lifetime = m.number(data.get("expires_in")) or 86400.0
        # Renew a few minutes early so no request leaves with a token about to expire.
        return Credential(token=token, expires_at=now + max(lifetime - 300, lifetime / 2))

    def is_auth_failure(self, status: int, headers: dict[str, str], body: bytes) -> bool:
        # RD answers 401 with `WWW-Authenticate: ... error="expired_token"` (sometimes as
        # x-amzn-remapped-www-authenticate) or {"error": "invalid_token"}; its official Ruby
        # client refreshes on any 401, and so does this tag.
        return status == 401

    # -- responses ------------------------------------------------------------------------

    def classify(self, status: int, headers: dict[str, str], body: bytes) -> Outcome | Verdict:
        if 200 <= status < 300:
            return "done"
        data = json_or_none(body)
        if status == 429:
            return rate_limited(data, headers)
        if status in (408, 500, 502, 503, 504):
            return Verdict(outcome="retry", reason=f"{status} {error_text(data)}".strip())
        return Verdict(outcome="dead", reason=f"{status} {error_text(data)}".strip())


def account(settings: RDStationSettings) -> str:
    """The lane: one per RD account, so each account gets its own 120/min (never the secret)."""
    secret = settings.api_key or f"{settings.client_id}:{settings.refresh_token}"
    return "rd-" + hashlib.sha256(secret.encode()).hexdigest()[:12]


_PERIOD_RE = re.compile(r"for (\d+) second")


def rate_limited(data: Any, headers: dict[str, str]) -> Verdict:
    """A 429: the per-contact 24 h limit dead-letters (a retry within a day fails again);
    the per-account minute limit waits for its window."""
    message = error_text(data)
    period = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        found = _PERIOD_RE.search(data["error"])
        period = float(found.group(1)) if found else None
    if "lead_limiter" in message or (period is not None and period >= 3600):
        return Verdict(outcome="dead", reason=f"429 per-contact limit: {message}")
    wait = None
    remaining = m.number(data.get("remaining_time")) if isinstance(data, dict) else None
    if remaining is not None and remaining > 0:
        # Documented in milliseconds; RD's Ruby client reads it as seconds. A value longer than
        # the window can only be milliseconds.
        wait = remaining / 1000 if period is not None and remaining > period else remaining
        if period is not None:
            wait = min(wait, period)
    for name in ("retry-after", "retry-after-quotas"):
        if wait is None and (seconds := m.number(headers.get(name))) is not None:
            wait = seconds
    return Verdict(outcome="retry", retry_after=max(1.0, wait or 60.0), reason=f"429 {message}")


def error_text(data: Any) -> str:
    """The first error in any of RD's three error shapes, as `TYPE: message (path)`."""
    if isinstance(data, list) and data:
        data = {"errors": data}
    if not isinstance(data, dict):
        return ""
    errors = data.get("errors")
    first: Any = None
    if isinstance(errors, list) and errors:
        first = errors[0]
    elif isinstance(errors, dict):
        if "error_type" in errors:
            first = errors
        else:
            for field, found in errors.items():
                if isinstance(found, list) and found and isinstance(found[0], dict):
                    first = {**found[0], "path": found[0].get("path", field)}
                    break
    if isinstance(first, dict):
        text = f"{first.get('error_type', '')}: {first.get('error_message', '')}".strip(": ")
        path = first.get("path")
        return f"{text} ({path})" if path else text
    for key in ("error", "message", "error_description"):
        if isinstance(data.get(key), str):
            return str(data[key])
    return ""


@hookimpl
def register_tag_types(register: Callable[[Any], None]) -> None:
    register(RDStationTag())


@hookimpl
def register_personal_data(register: Callable[[Any], None]) -> None:
    # RD's tracking script cookie, sent as the contact's `client_tracking_id`.
    register(
        PersonalData(
            category="device_id",
            name="_rdtrk cookie",
            value="sgtmaudit-rdtrk-7302",
            cookie="_rdtrk",
        )
    )
