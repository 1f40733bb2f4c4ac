"""The `ga4` tag: each event forwarded to Google Analytics 4 as one `/g/collect` hit, the way
sGTM's "Google Analytics: GA4" tag forwards what gtag.js sent.

The hit is rebuilt from event data (`encode.py`), so events of any client can be sent, and a
hit the `ga4` client parsed goes back with every parameter it came with (tests/ga4_corpus is the
proof). Settings edit the event first, as sGTM's tag settings do: measurement id, event name,
params and user properties added, replaced or (null) removed.

On the wire: `POST {endpoint}?<request params>` with the event's own params (`en`, `_et`,
`ep.*`, `epn.*`, items) as the body line (everything but `v` and `tid` when the URL would grow
too long), `Content-Type: text/plain;charset=UTF-8`, as gtag sends a hit; the visitor's
`User-Agent` as the request's header; the visitor's IP (after the container's anonymization)
as `_uip`. Google answers 2xx with an empty body whatever it makes
of a hit, and has no dedup key: a 2xx is final, network errors and 5xx are retried, anything
else is dead. docs/tags/ga4.md is the user's guide.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from sgtm.plugin import BuildContext, EventData, InvalidEvent, Outbound, Tag, Url, Verdict

from ..ga4_mp.rules import is_measurement_id, measurement_id_problem
from .encode import encode, query

ENDPOINTS = {
    # The host gtag sends to from the EU (and most captures show); data collected in the EU.
    "eu": "https://region1.google-analytics.com/g/collect",
    "global": "https://www.google-analytics.com/g/collect",
}
MAX_URL_CHARS = 8192
# `_uip=::` says "no IP": without `_uip` Google would locate the visitor at sgtm's own server.
REDACTED_IP = "::"
# The event's own params travel in the body line; the rest in the URL, as gtag splits a hit.
BODY_PARAMS = frozenset({"en", "_et"})
BODY_PREFIXES = ("ep.", "epn.")
_ITEM_PARAM = re.compile(r"pr[0-9]+")
_PARAM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
# A header value carries printable ASCII only: no CR/LF, nothing a transport cannot encode.
_NOT_HEADER_TEXT = re.compile(r"[^\x20-\x7e]")


def _templated(value: object) -> bool:
    return isinstance(value, str) and "{{" in value


class Ga4Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Blank: the event's own (x-ga-measurement_id, what gtag sent as tid). Set: replaces it.
    measurement_id: str | None = None
    # The streams this tag may send to; empty: any well-formed id. An event for another id is
    # `invalid`, so a hit cannot choose where (and in how many lanes) the tag sends.
    measurement_ids: list[str] = []
    # Blank: the event's event_name. Set: replaces it.
    event_name: str | None = None
    # Where Google collects: "eu" (region1.google-analytics.com) or "global" (www).
    region: Literal["eu", "global"] = "eu"
    # The full collect URL instead (a proxy, tests). Overrides `region`. Never a template.
    endpoint: Url | None = None
    # Send `_uip=::` instead of the visitor's IP: GA4 then records no location.
    redact_visitor_ip: bool = False
    # Send user-provided data (`em`, hashed) when the event has user_data.
    send_user_data: bool = True
    # DebugView: `_dbg=1` and `ep.debug_mode=true` on every hit.
    debug_mode: bool = False
    # Event params set on every event (templates allowed): over the event's own, null removes.
    params: dict[str, Any] = {}
    # User properties set on every event, same rules.
    user_properties: dict[str, Any] = {}

    def __post_init__(self) -> None:
        fixed = self.measurement_id is not None and not _templated(self.measurement_id)
        if fixed and not is_measurement_id(self.measurement_id):
            raise ValueError(
                "measurement_id: expected a web stream's id like 'G-ABC123XYZ9', got "
                f"{str(self.measurement_id)[:40]!r}"
            )
        for allowed in self.measurement_ids:
            if not is_measurement_id(allowed):
                raise ValueError(
                    "measurement_ids: expected web streams' ids like 'G-ABC123XYZ9' (no "
                    f"templates), got {allowed[:40]!r}"
                )
        if fixed and self.measurement_ids and self.measurement_id not in self.measurement_ids:
            raise ValueError(
                f"measurement_id: {self.measurement_id!r} is not one of measurement_ids, so "
                "the tag could send nothing"
            )
        if self.event_name is not None and not self.event_name.strip():
            raise ValueError("event_name: empty (leave it out to keep the event's name)")
        if self.endpoint is not None:
            parts = urlsplit(self.endpoint)
            if _templated(self.endpoint):
                raise ValueError("endpoint: cannot be a template")
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
                raise ValueError(
                    f"endpoint: expected a collect URL like {ENDPOINTS['eu']}, "
                    f"got {self.endpoint!r}"
                )
        for field, names in (("params", self.params), ("user_properties", self.user_properties)):
            for name in names:
                if not _PARAM_NAME.fullmatch(name):
                    raise ValueError(
                        f"{field}.{name}: a GA4 name is a letter, then up to 39 letters, "
                        "digits or '_'"
                    )

    @property
    def url(self) -> str:
        return self.endpoint or ENDPOINTS[self.region]


class Ga4Tag(Tag[Ga4Settings]):
    name = "ga4"
    Settings = Ga4Settings
    description = (
        "Google Analytics 4 in the /g/collect protocol gtag.js speaks: sessions, engagement, "
        "first visits and consent forwarded as sGTM's GA4 tag does."
    )

    def build(self, event: EventData, settings: Ga4Settings, ctx: BuildContext) -> list[Outbound]:
        hit = edited(event, settings)
        params = encode(
            hit,
            consent_default=ctx.container.consent_default,
            send_user_data=settings.send_user_data,
            warn=ctx.warn,
        )
        tid = params.get("tid")
        if not tid:
            raise InvalidEvent(
                "no measurement id: set the tag's measurement_id, or send events with "
                "x-ga-measurement_id (the GA4 client's tid)"
            )
        # The id is the request's lane (`destination`): a hit must not open lanes at will.
        problem = measurement_id_problem(tid)
        if problem is not None:
            raise InvalidEvent(problem)
        if settings.measurement_ids and tid not in settings.measurement_ids:
            raise InvalidEvent(f"measurement id {tid!r} is not one of the tag's measurement_ids")
        if not params.get("en"):
            raise InvalidEvent("no event name")
        params = {"v": "2", **{k: v for k, v in params.items() if k != "v"}}
        ip = visitor_ip(hit, settings, ctx)
        if ip is not None:
            params["_uip"] = ip
        url, body = split(params, settings.url)
        headers = {"Content-Type": "text/plain;charset=UTF-8"}
        user_agent = hit.get("user_agent")
        text = _NOT_HEADER_TEXT.sub("", user_agent).strip() if isinstance(user_agent, str) else ""
        if text:
            headers["User-Agent"] = text
        return [
            Outbound(
                method="POST",
                url=url,
                headers=headers,
                body=body,
                destination=tid,
            )
        ]

    def classify(self, status: int, headers: dict[str, str], body: bytes) -> Verdict:
        if 200 <= status < 300:
            return Verdict(outcome="done")
        if status >= 500:
            return Verdict(outcome="retry", reason=f"HTTP {status}")
        return Verdict(
            outcome="dead", reason=f"HTTP {status}: refused by GA4 or a proxy on the way"
        )


def edited(event: EventData, settings: Ga4Settings) -> EventData:
    """The event with the tag's settings applied: what the hit describes."""
    hit = dict(event)
    if settings.measurement_id:
        hit["x-ga-measurement_id"] = settings.measurement_id
    if settings.event_name:
        hit["event_name"] = settings.event_name
    if settings.debug_mode:
        hit["debug_mode"] = True
    _apply(hit, settings.params)
    if settings.user_properties:
        properties = hit.get("x-ga-mp2-user_properties")
        hit["x-ga-mp2-user_properties"] = dict(properties) if isinstance(properties, dict) else {}
        _apply(hit["x-ga-mp2-user_properties"], settings.user_properties)
    return hit


