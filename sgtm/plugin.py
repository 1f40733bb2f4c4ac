"""The plugin contract: what a client type, a tag type and a variable type are.

A plugin registers instances of these through the hooks in `sgtm.hookspecs`. Type objects are
stateless; everything configured per container arrives as `settings`, an instance of the type's
own `Settings` msgspec Struct, decoded (and checked) when the container loads.

Tags never do I/O: `build` returns `Outbound` request descriptions and the delivery engine sends
them. Vendor knowledge lives here, in plugins, never in the core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import msgspec

if TYPE_CHECKING:
    from sgtm.event import EventData
    from sgtm.request import HitRequest


# A settings field that holds a secret (an access token, an API key, a signing secret): its value
# is masked wherever text leaves the process and sealed out of the outbox, whichever environment
# variable filled it. Annotate `access_token: Secret` (or `Secret | None`).
Secret = Annotated[str, msgspec.Meta(extra={"secret": True}, extra_json_schema={"writeOnly": True})]

# A settings field that holds a URL the tag sends to. Templates in it are encoded for the URL
# component they land in (path segment, query value), and may never choose scheme, host or port.
Url = Annotated[str, msgspec.Meta(extra={"url": True}, extra_json_schema={"format": "uri"})]


class NoSettings(msgspec.Struct, forbid_unknown_fields=True):
    """Settings of a type that takes none."""


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


CREDENTIAL = "{{credential}}"  # replaced by the token at send time; `{{credential.NAME}}` too


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

    def drop(self, reason: str, count: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + count


@dataclass(slots=True)
class BuildContext:
    tag_name: str
    container: ContainerInfo
    now: float
    request: HitRequest | None = None  # None for events fed straight in (`emulate --events`)
    # What `build` changed to make the event acceptable (a value truncated, a param dropped):
    # logged, counted and shown by `sgtm emulate`, the event is still sent.
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


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


class Client:
    """A client type claims requests and turns them into event data.

    Subclasses set `name` and usually `Settings`, and implement `claim`, `parse` and `respond`.
    `claim` must be cheap and must not read the body for decisions it can make from the path.
    `parse` never raises for bad input: it drops what is invalid (counting it with `ctx.drop`)
    and returns the valid events; it raises `BadRequest` only when nothing sensible can be done.
    """

    name: ClassVar[str]
    Settings: ClassVar[type[msgspec.Struct]] = NoSettings
    description: ClassVar[str] = ""

    def claim(self, request: HitRequest, settings: Any) -> bool:
        raise NotImplementedError

    def parse(self, request: HitRequest, settings: Any, ctx: ClientContext) -> list[EventData]:
        raise NotImplementedError

    def respond(
        self, request: HitRequest, events: list[EventData], settings: Any, ctx: ClientContext
    ) -> ClientResponse:
        return ClientResponse(status=200)

    def probe_requests(self, event: EventData, base: HitRequest, settings: Any) -> list[HitRequest]:
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


class Tag:
    """A tag type maps event data to vendor requests.

    `build(event, settings, ctx)` is pure: no I/O, no clock but `ctx.now`. It returns the
    requests to send, or raises `InvalidEvent` when the vendor would reject the event.
    `classify` decides what a vendor response means; the default follows Segment's rules.
    `dedupe_key` names events the vendor must see once: (key, ttl seconds) or None.

    Declarations for the delivery engine (all optional):
    - `batching` and `merge`: how outbounds of one lane combine into one request;
      `classify_batch` splits a batch response into one verdict per item (partial failures).
    - `rate_limit`: the vendor's documented limit, the lane's default.
    - Credentials: `auth_request` describes the token request (None: the tag needs no token),
      `parse_auth` reads the response, `is_auth_failure` recognises a refused token (refreshed
      once, then the request is retried once). `build` writes `{{credential}}` (or
      `{{credential.NAME}}`) where the token goes; the engine fills it in at send time, so
      tokens are never stored with a delivery.
    """

    name: ClassVar[str]
    Settings: ClassVar[type[msgspec.Struct]] = NoSettings
    description: ClassVar[str] = ""
    timeout: ClassVar[float] = 10.0
    batching: ClassVar[Batching | None] = None
    rate_limit: ClassVar[RateLimit | None] = None

    def build(self, event: EventData, settings: Any, ctx: BuildContext) -> list[Outbound]:
        raise NotImplementedError

    def dedupe_key(self, event: EventData, settings: Any) -> tuple[str, float] | None:
        return None

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

    def auth_request(self, settings: Any) -> Outbound | None:
        return None

    def parse_auth(
        self, status: int, headers: dict[str, str], body: bytes, now: float
    ) -> Credential:
        raise NotImplementedError(f"tag type {self.name!r} has no parse_auth()")

    def is_auth_failure(self, status: int, headers: dict[str, str], body: bytes) -> bool:
        return status == 401


def as_verdict(value: Outcome | Verdict) -> Verdict:
    return value if isinstance(value, Verdict) else Verdict(outcome=value)


def default_classify(status: int) -> Outcome:
    if 200 <= status < 300:
        return "done"
    if status in (408, 423, 425, 429) or (status >= 500 and status != 501):
        return "retry"
    return "dead"


class Variable:
    """A variable type computes a value for one event.

    `resolve(settings, scope)` gets the variable's settings and a `sgtm.variables.Scope`, which
    gives the event, the request, the client name and other variables' values.
    """

    name: ClassVar[str]
    Settings: ClassVar[type[msgspec.Struct]] = NoSettings
    description: ClassVar[str] = ""

    def resolve(self, settings: Any, scope: Any) -> Any:
        raise NotImplementedError

    def references(self, settings: Any) -> list[str]:
        """Names of other variables this one reads, checked at load (unknown names are errors)."""
        return []
