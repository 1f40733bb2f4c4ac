"""Dedupe: `seen(key, ttl)` answers whether a key was already seen within its time to live.

The in-memory store serves `emulate` (dedupe lasts one run) and single-process serving; the durable
stores that must outlive a restart arrive with the delivery engine behind the same method.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cachetools import TLRUCache


class MemoryDedupe:
    def __init__(
        self, maxsize: int = 1_000_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        # Each entry's value is its own expiry time, so keys can have different TTLs.
        self._cache: TLRUCache[str, float] = TLRUCache(
            maxsize=maxsize, ttu=lambda _key, expires, _now: expires, timer=clock
        )
        self._clock = clock

    async def seen(self, key: str, ttl: float) -> bool:
        if key in self._cache:
            return True
        self._cache[key] = self._clock() + ttl
        return False