def visitor_ip(hit: EventData, settings: Ga4Settings, ctx: BuildContext) -> str | None:
    if settings.redact_visitor_ip:
        return REDACTED_IP
    ip = hit.get("ip_override")
    if ip is None:
        return None
    try:
        return str(ipaddress.ip_address(str(ip).strip()))
    except ValueError:
        ctx.warn(f"ip_override {str(ip)[:60]!r} is not an IP address; _uip not sent")
        return None


def _apply(target: dict[str, Any], edits: dict[str, Any]) -> None:
    for name, value in edits.items():
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value


def split(params: dict[str, str], endpoint: str) -> tuple[str, bytes]:
    """The URL and the body line. A URL that would pass MAX_URL_CHARS (long page URLs, many
    passed-through params) keeps only `v` and `tid`: servers and proxies refuse long URLs, and GA4
    reads a body line's params as the URL's."""
    url_params = {k: v for k, v in params.items() if not _in_body(k)}
    url = f"{endpoint}?{query(url_params)}"
    if len(url) > MAX_URL_CHARS:
        url_params = {"v": params["v"], "tid": params["tid"]}
        url = f"{endpoint}?{query(url_params)}"
    # The event's name first, as gtag writes a line.
    line = {"en": params["en"], **{k: v for k, v in params.items() if k not in url_params}}
    return url, query(line).encode()


def _in_body(name: str) -> bool:
    return (
        name in BODY_PARAMS or name.startswith(BODY_PREFIXES) or bool(_ITEM_PARAM.fullmatch(name))
    )
