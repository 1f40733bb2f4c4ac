"""Process-wide counters, exported in Prometheus text format on /metrics (behind the admin token).

Counters are plain dict increments: cheap enough for the request path, and the event loop is
single-threaded so no lock is needed.
"""

from __future__ import annotations

from collections import defaultdict

Labels = tuple[tuple[str, str], ...]

_counters: defaultdict[tuple[str, Labels], float] = defaultdict(float)

HELP = {
    "sgtm_requests_total": "HTTP requests answered, by container, client and status",
    "sgtm_events_total": "Events parsed by clients",
    "sgtm_dropped_total": "Input dropped by clients, by reason",
    "sgtm_tags_total": "Tag decisions per event, by tag and outcome (fired, trigger, consent, ...)",
    "sgtm_deliveries_total": "Vendor requests finished, by tag and outcome",
}


def inc(name: str, value: float = 1.0, **labels: str) -> None:
    _counters[(name, tuple(sorted(labels.items())))] += value


def value(name: str, **labels: str) -> float:
    return _counters.get((name, tuple(sorted(labels.items()))), 0.0)


def render() -> str:
    lines: list[str] = []
    by_name: defaultdict[str, list[tuple[Labels, float]]] = defaultdict(list)
    for (name, labels), count in sorted(_counters.items()):
        by_name[name].append((labels, count))
    for name, rows in by_name.items():
        if name in HELP:
            lines.append(f"# HELP {name} {HELP[name]}")
        lines.append(f"# TYPE {name} counter")
        for labels, count in rows:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{name}{{{label_text}}} {count:g}" if label_text else f"{name} {count:g}")
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def reset() -> None:
    _counters.clear()
