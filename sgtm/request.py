"""The incoming HTTP request as clients see it: the same object in `serve` and in `emulate`.

Clients are pure functions of this object, which is why it is a plain value: the server builds it
from the ASGI scope after the body is read (within the size limit), `sgtm emulate` builds it from
a recorded request line, both through sgtm/ingress.py. `client_ip` is whatever the container's
privacy policy decided (already anonymized when the container asks for it); clients never see
the socket. `trusted_sender` says the request came from an address in `privacy.trusted_proxies`:
only then may a hit name its own client IP (the core enforces it after `parse`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import parse_qsl

# A cookie's quoted-string as http.cookies reads it. Its two alternatives never start with the
# same character, so a failed match backtracks linearly.
_QUOTED_COOKIE = re.compile(r'"((?:[^\\"]|\\.)*)"', re.ASCII)
_COOKIE_ESCAPE = re.compile(r"\\(?:([0-3][0-7][0-7])|(.))")  # `\ooo` octal, or `\c` for c
_COOKIE_OCTAL = re.compile(r"\\[0-3][0-7][0-7]")


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
    # The server's id of this request (x-request-id), for delivery logs; not part of what the
    # request is (serve and emulate build equal requests).
    request_id: str = field(default="", compare=False)

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
            value = _unquote_cookie(value)
        out.setdefault(name, value)
    return out


def _unquote_cookie(value: str) -> str:
    """A value that is one quoted string, unescaped as `http.cookies` does; any other value just
    loses its outer quotes. Written out because the stdlib's unquoting is quadratic in
    backslashes before Python 3.11.10 (CVE-2024-7592): one 8 KiB cookie held the event loop for
    half a second."""
    quoted = _QUOTED_COOKIE.fullmatch(value)
    if quoted is None:
        return value[1:-1]
    text = quoted[1]
    if "\\" not in text:
        return text
    if _COOKIE_OCTAL.search(text) is None:
        # Only `\c` escapes. Escaped backslashes pair from the left, as str.replace pairs them;
        # every backslash left after that escapes the next char and goes. Three passes in C: a
        # cookie of 32 K backslashes costs no Python step per escape.
        if "\x00" not in text:
            return text.replace("\\\\", "\x00").replace("\\", "").replace("\x00", "\\")
        return "\\".join(piece.replace("\\", "") for piece in text.split("\\\\"))
    return _COOKIE_ESCAPE.sub(_unescape_cookie, text)


def _unescape_cookie(escape: re.Match[str]) -> str:
    octal, char = escape.groups()
    return chr(int(octal, 8)) if octal else char
