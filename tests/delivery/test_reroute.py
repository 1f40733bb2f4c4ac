"""The engine across a config reload (`DeliveryEngine.reroute`), on both stores: lanes of a removed
tag retire without losing or stranding a job (jobs leased ahead go back to the store at once,
sends in flight finish), stored jobs wait under the removed-tag rule and go out when the tag comes
back; a changed tag's secrets apply to new jobs while stored jobs keep theirs."""

from __future__ import annotations

import asyncio
import time

from sgtm import placeholders
from sgtm.delivery.engine import DeliveryEngine
from sgtm.delivery.policy import TagDeliveryConfig
from tests.delivery.helpers import FAST, PlainTag, route, submission
from tests.servers import FakeVendor, Reply, eventually


async def wait_received(vendor: FakeVendor, count: int, limit: float = 15.0):
    return await asyncio.to_thread(vendor.wait_for, count, limit)


def keys_of(received) -> list[str]:
    return sorted(r.headers["idempotency-key"] for r in received)


async def test_a_removed_tag_hands_back_its_jobs_and_sends_them_when_it_returns(stores):
    with FakeVendor(responses=[Reply(200, delay=1.0)]) as vendor:
        hook = route(PlainTag(), delivery=TagDeliveryConfig(concurrency=1, timeout=5))
        eng = DeliveryEngine(stores.new(), {("shop", "hook"): hook}, options=FAST)
        await eng.start()
        try:
            await eng.submit([submission(hook, vendor.url + "/e", i) for i in range(3)])
            await wait_received(vendor, 1)  # event-0 in flight for 1 s; event-1 leased ahead
            (lane,) = eng.lanes.values()
            await eventually(lambda: len(lane.ahead) == 1, "a job leased ahead")
            ahead = lane.ahead[0]

            handed_back = eng.reroute({})  # the reload removed the tag
            assert handed_back == [ahead] and lane.retired and eng.lanes == {}
            await eng.release_retired(handed_back)
            # Back in the store and due now: another instance whose config has the tag (a
            # rolling deploy) can take it at once instead of waiting for the lease to end.
            other = await stores(owner="other")
            taken = await other.lease(lane.key, time.time() + 1, 10, 60)
            assert {job.id for job in taken} >= {ahead.id}
            await other.release(taken, time.time())

            # The send in flight finishes on the old route and is settled; nothing else is sent.
            await eventually(lambda: not eng._sends, "the send in flight settled")
            await asyncio.sleep(0.3)  # idle polls and sweeps: a retired lane sends nothing
            assert keys_of(vendor.received) == ["event-0"]
            assert (await eng.store.depth())[lane.key] == 2
            assert lane.key in eng._unroutable  # warned, waiting under the removed-tag rule

            eng.reroute({("shop", "hook"): hook})  # the tag is back
            await wait_received(vendor, 3)
        finally:
            await eng.close()
    assert keys_of(vendor.received) == ["event-0", "event-1", "event-2"]  # each once


async def test_a_hit_of_the_old_version_stored_after_the_swap_keeps_its_secrets_sealed(stores):
    secret = "old-version-token-83712"
    hook = route(PlainTag(), secrets={secret: "HOOK_TOKEN"})
    eng = DeliveryEngine(stores.new(), {("shop", "hook"): hook}, options=FAST)
    await eng.start()
    try:
        eng.reroute({})
        # A request the old version built while the reload happened reaches the outbox now.
        late = submission(hook, "http://127.0.0.1:9/e", 1, headers={"x-token": secret})
        await eng.submit([late])
        (job,) = await eng.store.lease(late.lane, time.time() + 1, 10, 60)
        assert secret.encode() not in job.payload
        assert placeholders.secret(job.decode().nonce, "HOOK_TOKEN").encode() in job.payload
    finally:
        await eng.close()


async def test_changed_secrets_apply_to_new_jobs_and_stored_jobs_keep_theirs(stores):
    old_secret, new_secret = "first-token-0192837465", "second-token-5647382910"
    # 503 with Retry-After: the retry comes a second later, after the reload below.
    with FakeVendor(responses=[Reply(503, headers={"retry-after": "1"})]) as vendor:
        v1 = route(PlainTag(), secrets={old_secret: "TOKEN_ONE"})
        eng = DeliveryEngine(stores.new(), {("shop", "hook"): v1}, options=FAST)
        await eng.start()
        try:
            stored = submission(v1, vendor.url + "/e", 1, headers={"x-token": old_secret})
            await eng.submit([stored])
            await wait_received(vendor, 1)  # answered 503: it waits for a retry

            v2 = route(PlainTag(), secrets={new_secret: "TOKEN_TWO"})
            eng.reroute({("shop", "hook"): v2})
            (lane,) = eng.lanes.values()
            assert lane.route is v2  # the lane stays (its breaker, its bucket); its route is new
            fresh = submission(v2, vendor.url + "/e", 2, headers={"x-token": new_secret})
            await eng.submit([fresh])
            got = await wait_received(vendor, 3)
        finally:
            await eng.close()
    tokens = {r.headers["idempotency-key"]: r.headers["x-token"] for r in got[1:]}
    assert tokens == {"event-1": old_secret, "event-2": new_secret}


async def test_a_reroute_that_cannot_be_sent_changes_nothing(stores):
    from sgtm.plugin import Batching

    class BatchingFollowUps(PlainTag):
        name = "test_batching_follow_ups"
        batching = Batching(max_items=2)

        def follow_up(self, status, headers, body, request, settings):
            return []

    hook = route(PlainTag())
    eng = DeliveryEngine(stores.new(), {("shop", "hook"): hook}, options=FAST)
    bad = route(BatchingFollowUps(), name="bad")
    try:
        eng.reroute({("shop", "hook"): hook, ("shop", "bad"): bad})
    except ValueError as exc:
        assert "cannot make events" in str(exc)
    else:
        raise AssertionError("a batching tag with follow-ups was accepted")
    assert eng.routes == {("shop", "hook"): hook}


async def test_jobs_handed_back_while_the_store_is_down_wait_for_their_leases(stores, caplog):
    from sgtm.delivery.base import DeliveryUnavailable
    from sgtm.delivery.store import Job

    eng = DeliveryEngine(stores.new(), {}, options=FAST)
    await eng.start()
    try:

        async def refuse(jobs, now):
            raise DeliveryUnavailable("store down")

        eng.store.release = refuse  # type: ignore[method-assign]
        job = Job(id="1", lane="shop/hook/x", created=0, attempts=0, payload=b"")
        await eng.release_retired([job])  # logged, not raised: the reload already happened
        assert "wait for their leases to end" in caplog.text
    finally:
        await eng.close()
