"""The delivery engine against real fake vendors on loopback, on both stores.

Fault injection: 5xx bursts, 429 with Retry-After, timeouts, connection refused, slow vendors,
malformed bodies, partial batch failures, max age, secrets kept out of the store.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from sgtm import placeholders
from sgtm.delivery.base import DeliveryUnavailable, lane_key
from sgtm.delivery.engine import DeliveryEngine, TokenBucket, retry_after
from sgtm.delivery.policy import RateLimitConfig, TagDeliveryConfig
from sgtm.delivery.store import NewJob, Payload, encode_payload
from sgtm.plugin import RateLimit
from tests.delivery.helpers import (
    FAST,
    NONCE,
    BatchTag,
    PlainTag,
    engine,
    route,
    submission,
)
from tests.servers import FakeVendor, Reply, eventually, free_port


async def wait_received(vendor: FakeVendor, count: int, limit: float = 15.0):
    return await asyncio.to_thread(vendor.wait_for, count, limit)


def keys_of(received) -> list[str]:
    return [r.headers["idempotency-key"] for r in received]


async def counted(eng: DeliveryEngine, outcome: str, count: int) -> None:
    """Wait until the engine has counted `count` deliveries of the test lane with `outcome`."""

    def reached() -> bool:
        value = eng.metrics.value(
            "sgtm_deliveries_total", container="shop", tag="hook", outcome=outcome
        )
        return value == count

    await eventually(reached)


async def test_delivers_once_and_settles(stores):
    with FakeVendor() as vendor:
        r = route(PlainTag())
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            await eng.submit([submission(r, vendor.url + "/e", i) for i in range(5)])
            got = await wait_received(vendor, 5)
            assert sorted(keys_of(got)) == [f"event-{i}" for i in range(5)]
            assert all(json.loads(g.body)["n"] >= 0 for g in got)
            await counted(eng, "done", 5)
        finally:
            await eng.close()
        assert len(vendor.received) == 5


async def test_5xx_burst_is_retried_with_the_same_key(stores):
    with FakeVendor(responses=[500, 502, 503]) as vendor:
        r = route(PlainTag())
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            await eng.submit([submission(r, vendor.url + "/e", 7)])
            got = await wait_received(vendor, 4)
            assert keys_of(got) == ["event-7"] * 4
            assert [g.body for g in got] == [got[0].body] * 4
            await counted(eng, "done", 1)
            assert (
                eng.metrics.value(
                    "sgtm_deliveries_total", container="shop", tag="hook", outcome="retry"
                )
                == 3
            )
        finally:
            await eng.close()


async def test_429_retry_after_is_honoured(stores):
    store = await stores()
    with FakeVendor(responses=[Reply(429, {"Retry-After": "30"})]) as vendor:
        r = route(PlainTag())
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            sent = time.time()
            await eng.submit([submission(r, vendor.url + "/e", 1)])
            await wait_received(vendor, 1)
            lane = lane_key("shop", "hook", submission(r, vendor.url, 1).outbound)
            await counted(eng, "retry", 1)
            # Not before the vendor said: the job is scheduled at least 30 s after the answer,
            # and the whole lane is paused as long.
            assert await store.next_due(lane) >= sent + 30
            assert eng.lanes[lane].paused_until >= sent + 30
            assert len(vendor.received) == 1
        finally:
            await eng.close()


def test_retry_after_header_forms():
    now = 1_700_000_000.0
    assert retry_after("120", now) == 120
    assert retry_after("Tue, 14 Nov 2023 22:23:20 GMT", now) == 600
    assert retry_after("soon", now) is None
    assert retry_after("999999", now) == 3600  # capped


async def test_timeout_then_success(stores):
    slow = Reply(200, delay=3.0)
    with FakeVendor(responses=[slow]) as vendor:
        r = route(PlainTag(), delivery=TagDeliveryConfig(timeout="300ms"))
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            await eng.submit([submission(r, vendor.url + "/e", 3)])
            got = await wait_received(vendor, 2)
            assert keys_of(got) == ["event-3", "event-3"]
            await counted(eng, "done", 1)
        finally:
            await eng.close()


async def test_connection_refused_opens_breaker_then_drains_when_vendor_returns(stores):
    port = free_port()
    url = f"http://127.0.0.1:{port}/e"
    r = route(PlainTag())
    eng = engine(stores.new(), r)
    await eng.start()
    try:
        await eng.submit([submission(r, url, i) for i in range(30)])
        lane = lane_key("shop", "hook", submission(r, url, 0).outbound)
        await eventually(
            lambda: (
                eng.metrics.value("sgtm_delivery_breaker_open_total", container="shop", tag="hook")
                >= 1
            )
        )
        assert eng.lanes[lane].breaker.is_open
        with FakeVendor(port=port) as vendor:
            got = await wait_received(vendor, 30)
            assert sorted(set(keys_of(got))) == sorted(f"event-{i}" for i in range(30))
            await counted(eng, "done", 30)
            assert not eng.lanes[lane].breaker.is_open
    finally:
        await eng.close()


async def test_slow_vendor_does_not_hold_back_another(stores):
    with FakeVendor(delay=2.0) as slow, FakeVendor() as fast:
        a = route(PlainTag(), name="slow", delivery=TagDeliveryConfig(concurrency=1))
        b = route(PlainTag(), name="fast")
        eng = engine(stores.new(), a, b)
        await eng.start()
        try:
            await eng.submit([submission(a, slow.url + "/e", i) for i in range(5)])
            await eng.submit([submission(b, fast.url + "/e", i) for i in range(20)])
            await wait_received(fast, 20)
            # The fast vendor got everything while the slow one has at most its first request.
            assert len(slow.received) <= 1
        finally:
            await eng.close()


async def test_client_error_is_dead_lettered_with_the_response(stores):
    store = await stores()
    answer = Reply(400, {"X-Trace": "abc", "Set-Cookie": "s=1"}, b'{"error": "bad pixel"}')
    with FakeVendor(responses=[answer]) as vendor:
        r = route(PlainTag())
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            await eng.submit([submission(r, vendor.url + "/e", 9)])
            await wait_received(vendor, 1)
            (letter,) = await eventually(store.dead_letters)
        finally:
            await eng.close()
    assert letter.tag == "hook" and letter.attempts == 1
    assert letter.reason == "vendor answered 400"
    assert letter.response.status == 400
    assert letter.response.body == b'{"error": "bad pixel"}'
    assert letter.response.headers["x-trace"] == "abc"
    assert "set-cookie" not in letter.response.headers
    assert [a.status for a in letter.history] == [400]
    assert letter.outbound().idempotency_key == "event-9"
    assert len(vendor.received) == 1


async def test_max_age_dead_letters_what_keeps_failing(stores):
    store = await stores()
    with FakeVendor(default_status=503) as vendor:
        r = route(PlainTag(), delivery=TagDeliveryConfig(max_age="500ms"))
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            await eng.submit([submission(r, vendor.url + "/e", 1)])
            (letter,) = await eventually(store.dead_letters)
        finally:
            await eng.close()
    assert letter.reason.startswith("max_age")
    assert letter.attempts >= 1
    assert all(a.status == 503 for a in letter.history)


async def test_batches_merge_up_to_max_items(stores):
    with FakeVendor(
        reply=lambda got, status: json.dumps(
            {"results": ["done"] * len(json.loads(got.body)["items"])}
        ).encode()
    ) as vendor:
        r = route(BatchTag(), delivery=TagDeliveryConfig(linger="200ms"))
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            await eng.submit([submission(r, vendor.url + "/batch", i) for i in range(10)])
            await counted(eng, "done", 10)
        finally:
            await eng.close()
    sizes = [len(json.loads(g.body)["items"]) for g in vendor.received]
    assert sum(sizes) == 10
    assert max(sizes) == 4  # max_items, and linger let the batches fill
    assert len(sizes) == 3


def keyed(r, url: str, n: int, key: str):
    sub = submission(r, url, n)
    sub.outbound.batch_key = key
    return sub


async def test_batch_keys_split_requests_within_one_lane_without_passing_its_concurrency(stores):
    def results(got, status):
        return json.dumps({"results": ["done"] * len(json.loads(got.body)["items"])}).encode()

    with FakeVendor(reply=results, delay=0.05) as vendor:
        limits = TagDeliveryConfig(linger="200ms", concurrency=2)
        r = route(BatchTag(), delivery=limits)
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            # Three clients interleaved: 18 jobs, lease of 2 x 4, groups of one key only.
            await eng.submit(
                [keyed(r, vendor.url + "/batch", i, f"client-{i % 3}") for i in range(18)]
            )
            await counted(eng, "done", 18)
            assert len(eng.lanes) == 1
        finally:
            await eng.close()
    batches = [[item["n"] for item in json.loads(g.body)["items"]] for g in vendor.received]
    assert sorted(n for batch in batches for n in batch) == list(range(18))
    assert all(len({n % 3 for n in batch}) == 1 for batch in batches)
    assert max(len(batch) for batch in batches) <= 4
    assert any(len(batch) > 1 for batch in batches)  # grouping still merges
    assert vendor.max_in_flight <= 2


async def test_an_idle_lane_retires_and_comes_back_for_new_work(stores):
    with FakeVendor() as vendor:
        r = route(PlainTag())
        eng = engine(stores.new(), r, lane_idle_retire=0.2)
        await eng.start()
        try:
            await eng.submit([submission(r, vendor.url + "/e", 1)])
            await wait_received(vendor, 1)
            await eventually(lambda: not eng.lanes)
            await eng.submit([submission(r, vendor.url + "/e", 2)])  # this instance's hit
            await wait_received(vendor, 2)
            await eventually(lambda: not eng.lanes)
            # A job another instance stored: found by the supervisor's discovery.
            other = stores.new()
            await other.open()
            sub = submission(r, vendor.url + "/e", 3)
            payload = Payload(
                container="shop",
                tag="hook",
                tag_type=r.type.name,
                outbound=sub.outbound,
                created=sub.created,
            )
            now = time.time()
            await other.enqueue(
                [NewJob(lane=sub.lane, due=now, created=now, payload=encode_payload(payload))]
            )
            await other.close()
            got = await wait_received(vendor, 3)
        finally:
            await eng.close()
    assert keys_of(got) == ["event-1", "event-2", "event-3"]


async def test_partial_batch_failure_dead_letters_only_the_failed_item(stores):
    store = await stores()
    first = Reply(200, body=json.dumps({"results": ["done", "dead", "retry", "done"]}).encode())
    with FakeVendor(
        responses=[first],
        reply=lambda got, status: json.dumps(
            {"results": ["done"] * len(json.loads(got.body)["items"])}
        ).encode(),
    ) as vendor:
        r = route(BatchTag(), delivery=TagDeliveryConfig(linger="200ms"))
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            await eng.submit([submission(r, vendor.url + "/batch", i) for i in range(4)])
            await wait_received(vendor, 2)
            (letter,) = await eventually(store.dead_letters)
            await counted(eng, "done", 3)
        finally:
            await eng.close()
    items = [json.loads(g.body)["items"] for g in vendor.received]
    assert items[0] == [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}]
    assert items[1] == [{"n": 2}]  # only the retried item is resent
    assert letter.outbound().batch_item == {"n": 1}
    assert letter.reason == "item said dead"


async def test_malformed_response_body_is_retried(stores):
    garbage = Reply(200, body=b"<html>oops")
    with FakeVendor(
        responses=[garbage],
        reply=lambda got, status: json.dumps(
            {"results": ["done"] * len(json.loads(got.body)["items"])}
        ).encode(),
    ) as vendor:
        r = route(BatchTag())
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            await eng.submit([submission(r, vendor.url + "/batch", 1)])
            await wait_received(vendor, 2)
            await counted(eng, "done", 1)
        finally:
            await eng.close()
    assert (
        eng.metrics.value("sgtm_deliveries_total", container="shop", tag="hook", outcome="retry")
        == 1
    )


async def test_configured_secrets_never_reach_the_store(stores):
    store = await stores()
    secret = "EAAB-super-secret-token-123"
    with FakeVendor(responses=[400]) as vendor:
        r = route(PlainTag(), secrets={secret: "META_ACCESS_TOKEN"})
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            sub = submission(
                r, f"{vendor.url}/e?access_token={secret}", 1, headers={"X-Key": secret}
            )
            await eng.submit([sub])
            (got,) = await wait_received(vendor, 1)
            (letter,) = await eventually(store.dead_letters)
        finally:
            await eng.close()
    assert got.query == f"access_token={secret}"  # the vendor gets the real value
    assert got.headers["x-key"] == secret
    stored = letter.outbound()
    assert secret not in stored.url and secret not in stored.headers["X-Key"]
    assert stored.url.endswith("access_token=" + placeholders.secret(NONCE, "META_ACCESS_TOKEN"))


async def test_placeholder_text_from_a_hit_never_becomes_a_secret(stores):
    """A hit carrying `{{secret.NAME}}` (as GA4 `ep.uid=...` or a dataLayer value would) in what
    a tag builds gets that text delivered, never the secret, in URL, headers and body."""
    await stores()
    secret = "EAAB-super-secret-token-123"
    smuggled = "{{secret.META_ACCESS_TOKEN}}{{secret.META_ACCESS_TOKEN|url}}{{credential}}"
    with FakeVendor() as vendor:
        r = route(PlainTag(), secrets={secret: "META_ACCESS_TOKEN"})
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            sub = submission(
                r, f"{vendor.url}/e?access_token={secret}", 1, headers={"X-Uid": smuggled}
            )
            sub.outbound.body = json.dumps({"uid": smuggled}).encode()
            await eng.submit([sub])
            (got,) = await wait_received(vendor, 1)
        finally:
            await eng.close()
    assert got.query == f"access_token={secret}"
    assert got.headers["x-uid"] == smuggled
    assert json.loads(got.body) == {"uid": smuggled}


async def test_scheduled_flush_survives_a_restart(stores):
    store = await stores()
    with FakeVendor() as vendor:
        r = route(PlainTag(), delivery=TagDeliveryConfig(flush_every="1h"))
        lane = lane_key("shop", "hook", submission(r, vendor.url, 0).outbound)
        first = engine(stores.new(), r)
        await first.start()
        await first.submit([submission(r, vendor.url + "/e", i) for i in range(3)])
        scheduled = await eventually(lambda: store.get_schedule(lane))
        await first.close()
        assert vendor.received == []  # waits for its flush, and shutdown did not flush it

        second = engine(stores.new(), r)
        await second.start()
        await asyncio.sleep(0.3)
        assert vendor.received == []
        assert await store.get_schedule(lane) == scheduled  # kept, not restarted
        await second.close()

        # The flush time comes (moved forward here rather than waiting an hour).
        await store.set_schedule(lane, time.time() - 1)
        third = engine(stores.new(), r)
        await third.start()
        try:
            got = await wait_received(vendor, 3)
            assert sorted(keys_of(got)) == ["event-0", "event-1", "event-2"]
            # The next flush is an hour after this one.
            assert await eventually(lambda: _after(store.get_schedule(lane), time.time() + 1800))
        finally:
            await third.close()


async def _after(value, now):
    return (await value) > now


async def test_shutdown_keeps_unsent_work(stores):
    store = await stores()
    with FakeVendor(delay=2.0) as vendor:
        r = route(PlainTag(), delivery=TagDeliveryConfig(concurrency=2))
        eng = engine(stores.new(), r, drain_timeout=0.3)
        await eng.start()
        await eng.submit([submission(r, vendor.url + "/e", i) for i in range(6)])
        await eventually(lambda: eng.lanes and next(iter(eng.lanes.values())).inflight == 2)
        await eng.close()
    lane = lane_key("shop", "hook", submission(r, vendor.url, 0).outbound)
    # Nothing was acknowledged by the vendor: all six wait, the two in flight released at once.
    assert len(await store.lease(lane, time.time(), 10, 30)) == 6


async def test_submit_when_store_is_down_raises_unavailable(redis_url):
    from sgtm.delivery.redis_store import RedisStore

    r = route(PlainTag())
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    eng = engine(store, r)
    with pytest.raises(DeliveryUnavailable):
        await eng.start()
    with pytest.raises(DeliveryUnavailable):
        await eng.submit([submission(r, "http://127.0.0.1:9/e", 1)])


async def test_sqlite_locked_store_raises_unavailable(tmp_path):
    import sqlite3

    from sgtm.delivery.sqlite_store import SqliteStore

    store = SqliteStore(tmp_path, busy_timeout=0.2)
    await store.open()
    blocker = sqlite3.connect(tmp_path / "sgtm.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        r = route(PlainTag())
        with pytest.raises(DeliveryUnavailable):
            await store.enqueue([])
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        await store.close()
    assert r


def test_token_bucket_refills_at_the_documented_rate():
    now = [1000.0]
    bucket = TokenBucket(RateLimit(requests=120, per=60), lambda: now[0])
    for _ in range(120):
        assert bucket.wait_time() == 0
        bucket.take()
    assert bucket.wait_time() == pytest.approx(0.5)
    now[0] += 0.5
    assert bucket.wait_time() == 0
    bucket.take()
    now[0] += 3600
    assert bucket.available() == 120  # never more than one burst


async def test_rate_limit_paces_requests(stores):
    with FakeVendor() as vendor:
        rate = TagDeliveryConfig(rate_limit=RateLimitConfig(requests=2, per="1h"))
        r = route(PlainTag(), delivery=rate)
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            await eng.submit([submission(r, vendor.url + "/e", i) for i in range(5)])
            await wait_received(vendor, 2)
            await asyncio.sleep(0.3)
            assert len(vendor.received) == 2  # the bucket is empty for the rest of the hour
        finally:
            await eng.close()


async def test_signed_urls_reach_the_vendor_byte_for_byte(stores):
    # Escapes a URL normalizer would rewrite (%7e -> ~, lower-case hex): a signature over the
    # URL breaks on any changed byte.
    query = "sig=ab%7e%2fcd%3D&ts=1700000000&u=a+b"
    with FakeVendor() as vendor:
        r = route(PlainTag())
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            await eng.submit([submission(r, f"{vendor.url}/e?{query}", 1)])
            (got,) = await wait_received(vendor, 1)
        finally:
            await eng.close()
    assert got.query == query


async def test_jobs_of_a_tag_no_longer_configured_dead_letter_after_the_longest_max_age(stores):
    r = route(PlainTag(), max_age=60.0)  # shorter than the default: the default (6 h) applies
    gone = route(PlainTag(), name="removed_tag")
    now = time.time()
    store = stores.new()
    await store.open()
    jobs = []
    for hours in (7, 1):  # one past 6 h, one still young enough to wait for its tag
        sub = submission(gone, "http://127.0.0.1:9/e", hours, created=now - hours * 3600)
        payload = Payload(
            container="shop",
            tag="removed_tag",
            tag_type=gone.type.name,
            outbound=sub.outbound,
            created=sub.created,
        )
        jobs.append(
            NewJob(lane=sub.lane, due=now, created=sub.created, payload=encode_payload(payload))
        )
    await store.enqueue(jobs)
    await store.close()
    eng = engine(stores.new(), r)
    await eng.start()
    try:
        letters = await eventually(lambda: eng.store.dead_letters())
        (letter,) = letters
        assert letter.tag == "removed_tag" and letter.reason.startswith("max_age")
        assert payload_n(letter) == 7
        await asyncio.sleep(0.3)  # more sweeps: the young job stays
        assert len(await eng.store.dead_letters()) == 1
        assert (await eng.store.depth())[jobs[1].lane] == 1
    finally:
        await eng.close()


def payload_n(letter) -> int:
    from sgtm.delivery.store import decode_payload

    return json.loads(decode_payload(letter.payload).outbound.body)["n"]


async def test_a_lane_keeps_its_rate_limit_state_rather_than_retire_with_a_spent_bucket(stores):
    with FakeVendor() as vendor:
        rate = TagDeliveryConfig(rate_limit=RateLimitConfig(requests=3, per="1h"))
        r = route(PlainTag(), delivery=rate)
        eng = engine(stores.new(), r, lane_idle_retire=0.1)
        await eng.start()
        try:
            await eng.submit([submission(r, vendor.url + "/e", i) for i in range(2)])
            await wait_received(vendor, 2)
            await asyncio.sleep(0.5)  # idle well past lane_idle_retire, one token left
            assert len(eng.lanes) == 1  # retiring would forget that 2 of the hour's 3 are spent
            await eng.submit([submission(r, vendor.url + "/e", i) for i in range(2, 5)])
            await wait_received(vendor, 3)
            await asyncio.sleep(0.3)
            assert len(vendor.received) == 3
        finally:
            await eng.close()


class SlowSettles:
    """A real store whose outcome writes wait until `release` is set; counts settle calls."""

    def __init__(self, store):
        self.store = store
        self.release = asyncio.Event()
        self.settles: list[int] = []  # jobs per settle call

    def __getattr__(self, name):
        return getattr(self.store, name)

    async def settle(self, done, retry, dead, outcomes=()):
        self.settles.append(len(done) + len(retry) + len(dead))
        await self.release.wait()
        await self.store.settle(done, retry, dead, outcomes)


async def test_the_concurrency_slot_is_free_once_the_vendor_answers(stores):
    # One request in flight at a time, and the first outcome cannot be written yet: the second
    # request still goes, because a slot is held for the vendor, not for the store.
    with FakeVendor() as vendor:
        r = route(PlainTag(), delivery=TagDeliveryConfig(concurrency=1))
        store = SlowSettles(stores.new())
        eng = engine(store, r)
        await eng.start()
        try:
            await eng.submit([submission(r, vendor.url + "/e", i) for i in range(3)])
            await wait_received(vendor, 3)
            done = eng.metrics.value(
                "sgtm_deliveries_total", container="shop", tag="hook", outcome="done"
            )
            assert done == 0
            store.release.set()
            await counted(eng, "done", 3)
        finally:
            store.release.set()
            await eng.close()


async def test_outcomes_that_wait_for_a_write_go_together_in_the_next(stores):
    with FakeVendor() as vendor:
        r = route(PlainTag())
        store = SlowSettles(stores.new())
        eng = engine(store, r)
        await eng.start()
        try:
            await eng.submit([submission(r, vendor.url + "/e", 0)])
            await eventually(lambda: store.settles == [1])  # the first write, held
            await eng.submit([submission(r, vendor.url + "/e", i) for i in range(1, 21)])
            await wait_received(vendor, 21)
            store.release.set()
            await counted(eng, "done", 21)
        finally:
            store.release.set()
            await eng.close()
    # The 20 outcomes that came while the first write was held went in one write.
    assert store.settles[0] == 1 and store.settles[1] == 20 and sum(store.settles) == 21


async def test_a_job_leased_ahead_is_not_sent_once_its_lease_ran_short(stores):
    # An unbatched lane leases the next round's jobs with this round's. One of them waits while
    # the clock passes its lease: another engine takes it, and this engine must leave it.
    now = [time.time()]
    with FakeVendor(responses=[Reply(200, delay=1.5)]) as vendor:
        r = route(PlainTag(), delivery=TagDeliveryConfig(concurrency=1, timeout=5))
        eng = DeliveryEngine(
            stores.new(), {("shop", "hook"): r}, options=FAST, clock=lambda: now[0]
        )
        await eng.start()
        try:
            await eng.submit([submission(r, vendor.url + "/e", i) for i in range(2)])
            await wait_received(vendor, 1)  # job 0 is answered in 1.5 s; job 1 waits ahead
            (lane,) = eng.lanes.values()
            assert len(lane.ahead) == 1
            now[0] += 100  # past the lease of the job waiting ahead
            other = await stores(owner="other")
            taken = await other.lease(lane.key, now[0], 10, 60)
            assert lane.ahead[0].id in {job.id for job in taken}
            await eventually(lambda: not lane.ahead and lane.idle)
        finally:
            await eng.close()
    assert keys_of(vendor.received) == ["event-0"]
