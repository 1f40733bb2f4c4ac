"""Ingress: what arrived (on a socket, or on a recorded request line) -> the container that serves
it and the `HitRequest` its clients see.

`sgtm serve` (sgtm/app.py) and `sgtm emulate` both route with `HostRouter` and build the request
with `hit_request`, so a recorded request is routed and seen exactly as the server would see it:
the same Host rules, header merging, trusted-proxy handling (X-Forwarded-For and -Proto) and
anonymization. `recorded_host` and `recorded_request` read a recorded request (a URL or a path,
headers, a body, the peer's address), for `sgtm emulate` and the `sgtm.testing` harness.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from sgtm.privacy import PrivacyPolicy
from sgtm.request import HitRequest

if TYPE_CHECKING:
    from sgtm.container import Container

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._")
_IPV6_CHARS = frozenset("0123456789abcdef:.")
_MAX_HOST = 255


class BadHost(ValueError):
    """A Host header that names no host, or two Host headers: the request is refused (400)."""


# Requests name a few hosts again and again: cached, bounded (refusals raise and are not cached).
@functools.lru_cache(maxsize=1024)
def host_name(value: str) -> str:
    """A `Host` value as routing compares it: lower case, without port or the trailing dot of a
    fully qualified name (`Shop.Example.:443` -> `shop.example`); IPv6 literals keep their
    brackets (`[::1]`). BadHost when the value is not a host."""
    text = value.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        name, port = text[: end + 1], text[end + 1 :]
        if end == -1 or not set(name[1:-1]) <= _IPV6_CHARS or ":" not in name:
            raise BadHost(f"not a host: {value[:100]!r}")
    else:
        name, colon, rest = text.partition(":")
        port = colon + rest
        name = name.removesuffix(".")
    digits = port[1:]
    # An empty port ("shop.example:") is allowed by RFC 3986; anything else must be digits.
    if port and (port[0] != ":" or (digits and not (digits.isascii() and digits.isdigit()))):
        raise BadHost(f"not a host: {value[:100]!r}")
    if not name or len(name) > _MAX_HOST or not (name[0] == "[" or set(name) <= _NAME_CHARS):
        raise BadHost(f"not a host: {value[:100]!r}")
    return name


def request_host(headers: Iterable[tuple[str, str]]) -> str | None:
    """The host named by the request's Host header (see `host_name`); None without one.

    Two Host headers are refused rather than one picked: a proxy in front may have picked the
    other, and then sgtm would serve a site the proxy did not route (RFC 9112 asks for a 400).
    """
    found: str | None = None
    for name, value in headers:
        if name.lower() == "host":
            if found is not None:
                raise BadHost("more than one Host header")
            found = value
    return host_name(found) if found is not None and found.strip() else None


class HostRouter:
    """Host name -> Container; the container without `hosts` serves every other host."""

    def __init__(self, containers: Sequence[Container]) -> None:
        self.by_host: dict[str, Container] = {}
        self.default: Container | None = None
        for container in containers:
            if not container.spec.hosts:
                self.default = container
            for host in container.spec.hosts:
                self.by_host[host] = container

    def route(self, host: str | None) -> Container | None:
        if host is None:
            return self.default
        return self.by_host.get(host, self.default)


def merge_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header pairs -> one value per lower-case name: repeated headers joined with ", " (RFC
    9110), Cookie headers with "; " (the separator of the Cookie header itself)."""
    headers: dict[str, str] = {}
    for raw_name, value in pairs:
        name = raw_name.lower()
        headers[name] = _joined(name, headers[name], value) if name in headers else value
    return headers


def asgi_headers(raw: Iterable[tuple[bytes, bytes]]) -> tuple[dict[str, str], int]:
    """An ASGI scope's header pairs decoded (latin-1) and merged as `merge_headers` does, in one
    pass, with the number of Host headers they held."""
    headers: dict[str, str] = {}
    hosts = 0
    for raw_name, raw_value in raw:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name in headers:
            headers[name] = _joined(name, headers[name], value)
        else:
            headers[name] = value
        if name == "host":
            hosts += 1
    return headers, hosts


def _joined(name: str, first: str, then: str) -> str:
    return first + ("; " if name == "cookie" else ", ") + then


def hit_request(
    privacy: PrivacyPolicy,
    *,
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]] | dict[str, str],
    body: bytes,
    peer: str | None,
    scheme: str,
    host: str,
) -> HitRequest:
    """The request as clients see it.

    `target` is the request line's path and query as sent (percent-encoded); `peer` the socket's
    address; `scheme` the socket's. `headers` are the request's pairs, or a dict they were
    already merged into (`merge_headers`, `asgi_headers`), which the request then keeps. The
    client IP and, from a trusted proxy, the scheme come from the container's privacy policy;
    nothing else a request says about itself is believed.
    """
    merged = headers if isinstance(headers, dict) else merge_headers(headers)
    raw_path, _, query = target.partition("?")
    client_ip, trusted_sender = privacy.sender(peer, merged.get("x-forwarded-for"))
    if privacy.is_trusted(peer):
        forwarded = merged.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if forwarded in ("http", "https"):
            scheme = forwarded
    return HitRequest(
        method=method.upper(),
        path=unquote(raw_path) or "/",
        query_string=query,
        headers=merged,
        body=body,
        client_ip=client_ip,
        host=host,
        scheme=scheme,
        trusted_sender=trusted_sender,
    )


def recorded_host(url: str, headers: Mapping[str, str], host: str | None = None) -> str | None:
    """The host a recorded request names (`host` if given, else its URL's, else its Host
    header), as routing compares it; None when it names none. BadHost when it is not a host."""
    given = host or urlsplit(url).netloc.rpartition("@")[2] or _header(headers, "host")
    return host_name(given) if given else None


def recorded_request(
    privacy: PrivacyPolicy,
    *,
    url: str,
    method: str,
    headers: Mapping[str, str],
    body: bytes,
    peer: str | None,
    host: str,
) -> HitRequest:
    """`hit_request` for a recorded request: `url` is a path with its query, or a full URL whose
    scheme is the request's (https when it has none); a Host header naming `host` is added when
    the recorded headers have none."""
    split = urlsplit(url)
    merged = {name.lower(): value for name, value in headers.items()}
    if len(merged) < len(headers):  # names differing only in case: joined as a server joins them
        merged = merge_headers(headers.items())
    merged.setdefault("host", host)
    path = split.path or "/"
    return hit_request(
        privacy,
        method=method,
        target=f"{path}?{split.query}" if split.query else path,
        headers=merged,
        body=body,
        peer=peer,
        scheme=split.scheme or "https",
        host=host,
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
