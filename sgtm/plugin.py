"""The plugin contract, and the one module a plugin imports (`from sgtm.plugin import ...`).

A plugin registers instances of `Client`, `Tag` and `Variable` subclasses through the hooks in
`sgtm.hookspecs` (decorate them with `hookimpl`). Type objects are stateless; everything
configured per container arrives as `settings`, an instance of the type's own `Settings` msgspec
Struct, decoded (and checked) when the container loads. The base classes are generic over that
Struct (`class SlackTag(Tag[SlackSettings])`), so a type checker sees `settings` as it is.

Tags never do I/O: `build` returns `Outbound` request descriptions and the delivery engine sends
them. Vendor knowledge lives in plugins, never in the core.

Everything a plugin needs is exported here (`__all__`); the helpers built-in plugins share
(cookies, PII hashing, HTTP answers, field maps) are in `sgtm.kit`. What changes in this
contract, and how it is deprecated first, is in docs/plugin-contract-changelog.md.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

import msgspec

from sgtm import placeholders
from sgtm.consent import first_denied as first_denied_consent
from sgtm.consent import state as consent_state
from sgtm.event import EventData, copy_event, delete_path, set_path
from sgtm.event import get as get_path
from sgtm.event import has as has_path
from sgtm.hookspecs import hookimpl
from sgtm.request import HitRequest
from sgtm.scope import Scope
from sgtm.templates import has_template, to_text

__all__ = [
    "CONTRACT_VERSION",
    "BadRequest",
    "Batching",
    "BuildContext",
    "Client",
    "ClientContext",
    "ClientResponse",
    "ContainerInfo",
    "Cookie",
    "Credential",
    "EventData",
    "HitRequest",
    "InvalidEvent",
    "NoSettings",
    "Outbound",
    "Outcome",
    "PersonalData",
    "RateLimit",
    "Scope",
    "Secret",
    "Tag",
    "Url",
    "Variable",
    "Verdict",
    "consent_state",
    "copy_event",
    "default_classify",
    "delete_path",
    "first_denied_consent",
    "get_path",
    "has_path",
    "has_template",
    "hookimpl",
    "set_path",
    "to_text",
]

# MAJOR.MINOR of this contract: a minor release only adds; anything removed or changed in a way
# a plugin would notice waits for the next major, deprecated (with a warning) until then.
CONTRACT_VERSION = "1.2"


# A settings field that holds a secret (an access token, an API key, a signing secret): its value
# is masked wherever text leaves the process and sealed out of the outbox, whichever environment
# variable filled it. Annotate `access_token: Secret` (or `Secret | None`).
Secret = Annotated[str, msgspec.Meta(extra={"secret": True}, extra_json_schema={"writeOnly": True})]

# A settings field that holds a URL the tag sends to. Templates in it are encoded for the URL
# component they land in (path segment, query value), and may never choose scheme, host or port.
Url = Annotated[str, msgspec.Meta(extra={"url": True}, extra_json_schema={"format": "uri"})]


class NoSettings(msgspec.Struct, forbid_unknown_fields=True):
    """Settings of a type that takes none."""


# The Settings Struct a type is generic over: `Tag[MySettings]` types `settings` as MySettings.
SettingsT = TypeVar("SettingsT", bound=msgspec.Struct)


class InvalidEvent(Exception):
    """Raised by `Tag.build` when the vendor would reject the event: reported `invalid: <why>`."""


class Outbound(msgspec.Struct, kw_only=True):
    """One request a tag wants sent; the delivery engine owns retries, batching, connections."""

    method: str
    url: str
    headers: dict[str, str] = {}
    body: bytes = b""
    # The lane: requests with the same destination share batching, rate limit and breaker.
    # Empty means "the tag's own lane".
    destination: str = ""
    # Resent unchanged on every retry so the vendor can drop duplicates.
    idempotency_key: str | None = None
    # Seconds; None means the tag type's `timeout`.
    timeout: float | None = None
    # For tags that batch: this request's part of a batch (e.g. one event dict). `Tag.merge`
    # turns several outbounds of one lane into the single request actually sent. Plain data
    # only (dicts, lists, strings, numbers): it waits in the outbox and comes back decoded.
    batch_item: Any = None
    # For tags that batch: only outbounds of one lane with equal batch_key share a request
    # (e.g. GA4 MP: one request per client). Keeps lanes few (one per vendor account) while a
    # vendor's request-level fields still match within each request.
    batch_key: str = ""


class Credential(msgspec.Struct, kw_only=True):
    """A token obtained at run time (OAuth, session login). Never logged or stored in clear."""

    token: str
    expires_at: float | None = None  # seconds since the epoch; None: valid until refused
    values: dict[str, str] = {}  # e.g. {"endpoint": ...} from a login response


class Batching(msgspec.Struct, frozen=True, kw_only=True):
    """How a tag's lane batches: the engine merges up to `max_items` outbounds (and at most
    `max_bytes` of their bodies) waiting at most `linger` seconds, or every `flush_every`."""

    max_items: int = 1
    max_bytes: int = 1_000_000
    linger: float = 0.0
    flush_every: float | None = None


class RateLimit(msgspec.Struct, frozen=True, kw_only=True):
    """A vendor's documented request rate: `requests` per `per` seconds (a token bucket)."""

    requests: int
    per: float


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """A classification with details: wait at least `retry_after` seconds; `reason` is kept with
    a dead letter."""

    outcome: Literal["done", "retry", "dead"]
    retry_after: float | None = None
    reason: str = ""


