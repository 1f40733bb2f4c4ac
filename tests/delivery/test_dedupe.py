"""Dedupe rules in `sgtm serve` live in the delivery store: they outlive a restart."""

from __future__ import annotations

import textwrap

import httpx

from sgtm.config import load_text
from sgtm.container import Container
from sgtm.dedupe import MemoryDedupe
from sgtm.delivery import DeliveryUnavailable, RecorderDelivery, Submission
from sgtm.delivery.sqlite_store import SqliteStore
from sgtm.request import HitRequest
from tests.delivery.test_crash import FAST_ENV
from tests.installed import registry
from tests.servers import FakeVendor, SgtmServer

HIT = "/g/collect?v=2&tid=G-TEST01&cid=1.2&en=purchase&ep.order={order}"


def test_dedupe_survives_a_restart(tmp_path):
    with FakeVendor() as vendor:
        config = tmp_path / "shop.yaml"
        config.write_text(
            textwrap.dedent(
                f"""\
                version: 1
                clients: [{{name: ga4, type: ga4}}]
                triggers: {{purchase: {{event_name: purchase}}}}
                tags:
                  - name: conversions
                    type: http_request
                    triggers: [purchase]
                    dedupe: {{key: "{{{{event.order}}}}", ttl: 2592000}}
                    settings: {{url: "{vendor.url}/c", body: {{order: "{{{{event.order}}}}"}}}}
                """
            )
        )
        env = {**FAST_ENV, "SGTM_DATA_DIR": str(tmp_path / "data")}
        with SgtmServer(config, env) as server:
            for order in ("A-1", "A-1", "B-2"):
                assert httpx.get(server.url + HIT.format(order=order)).status_code == 200
            vendor.wait_for(2)
        with SgtmServer(config, env) as server:
            for order in ("A-1", "B-2", "C-3"):
                assert httpx.get(server.url + HIT.format(order=order)).status_code == 200
            vendor.wait_for(3)
        bodies = sorted(r.body for r in vendor.received)
        assert bodies == [b'{"order":"A-1"}', b'{"order":"B-2"}', b'{"order":"C-3"}']


# -- a refused request releases its dedupe keys ---------------------------------------------

REFUSED_CONTAINER = """\
version: 1
clients: [{name: ga4, type: ga4}]
triggers: {purchase: {event_name: purchase}}
tags:
  - name: conversions
    type: http_request
    triggers: [purchase]
    dedupe: {key: "{{event.order}}", ttl: 2592000}
    settings: {url: "https://hooks.example/c", body: {order: "{{event.order}}"}}
"""


def hit(order: str) -> HitRequest:
    query = f"v=2&tid=G-TEST01&cid=1.2&en=purchase&ep.order={order}"
    return HitRequest("GET", "/g/collect", query, host="shop.example", client_ip="203.0.113.9")


class RefusingOnce:
    """A delivery whose store refuses the first submission (disk full, say), then recovers."""

    def __init__(self) -> None:
        self.refused = 0
        self.stored: list[Submission] = []

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def submit(self, submissions: list[Submission]) -> None:
        if not self.refused:
            self.refused += 1
            raise DeliveryUnavailable("disk full")
        self.stored.extend(submissions)


async def test_a_resent_event_is_not_a_duplicate_of_one_that_was_refused():
    spec = load_text(REFUSED_CONTAINER, "shop.yaml", registry())
    delivery = RefusingOnce()
    container = Container(spec, delivery, MemoryDedupe())
    first = await container.handle(hit("A-1"))
    assert first.response.status == 503
    assert first.response.headers["retry-after"] == "5"
    again = await container.handle(hit("A-1"))  # the browser's or the client's resend
    assert again.response.status == 200
    assert [s.outbound.body for s in delivery.stored] == [b'{"order":"A-1"}']
    # Once stored, the rule holds again.
    third = await container.handle(hit("A-1"), trace=True)
    assert third.events[0].tags[0].reason == "dedupe"
    assert len(delivery.stored) == 1


async def test_a_store_that_cannot_check_dedupe_answers_503_not_500(tmp_path):
    import sqlite3

    spec = load_text(REFUSED_CONTAINER, "shop.yaml", registry())
    store = SqliteStore(tmp_path, busy_timeout=0.2)
    await store.open()
    delivery = RecorderDelivery()
    container = Container(spec, delivery, store)
    blocker = sqlite3.connect(tmp_path / "sgtm.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        refused = await container.handle(hit("B-2"))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert refused.response.status == 503
    assert delivery.submitted == []
    accepted = await container.handle(hit("B-2"))
    assert accepted.response.status == 200
    assert len(delivery.submitted) == 1
    await store.close()


async def test_forget_releases_keys_on_every_store(store):
    assert await store.seen("order-9", 60) is False
    assert await store.seen("order-9", 60) is True
    await store.forget(["order-9", "never-seen"])
    assert await store.seen("order-9", 60) is False
    await store.forget([])
