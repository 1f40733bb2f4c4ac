"""Counters and gauges, exported in Prometheus text format on /metrics (behind the admin token).

Counters are plain dict increments: cheap enough for the request path, and the event loop is
single-threaded so no lock is needed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

Labels = tuple[tuple[str, str], ...]

HELP = {
    "sgtm_requests_total": "HTTP requests answered, by container, client and status",
    "sgtm_events_total": "Events parsed by clients",
    "sgtm_dropped_total": "Input dropped by clients, by reason",
    "sgtm_tags_total": "Tag decisions per event, by tag and outcome (fired, trigger, consent, ...)",
    "sgtm_tag_warnings_total": "Changes tags made to send an event (a value cut, a param dropped)",
    "sgtm_deliveries_total": "Deliveries settled, by tag and outcome (done, retry, dead)",
    "sgtm_delivery_enqueued_total": "Deliveries written to the outbox, by tag",
    "sgtm_delivery_refused_total": (
        "Deliveries refused before they were stored, by tag and reason (max_lanes)"
    ),
    "sgtm_delivery_breaker_open_total": "Times a lane's circuit breaker opened",
    "sgtm_delivery_auth_refresh_total": "Credentials refreshed after the vendor refused one",
    "sgtm_delivery_queue_depth": "Deliveries waiting in the outbox, per lane (all instances)",
    "sgtm_delivery_breaker_state": "1 while a lane's circuit breaker is open, else 0",
    "sgtm_config_version_info": "The config version served (a hash of the container files)",
    "sgtm_config_reload_total": "Config reloads, by result (success, failure, unchanged)",
    "sgtm_config_last_reload_success_timestamp_seconds": "When the config was last reloaded",
    "sgtm_config_last_reload_failure_timestamp_seconds": "When a config reload last failed",
}


# A call site passes its labels in the same order every time: the key with the labels sorted is
# looked up by the labels as given instead of sorted again. Shared by every Metrics (a key is only
# a name and labels) and bounded: label values come from the config and a few fixed words, but a
# cache must never grow with input.
_keys: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[str, Labels]] = {}
_MAX_KEYS = 10_000


def _key(name: str, labels: dict[str, str]) -> tuple[str, Labels]:
    given = (name, tuple(labels.items()))
    key = _keys.get(given)
    if key is None:
        key = (name, tuple(sorted(given[1])))
        if len(_keys) < _MAX_KEYS:
            _keys[given] = key
    return key


def counter_key(name: str, **labels: str) -> tuple[str, Labels]:
    """The series `Metrics.add` counts: worked out once by a caller that counts it often."""
    return _key(name, labels)


class Metrics:
    """One process's counters and gauges. The app makes one and hands it to what counts (the
    containers, the delivery engine, the middleware); tests make their own instead of resetting
    a global."""

    def __init__(self) -> None:
        self._counters: defaultdict[tuple[str, Labels], float] = defaultdict(float)
        self._gauges: dict[tuple[str, Labels], float] = {}

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        self._counters[_key(name, labels)] += value

    def add(self, key: tuple[str, Labels], value: float = 1.0) -> None:
        """`inc` of a series from `counter_key`."""
        self._counters[key] += value

    def gauge(self, name: str, value: float, **labels: str) -> None:
        self._gauges[_key(name, labels)] = value

    def clear(self, name: str) -> None:
        """Forget every series of a gauge (an info metric whose label changed)."""
        for key in [key for key in self._gauges if key[0] == name]:
            del self._gauges[key]

    def forget(self, name: str, **labels: str) -> None:
        """Remove one gauge series (of a lane that is gone): /metrics must not keep a series
        for every value a label ever had. Not through the key cache, which is for series that
        are counted again."""
        self._gauges.pop((name, tuple(sorted(labels.items()))), None)

    def value(self, name: str, **labels: str) -> float:
        key = _key(name, labels)
        return self._counters.get(key, self._gauges.get(key, 0.0))

    def samples(self, names: Iterable[str]) -> list[tuple[str, dict[str, str], float]]:
        """The current value of every series of the named counters and gauges, with its
        labels (what the alerts webhook's rules read)."""
        wanted = set(names)
        return [
            (name, dict(labels), count)
            for (name, labels), count in [*self._counters.items(), *self._gauges.items()]
            if name in wanted
        ]

    def render(self) -> str:
        """Prometheus text format."""
        lines: list[str] = []
        by_name: defaultdict[str, list[tuple[Labels, float]]] = defaultdict(list)
        for (name, labels), count in sorted([*self._counters.items(), *self._gauges.items()]):
            by_name[name].append((labels, count))
        gauges = {name for name, _ in self._gauges}
        for name, rows in by_name.items():
            if name in HELP:
                lines.append(f"# HELP {name} {HELP[name]}")
            lines.append(f"# TYPE {name} {'gauge' if name in gauges else 'counter'}")
            for labels, count in rows:
                label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                lines.append(
                    f"{name}{{{label_text}}} {count:g}" if label_text else f"{name} {count:g}"
                )
        return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
