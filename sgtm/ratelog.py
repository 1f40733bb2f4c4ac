"""Log lines that would repeat with every hit, written at most once per interval per key.

A tag that refuses every event for one reason would otherwise write a line per event: at
hundreds of hits per second the one line worth reading drowns. The first occurrence of a key is
logged at once; later ones within the interval are only counted, and the next line written for
that key says how many were held back (`suppressed`). Keys are bounded: past `max_keys` the
least recently logged are forgotten (a forgotten key logs again at its next occurrence).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from typing import Any


class RateLimitedLog:
    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float = 60.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.max_keys = max_keys
        self.clock = clock
        # key -> [when last written, occurrences held back since]; insertion order is the order
        # of the last write, so the first key is the one to forget.
        self._keys: dict[Hashable, list[float]] = {}

    def warning(self, key: Hashable, message: str, extra: dict[str, Any]) -> bool:
        """Write the line unless `key` was written within the interval; whether it was."""
        now = self.clock()
        entry = self._keys.get(key)
        if entry is not None and now - entry[0] < self.interval:
            entry[1] += 1
            return False
        suppressed = int(entry[1]) if entry is not None else 0
        if entry is not None:
            del self._keys[key]
        elif len(self._keys) >= self.max_keys:
            del self._keys[next(iter(self._keys))]
        self._keys[key] = [now, 0]
        self.logger.warning(message, extra={**extra, "suppressed": suppressed})
        return True