class Cookie(msgspec.Struct, kw_only=True):
    name: str
    value: str
    max_age: int | None = None
    domain: str | None = None
    path: str = "/"
    secure: bool = True
    http_only: bool = False
    same_site: Literal["Lax", "Strict", "None"] | None = "Lax"

    def header_value(self) -> str:
        parts = [f"{self.name}={self.value}", f"Path={self.path}"]
        if self.max_age is not None:
            parts.append(f"Max-Age={self.max_age}")
        if self.domain:
            parts.append(f"Domain={self.domain}")
        if self.secure:
            parts.append("Secure")
        if self.http_only:
            parts.append("HttpOnly")
        if self.same_site:
            parts.append(f"SameSite={self.same_site}")
        return "; ".join(parts)


class ClientResponse(msgspec.Struct, kw_only=True):
    """What a client answers. CORS headers for the container's origins are added by the core."""

    status: int = 200
    headers: dict[str, str] = {}
    body: bytes = b""
    cookies: list[Cookie] = []


@dataclass(slots=True)
class ContainerInfo:
    """Container-wide facts a client may need (it never sees other clients or tags)."""

    name: str
    origins: tuple[str, ...] = ()
    consent_default: str = "granted"


# What serving draws random values from (ClientContext.random): the OS's CSPRNG.
SYSTEM_RANDOM = secrets.SystemRandom()


