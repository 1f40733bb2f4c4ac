"""Crashes of the real `sgtm serve`: what was acknowledged is delivered.

The server that is killed is a process of its own; the one that takes over runs in-process.

SIGKILL while the vendor is down and hits stream in; restart; the vendor comes back: every
acknowledged event arrives, and an event that arrives twice carries the same idempotency key.
With Redis, two servers share one outbox and one of them is killed: the other finishes its work.
"""

from __future__ import annotations

import json
import signal
import textwrap
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from tests.delivery.conftest import drop_redis_prefix, redis_prefix
from tests.servers import FakeVendor, SgtmProcess, SgtmServer, free_port, wait_until

HIT = "/g/collect?v=2&tid=G-TEST01&cid=111.222&en=purchase&epn.n={n}"

# Small waits so recovery is quick in tests; production defaults are in EngineOptions.
FAST_ENV = {
    "SGTM_DELIVERY_POLL_INTERVAL": "100ms",
    "SGTM_DELIVERY_BACKOFF_BASE": "100ms",
    "SGTM_DELIVERY_BACKOFF_CAP": "500ms",
    "SGTM_DELIVERY_BREAKER_OPEN_MIN": "100ms",
    "SGTM_DELIVERY_BREAKER_OPEN_MAX": "300ms",
    "SGTM_DELIVERY_LEASE_MARGIN": "1s",
    "SGTM_DELIVERY_DISCOVER_INTERVAL": "200ms",
}


def container(tmp_path: Path, vendor_port: int, delivery: str = "") -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            clients:
              - {{name: ga4, type: ga4}}
            triggers:
              purchase: {{event_name: purchase}}
            tags:
              - name: webhook
                type: http_request
                triggers: [purchase]
                delivery: {{timeout: 1s}}
                settings:
                  url: http://127.0.0.1:{vendor_port}/hook
                  body: {{n: "{{{{event.n}}}}"}}
            """
        )
        + delivery
    )
    return path


class Stream:
    """Sends hits one after another from a thread; remembers which were acknowledged (2xx)."""

    def __init__(self, urls: list[str], start: int = 0) -> None:
        self.urls = urls
        self.next = start
        self.acked: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self.stop.is_set():
                n = self.next
                self.next += 1
                url = self.urls[n % len(self.urls)]
                try:
                    response = client.get(url + HIT.format(n=n))
                except httpx.HTTPError:
                    continue  # that server is gone: not acknowledged
                if response.status_code == 200:
                    self.acked.append(n)

    def wait_acked(self, count: int, timeout: float = 30) -> None:
        wait_until(lambda: len(self.acked) >= count, f"{count} hits acknowledged", timeout)

    def finish(self) -> list[int]:
        self.stop.set()
        self.thread.join(timeout=10)
        return list(self.acked)


def delivered(vendor: FakeVendor) -> dict[int, set[str]]:
    """n -> the idempotency keys it arrived with."""
    keys: dict[int, set[str]] = defaultdict(set)
    for got in vendor.received:
        keys[int(json.loads(got.body)["n"])].add(got.headers["idempotency-key"])
    return keys


def wait_delivered(vendor: FakeVendor, wanted: list[int], timeout: float = 60) -> None:
    what = f"{len(wanted)} acknowledged events delivered"
    wait_until(lambda: not set(wanted) - set(delivered(vendor)), what, timeout)


@pytest.mark.e2e
def test_sigkill_with_vendor_down_loses_nothing(tmp_path):
    port = free_port()  # nothing listens there yet: the vendor is down
    config = container(tmp_path, port)
    env = {**FAST_ENV, "SGTM_DATA_DIR": str(tmp_path / "data")}
    first = SgtmProcess(config, env)
    stream = Stream([first.url])
    stream.wait_acked(300)
    first.stop(signal.SIGKILL)
    acked = stream.finish()
    assert len(acked) >= 300

    with SgtmServer(config, env) as second:
        more = Stream([second.url], start=stream.next)
        more.wait_acked(50)
        acked += more.finish()
        with FakeVendor(port=port) as vendor:
            wait_delivered(vendor, acked)
            keys = delivered(vendor)
        assert "Traceback" not in second.logs()
    assert all(len(k) == 1 for k in keys.values())  # duplicates only with the same key
    assert set(keys) <= set(range(more.next))


@pytest.mark.e2e
def test_redis_two_servers_one_killed_the_other_finishes(tmp_path, redis_url):
    prefix = redis_prefix()
    port = free_port()
    delivery = f"delivery: {{store: redis, url: '{redis_url}', prefix: {prefix}}}\n"
    config = container(tmp_path, port, delivery)
    try:
        with SgtmServer(config, FAST_ENV) as survivor:
            doomed = SgtmProcess(config, FAST_ENV)
            stream = Stream([doomed.url, survivor.url])
            stream.wait_acked(300)
            # The doomed server holds leases on jobs it is sending when it dies.
            with FakeVendor(port=port, delay=0.2) as vendor:
                time.sleep(0.3)
                doomed.stop(signal.SIGKILL)
                acked = stream.finish()
                wait_delivered(vendor, acked)
                keys = delivered(vendor)
            assert all(len(k) == 1 for k in keys.values())
            assert "Traceback" not in survivor.logs()
    finally:
        drop_redis_prefix(prefix)


def test_one_vendor_down_holds_back_neither_ingest_nor_another_vendor(tmp_path):
    down_port = free_port()
    with FakeVendor() as up:
        config = tmp_path / "shop.yaml"
        config.write_text(
            textwrap.dedent(
                f"""\
                version: 1
                clients: [{{name: ga4, type: ga4}}]
                triggers: {{purchase: {{event_name: purchase}}}}
                tags:
                  - name: down
                    type: http_request
                    triggers: [purchase]
                    settings:
                      url: "http://127.0.0.1:{down_port}/d"
                      body: {{n: "{{{{event.n}}}}"}}
                  - name: up
                    type: http_request
                    triggers: [purchase]
                    settings: {{url: "{up.url}/u", body: {{n: "{{{{event.n}}}}"}}}}
                """
            )
        )
        env = {**FAST_ENV, "SGTM_ADMIN_TOKEN": "t0ken-for-metrics"}
        with SgtmServer(config, env) as server, httpx.Client() as client:
            for n in range(300):
                assert client.get(server.url + HIT.format(n=n)).status_code == 200
            up.wait_for(300)
            assert sorted(delivered(up)) == list(range(300))
            metrics = client.get(
                server.url + "/metrics", headers={"authorization": "Bearer t0ken-for-metrics"}
            ).text
            assert 'sgtm_delivery_breaker_open_total{container="shop",tag="down"}' in metrics
            # The vendor comes back: its backlog drains.
            with FakeVendor(port=down_port) as back:
                wait_delivered(back, list(range(300)))
