"""Token buckets: a vendor's request rate for a delivery lane, and a sender's rate for a client.

`TokenBucket` is one rate (`RateLimit(requests, per)`): full at the start, one token back every
`per / requests` seconds. The delivery engine keeps one per lane. `SourceLimiter` keeps one per
sender for clients that declare `Client.rate_limit` (a webhook limited per API key or per peer):
the container asks it before parsing, and answers 429 with `Retry-After` when the sender's bucket
is empty. Buckets live in the process (several instances each allow the rate), and at most
`max_sources` of them: the least recently seen sender is forgotten first, so a flood of source
addresses cannot grow memory without bound.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from cachetools import LRUCache

from sgtm.plugin import RateLimit

_RATE_RE = re.compile(r"^\s*([0-9]{1,9})\s*/\s*(second|minute|hour|day|s|m|h|d)\s*$")
_PER = {"second": 1.0, "s": 1.0, "minute": 60.0, "m": 60.0, "hour": 3600.0, "h": 3600.0}
_PER |= {"day": 86400.0, "d": 86400.0}


def parse_rate(text: str) -> RateLimit:
    """`RateLimit` from "100/minute" (also second, hour, day, or s, m, h, d); ValueError else."""
    match = _RATE_RE.match(text)
    if match is None or int(match.group(1)) < 1:
        raise ValueError(f"expected a rate like 100/minute, got {text!r}")
    return RateLimit(requests=int(match.group(1)), per=_PER[match.group(2)])


class TokenBucket:
    def __init__(self, rate: RateLimit, clock: Callable[[], float]) -> None:
        self.capacity = float(max(1, rate.requests))
        self.interval = rate.per / max(1, rate.requests)  # seconds per token
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()

    def available(self) -> float:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) / self.interval)
        self.updated = now
        return self.tokens

    def take(self, count: int = 1) -> None:
        self.available()
        self.tokens -= count  # may go below zero: a byte-split batch is paid for afterwards

    def wait_time(self) -> float:
        tokens = self.available()
        return 0.0 if tokens >= 1 else (1 - tokens) * self.interval


class SourceLimiter:
    """One token bucket per source key; `admit` takes a token or says how long to wait."""

    def __init__(self, clock: Callable[[], float], max_sources: int = 100_000) -> None:
        self.clock = clock
        self._buckets: LRUCache[tuple[str, RateLimit], TokenBucket] = LRUCache(max_sources)

    def admit(self, source: str, rate: RateLimit) -> float:
        """0.0 when a request from `source` may pass (a token is taken), else the seconds until
        the next token."""
        key = (source, rate)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate, self.clock)
        wait = bucket.wait_time()
        if wait == 0.0:
            bucket.take()
        return wait
