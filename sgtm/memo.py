"""Bounded memos of answers for values that repeat between hits.

Hits repeat their inputs (a site's page URLs, hostnames, the same few peers and proxies), so the
hit path keeps some answers by input. Each memo is bounded whatever a client sends: only short
inputs are kept (the caller checks the length: what is short depends on the input), at most
`entries` of them, and the lot is dropped when full. Dropping all at once is cheaper than an LRU
on every hit and costs only a refill; a client that sends a new value on every hit gains nothing
and grows nothing.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(memo: dict[K, V], key: K, value: V, entries: int) -> None:
    """Keep `value` for `key` in `memo`, emptied first when it already holds `entries`."""
    if len(memo) >= entries:
        memo.clear()
    memo[key] = value
