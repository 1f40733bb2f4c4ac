"""The signed impression / view / click URL an ad event carries: checked before anything is sent.

This is the one tag that takes a URL from input (a browser posts it to the beacon client), so
this module is an SSRF guard. A URL is used only when ALL of these hold, else the event is
`invalid` and nothing is sent:
- a string of at most MAX_URL_CHARS printable ASCII characters: no spaces, control characters
  or non-ASCII (an internationalized host must be written in punycode, and then allowed as
  such), and no backslash (which some URL parsers read as a slash);
- `https://`, with a host and no user info (`https://allowed@evil.example` is refused, not read
  as a host), no fragment;
- a host that is not an IP address and is exactly one of `allowed_event_hosts` (no suffix or
  wildcard matching; a trailing dot or percent-escape is another name), on port 443 unless
  `host:port` is allowed;
- when the path names a kind (`/v1/beacon/click/...`), the kind of the event.
The URL is then sent as it came, never rebuilt (its signature covers it), unless the container
routes ad events through `event_endpoint`, which gets the URL's path and query.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from sgtm.plugin import InvalidEvent

MAX_URL_CHARS = 4096
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+")
_PATH_KIND = re.compile(r"/beacon/(impression|view|click|conversion)(?:/|$)")
_AD_ID = re.compile(r"/(?:impression|view|click)/([^/]+)")


def checked(url: object, kind: str, allowed_hosts: list[str]) -> str:
    """`url` if it may be called for an ad event of `kind`; else InvalidEvent saying why."""
    if not isinstance(url, str) or not url:
        raise InvalidEvent(f"no {kind} URL (ad_event_url or {kind}_url)")
    if len(url) > MAX_URL_CHARS:
        raise InvalidEvent(f"event URL is {len(url)} characters; at most {MAX_URL_CHARS}")
    if not _PRINTABLE_ASCII.fullmatch(url):
        raise InvalidEvent("event URL has spaces, control or non-ASCII characters")
    if "\\" in url:
        raise InvalidEvent("event URL has a backslash")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidEvent("event URL cannot be parsed (bad host or port)") from None
    if parts.scheme != "https":
        raise InvalidEvent("event URL must be https://")
    if "@" in parts.netloc:
        raise InvalidEvent("event URL has user info (an @ before the host)")
    host = parts.hostname
    if not host:
        raise InvalidEvent("event URL has no host")
    if _is_ip(host):
        raise InvalidEvent("event URL host is an IP address")
    if parts.fragment or url.endswith("#"):
        raise InvalidEvent("event URL has a fragment")
    named = host if port in (None, 443) else f"{host}:{port}"
    if named not in allowed_hosts:
        raise InvalidEvent(f"event URL host {named[:100]!r} is not in allowed_event_hosts")
    found = _PATH_KIND.search(parts.path)
    if found and found[1] != kind:
        raise InvalidEvent(f"event URL is a {found[1]} URL, not a {kind} URL")
    return url


def routed(url: str, event_endpoint: str | None) -> str:
    """Where a checked URL is sent: itself, or its path and query on `event_endpoint`."""
    if event_endpoint is None:
        return url
    parts = urlsplit(url)
    return event_endpoint.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


def ad_key(url: str) -> str:
    """What names the ad in a URL: its id (`.../click/{AD_ID}`), else its whole path."""
    path = urlsplit(url).path
    found = _AD_ID.search(path)
    return found[1] if found else path


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
