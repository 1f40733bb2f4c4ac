"""The incoming HTTP request as clients see it: the same object in `serve` and in `emulate`.

Clients are pure functions of this object, which is why it is a plain value: the server builds it
from the ASGI scope after the body is read (within the size limit), `sgtm emulate` builds it from
a recorded request line, both through sgtm/ingress.py. `client_ip` is whatever the container's
privacy policy decided (already anonymized when the container asks for it); clients never see
the socket. `trusted_sender` says the request came from an address in `privacy.trusted_proxies`:
only then may a hit name its own client IP (the core enforces it after `parse`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl


@dataclass(slots=False)
class HitRequest:
    method: str
    path: str
    query_string: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    client_ip: str | None = None
    host: str = ""
    scheme: str = "https"
    trusted_sender: bool = False

    @cached_property
    def query(self) -> dict[str, str]:
        """First value of each query parameter; malformed escapes are kept as text, never raised."""
        out: dict[str, str] = {}
        for key, value in parse_qsl(self.query_string, keep_blank_values=True):
            out.setdefault(key, value)
        return out

    @cached_property
    def cookies(self) -> dict[str, str]:
        return parse_cookie_header(self.headers.get("cookie", ""))

    @property
    def origin(self) -> str | None:
        return self.headers.get("origin")

    @property
    def url(self) -> str:
        qs = f"?{self.query_string}" if self.query_string else ""
        return f"{self.scheme}://{self.host}{self.path}{qs}"


def parse_cookie_header(header: str) -> dict[str, str]:
    """Parse a Cookie header leniently: one bad pair must not lose the others."""
    out: dict[str, str] = {}
    if not header:
        return out
    for chunk in header.split(";"):
        name, sep, value = chunk.strip().partition("=")
        name = name.strip()
        if not sep or not name:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                parsed: SimpleCookie = SimpleCookie()
                parsed.load(f"x={value}")
                value = parsed["x"].value
            except (CookieError, KeyError):  # SimpleCookie skips what it cannot parse
                value = value[1:-1]
        out.setdefault(name, value)
    return out
