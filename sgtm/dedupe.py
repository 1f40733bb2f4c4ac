"""Dedupe: `seen(key, ttl)` answers whether a key was already seen within its time to live.

The in-memory store serves `emulate` (dedupe lasts one run). `sgtm serve` keeps dedupe keys in the
delivery store (`SqliteStore.seen`, `RedisStore.seen`, both atomic), so a rule outlives a restart
and, on Redis, is shared by every instance.
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

    async def forget(self, keys: list[str]) -> None:
        for key in keys:
            self._cache.pop(key, None)
