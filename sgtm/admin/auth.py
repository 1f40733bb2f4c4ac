"""Who may use the admin surface: the bearer token for API clients, a login cookie for the UI.

The UI's login form takes the token once; the cookie it gets holds no token, only a signed
session (`issued.nonce.mac`, HMAC-SHA256 under a key derived from the token), so any worker of
any process with the same token accepts it and changing the token ends every session. The
cookie is HttpOnly and SameSite=Strict, scoped to /_sgtm. A request authenticated by the cookie
that changes state must also carry the session's CSRF token (derived from the same key, put in
the page by the server) and, when the browser sends one, an Origin of this very site.

Every check of the token itself (the API's bearer header, the login form, /metrics) goes through
one `TokenGate` per process, so wrong tokens on any of them count against the same client: 10
within a minute lock that client out of all of them for a minute (429 with Retry-After; even the
right token is refused, unchecked, until then). The client is its IP as the hit path resolves it
(X-Forwarded-For only from the trusted proxies of the container the Host routes to), an IPv6
client by its /64. A login cookie is not a guess at the token and is not throttled.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request

from sgtm.app import bearer_matches
from sgtm.privacy import anonymize_ip

COOKIE = "sgtm_admin"
SESSION_LIFE = 12 * 3600.0
CSRF_HEADER = "x-sgtm-csrf"

log = logging.getLogger("sgtm.admin")


@dataclass(frozen=True, slots=True)
class Session:
    nonce: str
    csrf: str


class AdminAuth:
    def __init__(self, token: str) -> None:
        self.token = token
        self._key = hashlib.sha256(b"sgtm admin session\0" + token.encode()).digest()

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def new_cookie(self, now: float | None = None) -> str:
        issued = f"{int(now if now is not None else time.time()):x}"
        nonce = secrets.token_urlsafe(18)
        return f"{issued}.{nonce}.{self._mac(f'{issued}.{nonce}')}"

    def session(self, request: Request, now: float | None = None) -> Session | None:
        """The login session the request's cookie proves, if any."""
        value = request.cookies.get(COOKIE, "")
        parts = value.split(".")
        if len(parts) != 3 or len(value) > 200:
            return None
        issued, nonce, mac = parts
        if not hmac.compare_digest(mac, self._mac(f"{issued}.{nonce}")):
            return None
        try:
            age = (now if now is not None else time.time()) - int(issued, 16)
        except ValueError:
            return None
        if not 0 <= age <= SESSION_LIFE:
            return None
        return Session(nonce=nonce, csrf=self._mac(f"csrf.{nonce}")[:32])

    def may_change(self, request: Request, session: Session, given_csrf: str | None) -> bool:
        """A state-changing request authenticated by the cookie: the session's CSRF token and,
        when the browser says where it comes from, this site's own origin."""
        if not given_csrf or not hmac.compare_digest(given_csrf, session.csrf):
            return False
        return same_origin(request)


class TokenThrottle:
    """Wrong tokens per client: `limit` within `per` seconds lock the client out for `per`
    seconds. Bounded and O(1) per call, so an attacker rotating addresses can neither grow it
    nor flush it: at most `size` clients counting failures (the least recently failing one is
    forgotten first: it loses fewer than `limit` failures) and `size` locked ones (in locking
    order, which is expiry order: expired locks leave from the front; past `size` live locks,
    which takes `size` x `limit` wrong tokens within `per`, the oldest goes)."""

    def __init__(self, limit: int = 10, per: float = 60.0, size: int = 10_000) -> None:
        self.limit = limit
        self.per = per
        self.size = size
        # client -> times of its recent failures (fewer than `limit`), least recently failing first
        self._failing: OrderedDict[str, deque[float]] = OrderedDict()
        self._locked: OrderedDict[str, float] = OrderedDict()  # client -> locked until

    def __len__(self) -> int:
        return len(self._failing) + len(self._locked)

    def wait(self, client: str, now: float) -> float:
        """Seconds before `client` may try a token again (0.0: now)."""
        locked = self._locked
        while locked:  # every lock lasts `per`: the front ends first
            first, ends = next(iter(locked.items()))
            if ends > now:
                break
            del locked[first]
        until = locked.get(client)
        return 0.0 if until is None else until - now

    def failed(self, client: str, now: float) -> bool:
        """Counts a wrong token of `client`; True when it locks the client out."""
        until = self._locked.get(client)
        if until is not None:
            if until > now:
                return False  # a request that was checked before the lock began
            del self._locked[client]
        failing = self._failing
        while failing:  # forget clients whose last failure is `per` old
            first, last = next(iter(failing.items()))
            if now - last[-1] < self.per:
                break
            del failing[first]
        times = failing.pop(client) if client in failing else deque(maxlen=self.limit)
        while times and now - times[0] >= self.per:
            times.popleft()
        times.append(now)
        if len(times) >= self.limit:
            self._locked[client] = now + self.per
            if len(self._locked) > self.size:
                self._locked.popitem(last=False)
            return True
        failing[client] = times  # at the end: the most recently failing
        if len(failing) > self.size:
            failing.popitem(last=False)
        return False


def client_key(ip: str | None) -> str:
    """What the throttle counts by: an IPv4 address, an IPv6 client's /64 (one host commonly
    holds a whole /64, so its addresses are one client), "-" when the address is unknown."""
    if ip is None:
        return "-"
    if ":" in ip:
        return f"{anonymize_ip(ip)}/64"
    return ip


@dataclass(frozen=True, slots=True)
class BearerCheck:
    ok: bool = False  # the request's one Authorization header is `Bearer <token>`
    retry_after: int = 0  # seconds its client is locked out for (then nothing was compared)


class TokenGate:
    """The admin token, checked for every surface that takes it, with one throttle for all.
    `client_of` gives a request's client IP as the hit path would resolve it."""

    def __init__(
        self,
        token: str,
        client_of: Callable[[Request], str | None],
        throttle: TokenThrottle | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        self.client_of = client_of
        self.throttle = throttle or TokenThrottle()
        self.clock = clock

    def client(self, request: Request) -> str:
        return client_key(self.client_of(request))

    def retry_after(self, client: str) -> int:
        """Whole seconds `client` must wait before a token of its is checked (0: none)."""
        return math.ceil(self.throttle.wait(client, self.clock()))

    def bearer(self, request: Request) -> BearerCheck:
        """The request's Authorization header checked: `Bearer <token>`, compared in constant
        time unless its client is locked out; a wrong one counts against the client. Without
        the header nothing is checked or counted."""
        given = request.headers.getlist("authorization")
        if not given:
            return BearerCheck()
        client = self.client(request)
        wait = self.retry_after(client)
        if wait:
            return BearerCheck(retry_after=wait)
        return BearerCheck(ok=self._counted(bearer_matches(given, self.token), client))

    def form_token(self, given: str, client: str) -> bool:
        """The login form's token, compared by digest in constant time; a wrong one counts."""
        ok = bearer_matches([f"Bearer {given}"], self.token) if given.strip() else False
        return self._counted(ok, client)

    def _counted(self, ok: bool, client: str) -> bool:
        if not ok and self.throttle.failed(client, self.clock()):
            # No address in the line: logs carry no client IP (operations.md, Security model).
            log.warning(
                "wrong admin tokens: client locked out",
                extra={"failures": self.throttle.limit, "seconds": self.throttle.per},
            )
        return ok


def same_origin(request: Request) -> bool:
    """False when the request's Origin (sent by browsers on POST) is another site."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.netloc.lower() == request.headers.get("host", "").lower()
