"""HTTP helpers shared by vendor tags: base URLs in settings, JSON answers that may be empty,
truncated or not JSON at all, and the request a batching tag makes of several outbounds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import msgspec

from sgtm.plugin import Outbound


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


def batch_request(outbounds: Sequence[Outbound], body: bytes) -> Outbound:
    """The one request a batching tag's `merge` sends for several outbounds of a lane: the first
    one's method, URL, headers, destination, timeout and batch key with `body`. Idempotency key
    and batch item belong to one job, so only a batch of one keeps them."""
    first = outbounds[0]
    alone = len(outbounds) == 1
    return msgspec.structs.replace(
        first,
        headers=dict(first.headers),
        body=body,
        idempotency_key=first.idempotency_key if alone else None,
        batch_item=first.batch_item if alone else None,
    )
