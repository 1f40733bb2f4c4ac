"""How many lanes (destinations) one tag may have at once: `delivery.max_lanes_per_tag`.

A lane is `container/tag/destination`, and a tag may take its destination from the event (the
`ga4` tag keys its lane by the hit's measurement id). Each lane costs a task, a row in the
store's `lanes` table and gauge series on /metrics, so a hit that could name a new destination
at will could grow all three without end. The engine asks the budget before it stores a job:
a destination the tag already has is always admitted; a new one only while the tag has fewer
than its cap. A refused job is never stored, so nothing acknowledged is lost (the engine counts
and logs the refusal).

A destination holds its place while the engine runs a lane for it or was admitted within
`idle` seconds (the engine's lane retirement time); past that it is forgotten the next time
the tag is full. Places are per process: a fleet of N processes has at most N times the cap.
"""

from __future__ import annotations

from collections.abc import Callable


class LaneBudget:
    def __init__(self, idle: float) -> None:
        self.idle = idle
        # Per (container, tag): lane -> when last admitted, least recently admitted first.
        self._tags: dict[tuple[str, str], dict[str, float]] = {}

    def admit(
        self, tag: tuple[str, str], lane: str, cap: int, now: float, live: Callable[[str], bool]
    ) -> bool:
        """Whether `lane` may have a job stored; `live(lane)`: the engine runs that lane."""
        lanes = self._tags.setdefault(tag, {})
        if lane in lanes:
            del lanes[lane]  # to the end: the order is least recently admitted first
            lanes[lane] = now
            return True
        if len(lanes) >= cap:
            self._forget_idle(lanes, now, live)
            if len(lanes) >= cap:
                return False
        lanes[lane] = now
        return True

    def note(self, tag: tuple[str, str], lane: str, now: float) -> None:
        """A lane the engine runs without having admitted it (jobs another process stored):
        it holds a place, so the tag's new destinations here are counted against it."""
        lanes = self._tags.setdefault(tag, {})
        lanes.pop(lane, None)
        lanes[lane] = now

    def count(self, tag: tuple[str, str]) -> int:
        return len(self._tags.get(tag, ()))

    def _forget_idle(
        self, lanes: dict[str, float], now: float, live: Callable[[str], bool]
    ) -> None:
        # From the least recently admitted: each lane looked at is either forgotten or moved to
        # the end as seen now, so one call looks at each lane at most once.
        for _ in range(len(lanes)):
            lane, at = next(iter(lanes.items()))
            if now - at < self.idle:
                return
            del lanes[lane]
            if live(lane):
                lanes[lane] = now
