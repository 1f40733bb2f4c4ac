"""HTTP helpers shared by vendor tags: base URLs in settings, and JSON answers that may be
empty, truncated or not JSON at all."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec


def http_url(name: str, value: str) -> str:
    """A settings URL checked to be http(s) with a host, without its trailing slash; raises
    ValueError naming the setting."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name}: expected an http(s) URL, got {value!r}")
    return value.rstrip("/")


def json_or_none(body: bytes) -> Any:
    """The decoded JSON body, or None when it is empty or not JSON (an HTML error page, a body
    the transport cut at its size limit)."""
    try:
        return msgspec.json.decode(body) if body else None
    except msgspec.DecodeError:
        return None