@dataclass(slots=True)
class ClientContext:
    client_name: str
    container: ContainerInfo
    now: float  # seconds since the epoch, fixed for one request (and settable in emulate)
    # Counters a client bumps for input it dropped, e.g. {"ga4.invalid_param": 3}; logged and
    # exported as metrics by the core.
    dropped: dict[str, int] = field(default_factory=dict)
    # Cookies `parse` decided on (e.g. a first-party id it generated); `respond` sends them.
    cookies: list[Cookie] = field(default_factory=list)
    # Where new random values come from (a first-party id the client generates): the OS's CSPRNG
    # when serving, a seeded generator in `sgtm emulate` so its output repeats run to run.
    random: random.Random = field(default_factory=lambda: SYSTEM_RANDOM)

    def drop(self, reason: str, count: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + count


def random_id() -> str:
    return secrets.token_hex(16)


@dataclass(slots=True)
class BuildContext:
    tag_name: str
    container: ContainerInfo
    now: float
    request: HitRequest | None = None  # None for events fed straight in (`emulate --events`)
    # What `build` changed to make the event acceptable (a value truncated, a param dropped):
    # logged, counted and shown by `sgtm emulate`, the event is still sent.
    warnings: list[str] = field(default_factory=list)
    # Where unique ids come from: random when serving, seeded in `sgtm emulate`.
    new_id: Callable[[], str] = random_id
    # Binds this build's credential placeholders to its requests (`sgtm.placeholders`); drawn
    # on first use, kept with the stored requests.
    nonce: str = ""

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def credential(self, name: str | None = None) -> str:
        """Where a run-time token goes: `ctx.credential()` is the token, `ctx.credential("x")`
        the value `x` of the credential (`Credential.values`). The engine fills it in at send
        time; a hit can never write one (text that looks like a placeholder is left alone)."""
        if not self.nonce:
            self.nonce = placeholders.new_nonce()
        return placeholders.credential(self.nonce, name)

    def unique_id(self) -> str:
        """An id unique to this call, e.g. an idempotency key for an event without an id."""
        return self.new_id()


class PersonalData(msgspec.Struct, frozen=True, kw_only=True):
    """A kind of personal data, as `sgtm audit` probes for it (`register_personal_data`).

    The audit puts `value`, a canary (distinctive, and in the format tags accept), into its probe
    events at each of `event_keys`, into its probe requests as the cookie `cookie`, or into the
    probe page URL as the query parameter `url_param`; then it looks for the canary in every
    request each tag builds. `marks` are the parts to look for when a tag sends only part of the
    value (default: the whole value); `anonymized` are values that mean it left truncated.
    """

    category: str  # email, phone, name, address, user_id, ip, device_id, click_id, ... or new
    name: str  # what it is, unique: an event key, `_fbp cookie`, `fbclid`
    value: str
    event_keys: tuple[str, ...] = ()
    cookie: str | None = None
    url_param: str | None = None
    marks: tuple[str, ...] = ()
    anonymized: tuple[str, ...] = ()


class Client(Generic[SettingsT]):
    """A client type claims requests and turns them into event data.

    Subclasses set `name` and usually `Settings` (`class MyClient(Client[MySettings])`), and
    implement `claim` and `parse` (checked at load) and usually `respond`.
    `claim` must be cheap and must not read the body for decisions it can make from the path.
    `parse` never raises for bad input: it drops what is invalid (counting it with `ctx.drop`)
    and returns the valid events; it raises `BadRequest` only when nothing sensible can be done.
    Server-to-server clients may also declare `rate_limit` (per sender) and `dedupe_key` (events
    a sender resends); the core applies both.
    """

    name: ClassVar[str]
    # A class attribute in practice; typed per instance because a ClassVar cannot be generic.
    Settings: type[SettingsT] = NoSettings  # type: ignore[assignment]
    description: ClassVar[str] = ""

    def claim(self, request: HitRequest, settings: SettingsT) -> bool:
        raise NotImplementedError

    def parse(
        self, request: HitRequest, settings: SettingsT, ctx: ClientContext
    ) -> list[EventData]:
        raise NotImplementedError

    def respond(
        self, request: HitRequest, events: list[EventData], settings: SettingsT, ctx: ClientContext
    ) -> ClientResponse:
        return ClientResponse(status=200)

    def rate_limit(self, request: HitRequest, settings: Any) -> tuple[str, RateLimit] | None:
        """The sender this request counts against and its rate, or None (no limit). The core
        checks it before `parse` and answers 429 with `Retry-After` when the sender is over."""
        return None

    def dedupe_key(self, event: EventData, settings: Any) -> tuple[str, float] | None:
        """An event the sender may resend: (key, ttl seconds). A second event with the same key
        within the TTL is acknowledged like the first but runs no tag."""
        return None

    def probe_requests(
        self, event: EventData, base: HitRequest, settings: SettingsT
    ) -> list[HitRequest]:
        """Requests in this client's protocol that carry `event`, for `sgtm audit`.

        `event` is a probe: event data with a canary in every personal-data field. `base` holds
        what a browser adds (user agent, cookies, client IP, host); return copies of it with the
        method, path, query and body that make `parse` produce this event, as far as the
        protocol can say it. Default: none (the audit then probes tags with `event` directly).
        """
        return []


class BadRequest(Exception):
    """Raised by `Client.parse` for input it cannot use at all; answered with `status` (4xx)."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.headers = headers or {}


Outcome = Literal["done", "retry", "dead"]


class Tag(Generic[SettingsT]):
    """A tag type maps event data to vendor requests (`class MyTag(Tag[MySettings])`).

    `build(event, settings, ctx)` is pure: no I/O, no clock but `ctx.now`. It returns the
    requests to send, or raises `InvalidEvent` when the vendor would reject the event.
    `classify` decides what a vendor response means; the default follows Segment's rules.
    `dedupe_key` names events the vendor must see once: (key, ttl seconds) or None.

    Declarations for the delivery engine (all optional):
    - `batching` and `merge`: how outbounds of one lane combine into one request (a tag that
      declares batching must implement merge, checked at load); `classify_batch` splits a
      batch response into one verdict per item (partial failures).
    - `rate_limit`: the vendor's documented limit, the lane's default; `rate_limit_for(settings)`
      when it depends on the settings (the account's plan).
    - `follow_up`: events made from a done answer (enrichment: read a record, act on it).
    - Credentials: `auth_request` describes the token request (None: the tag needs no token),
      `parse_auth` reads the response (required with auth_request, checked at load),
      `is_auth_failure` recognises a refused token (refreshed once, then the request is
      retried once). `build` writes `ctx.credential()` (or `ctx.credential("NAME")`) where
      the token goes; the engine fills it in at send time, so
      tokens are never stored with a delivery.
    """

    name: ClassVar[str]
    # A class attribute in practice; typed per instance because a ClassVar cannot be generic.
    Settings: type[SettingsT] = NoSettings  # type: ignore[assignment]
    description: ClassVar[str] = ""
    timeout: ClassVar[float] = 10.0
    batching: ClassVar[Batching | None] = None
    rate_limit: ClassVar[RateLimit | None] = None

    def build(self, event: EventData, settings: SettingsT, ctx: BuildContext) -> list[Outbound]:
        raise NotImplementedError

    def dedupe_key(self, event: EventData, settings: SettingsT) -> tuple[str, float] | None:
        return None

    def rate_limit_for(self, settings: SettingsT) -> RateLimit | None:
        """The lane's default rate for these settings (a vendor whose limit depends on the
        account's plan); by default the type's `rate_limit`."""
        return self.rate_limit

    def classify(self, status: int, headers: dict[str, str], body: bytes) -> Outcome | Verdict:
        return default_classify(status)

    def merge(self, outbounds: list[Outbound]) -> Outbound:
        """One request from several outbounds of one lane (only called when `batching` is set)."""
        if len(outbounds) == 1:
            return outbounds[0]
        raise NotImplementedError(f"tag type {self.name!r} declares batching but no merge()")

    def classify_batch(
        self, status: int, headers: dict[str, str], body: bytes, items: list[Outbound]
    ) -> list[Outcome | Verdict]:
        """One verdict per item of a merged request; by default the whole response's."""
        return [self.classify(status, headers, body)] * len(items)

    def follow_up(
        self,
        status: int,
        headers: dict[str, str],
        body: bytes,
        request: Outbound,
        settings: SettingsT,
    ) -> list[EventData]:
        """Events made from a vendor's answer that was classified done (a lead's details read
        from an API): the core runs them through the container's tags that make no events of
        their own. `settings` are the tag's as loaded. Only for tags that do not batch."""
        return []

    def auth_request(self, settings: SettingsT) -> Outbound | None:
        return None

    def parse_auth(
        self, status: int, headers: dict[str, str], body: bytes, now: float
    ) -> Credential:
        raise NotImplementedError(f"tag type {self.name!r} has no parse_auth()")

    def is_auth_failure(self, status: int, headers: dict[str, str], body: bytes) -> bool:
        return status == 401


def makes_events(tag: Tag[Any]) -> bool:
    """Whether a tag type turns vendor answers into events (`Tag.follow_up`)."""
    return type(tag).follow_up is not Tag.follow_up


def as_verdict(value: Outcome | Verdict) -> Verdict:
    return value if isinstance(value, Verdict) else Verdict(outcome=value)


def default_classify(status: int) -> Outcome:
    if 200 <= status < 300:
        return "done"
    if status in (408, 423, 425, 429) or (status >= 500 and status != 501):
        return "retry"
    return "dead"


class Variable(Generic[SettingsT]):
    """A variable type computes a value for one event (`class MyVar(Variable[MySettings])`).

    `resolve(settings, scope)` gets the variable's settings and the event's `Scope`, which
    gives the event, the request, the client name and other variables' values.
    """

    name: ClassVar[str]
    # A class attribute in practice; typed per instance because a ClassVar cannot be generic.
    Settings: type[SettingsT] = NoSettings  # type: ignore[assignment]
    description: ClassVar[str] = ""

    def resolve(self, settings: SettingsT, scope: Scope) -> Any:
        raise NotImplementedError

    def references(self, settings: SettingsT) -> list[str]:
        """Names of other variables this one reads, checked at load (unknown names are errors)."""
        return []
