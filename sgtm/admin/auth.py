"""Who may use the admin surface: the bearer token for API clients, a login cookie for the UI.

The UI's login form takes the token once; the cookie it gets holds no token, only a signed
session (`issued.nonce.mac`, HMAC-SHA256 under a key derived from the token), so any worker of
any process with the same token accepts it and changing the token ends every session. The
cookie is HttpOnly and SameSite=Strict, scoped to /_sgtm. A request authenticated by the cookie
that changes state must also carry the session's CSRF token (derived from the same key, put in
the page by the server) and, when the browser sends one, an Origin of this very site.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request

from sgtm.app import bearer_matches

COOKIE = "sgtm_admin"
SESSION_LIFE = 12 * 3600.0
CSRF_HEADER = "x-sgtm-csrf"


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

    def token_matches(self, given: str) -> bool:
        """The login form's token, compared by digest in constant time."""
        return bearer_matches([f"Bearer {given}"], self.token) if given.strip() else False

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

    def bearer(self, request: Request) -> bool:
        return bearer_matches(request.headers.getlist("authorization"), self.token)

    def may_change(self, request: Request, session: Session, given_csrf: str | None) -> bool:
        """A state-changing request authenticated by the cookie: the session's CSRF token and,
        when the browser says where it comes from, this site's own origin."""
        if not given_csrf or not hmac.compare_digest(given_csrf, session.csrf):
            return False
        return same_origin(request)


class LoginThrottle:
    """Wrong tokens per client address: past `limit` within `per` seconds, the form refuses
    that address until the oldest failure is `per` old (guessing costs a minute per 10)."""

    def __init__(self, limit: int = 10, per: float = 60.0, max_peers: int = 10_000) -> None:
        self.limit = limit
        self.per = per
        self.max_peers = max_peers
        self._failures: dict[str, list[float]] = {}

    def blocked(self, peer: str, now: float) -> bool:
        recent = [t for t in self._failures.get(peer, []) if now - t < self.per]
        if recent:
            self._failures[peer] = recent
        else:
            self._failures.pop(peer, None)
        return len(recent) >= self.limit

    def failed(self, peer: str, now: float) -> None:
        if len(self._failures) >= self.max_peers and peer not in self._failures:
            self._failures.clear()
        self._failures.setdefault(peer, []).append(now)


def same_origin(request: Request) -> bool:
    """False when the request's Origin (sent by browsers on POST) is another site."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.netloc.lower() == request.headers.get("host", "").lower()
