"""Tracing is off unless asked for: `handle(trace=True)` (sgtm emulate) or a preview session
(`handle(preview=...)`) keep per-tag outcomes; served requests keep none."""

from __future__ import annotations

import textwrap

from sgtm.config import load_text
from sgtm.container import Container
from sgtm.dedupe import MemoryDedupe
from sgtm.delivery.recorder import RecorderDelivery
from sgtm.request import HitRequest
from tests.installed import registry

CONFIG = """\
    version: 1
    clients: [{name: ga4, type: ga4}]
    triggers:
      purchase: {event_name: purchase}
      all: {all: []}
    tags:
      - {name: orders, type: http_request, triggers: [purchase], settings: {url: "https://o.example/"}}
      - {name: every, type: http_request, triggers: [all], consent: [ad_storage], settings: {url: "https://e.example/"}}
    """


def container() -> Container:
    spec = load_text(textwrap.dedent(CONFIG), "trace.yaml", registry(), environ={})
    return Container(spec, RecorderDelivery(), MemoryDedupe())


def hit(event: str) -> HitRequest:
    query = f"v=2&tid=G-1&cid=1.2&en={event}&gcs=G100"
    return HitRequest(method="GET", path="/g/collect", query_string=query)


async def test_served_requests_keep_no_trace_unless_a_preview_asks() -> None:
    target = container()
    assert (await target.handle(hit("page_view"))).events == []
    (traced,) = (await target.handle(hit("page_view"), preview="session")).events
    assert [(t.name, t.fired, t.reason) for t in traced.tags] == [
        ("orders", False, "trigger"),
        ("every", False, "consent:ad_storage"),
    ]


async def test_traced_outcomes_are_each_their_own_and_equal_to_untraced_ones() -> None:
    target = container()
    first = (await target.handle(hit("page_view"), trace=True)).events[0].tags
    second = (await target.handle(hit("page_view"), trace=True)).events[0].tags
    assert first == second and all(a is not b for a, b in zip(first, second, strict=True))
    await target.handle(hit("page_view"))  # untraced: the same outcomes, counted the same
    assert (
        target.metrics.value(
            "sgtm_tags_total", container=target.name, tag="every", outcome="consent"
        )
        == 3
    )
