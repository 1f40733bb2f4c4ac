"""The Store contract, run against SQLite and Redis alike."""

from __future__ import annotations

import asyncio
import time

from sgtm.delivery.base import LaneKey, lane_key
from sgtm.delivery.store import (
    Attempt,
    DeadLetter,
    LastResponse,
    NewJob,
    Payload,
    Retry,
    encode_payload,
)
from sgtm.plugin import Outbound

LANE = "shop/hook/https://vendor.example"


def new_jobs(count: int, now: float, lane: str = LANE, tag: str = "hook") -> list[NewJob]:
    jobs = []
    for i in range(count):
        outbound = Outbound(
            method="POST",
            url="https://vendor.example/e",
            body=f'{{"n": {i}}}'.encode(),
            idempotency_key=f"key-{i}",
        )
        payload = Payload(
            container="shop", tag=tag, tag_type="http_request", outbound=outbound, created=now
        )
        jobs.append(NewJob(lane=lane, due=now, created=now, payload=encode_payload(payload)))
    return jobs


def dead_of(job, now: float, reason: str = "vendor answered 400") -> DeadLetter:
    payload = job.decode()
    return DeadLetter(
        id=job.id,
        lane=job.lane,
        container=payload.container,
        tag=payload.tag,
        tag_type=payload.tag_type,
        created=job.created,
        died=now,
        attempts=job.attempts + 1,
        reason=reason,
        payload=job.payload,
        response=LastResponse(status=400, headers={"x-why": "bad"}, body=b'{"error": 1}'),
        history=[Attempt(at=now, status=400, error="bad")],
    )


async def test_enqueue_lease_done(store):
    now = time.time()
    await store.enqueue(new_jobs(3, now))
    assert await store.lanes() == [LANE]
    assert (await store.depth())[LANE] == 3
    jobs = await store.lease(LANE, now, 10, 30)
    assert [j.decode().outbound.idempotency_key for j in jobs] == ["key-0", "key-1", "key-2"]
    assert await store.lease(LANE, now, 10, 30) == []  # leased: hidden from everyone
    await store.settle(jobs, [], [])
    assert (await store.depth())[LANE] == 0
    assert await store.lease(LANE, now + 3600, 10, 30) == []


async def test_lease_limit_and_order(store):
    now = time.time()
    await store.enqueue(new_jobs(5, now))
    first = await store.lease(LANE, now, 2, 30)
    second = await store.lease(LANE, now, 10, 30)
    keys = [j.decode().outbound.idempotency_key for j in first + second]
    assert sorted(keys) == [f"key-{i}" for i in range(5)]
    assert len(first) == 2


async def test_expired_lease_goes_to_another_owner(stores):
    a = await stores(owner="host:1:a")
    b = await stores(owner="host:2:b")
    now = time.time()
    await a.enqueue(new_jobs(2, now))
    leased = await a.lease(LANE, now, 10, 30)
    assert len(leased) == 2
    assert await b.lease(LANE, now + 29, 10, 30) == []
    taken = await b.lease(LANE, now + 31, 10, 30)
    assert sorted(j.id for j in taken) == sorted(j.id for j in leased)
    # The first owner's lease is gone: its retry is ignored, the new owner's outcome counts.
    leased[0].attempts = 1
    await a.settle([], [Retry(job=leased[0], due=now + 1000)], [])
    await b.settle(taken, [], [])
    assert (await b.depth())[LANE] == 0
    assert await b.lease(LANE, now + 5000, 10, 30) == []


async def test_retry_keeps_the_job_with_its_history(store):
    now = time.time()
    await store.enqueue(new_jobs(1, now))
    (job,) = await store.lease(LANE, now, 1, 30)
    job.attempts = 1
    job.history = [Attempt(at=now, status=503, error="", ms=12.5)]
    await store.settle([], [Retry(job=job, due=now + 60)], [])
    assert await store.lease(LANE, now + 59, 1, 30) == []
    assert await store.next_due(LANE) == now + 60
    (again,) = await store.lease(LANE, now + 60, 1, 30)
    assert again.id == job.id
    assert again.attempts == 1
    assert again.history == [Attempt(at=now, status=503, error="", ms=12.5)]
    assert again.decode().outbound.idempotency_key == "key-0"


async def test_dead_letters_list_show_replay_purge(store):
    now = time.time()
    await store.enqueue(new_jobs(2, now) + new_jobs(1, now, lane="shop/other/x", tag="other"))
    jobs = await store.lease(LANE, now, 10, 30)
    (other,) = await store.lease("shop/other/x", now, 10, 30)
    await store.settle([], [], [dead_of(j, now + 1) for j in jobs] + [dead_of(other, now + 2)])
    assert (await store.depth())[LANE] == 0

    letters = await store.dead_letters()
    assert [x.tag for x in letters] == ["other", "hook", "hook"]  # newest first
    hook = await store.dead_letters(tag="hook")
    assert len(hook) == 2
    assert await store.dead_letters(since=now + 1.5) == [letters[0]]
    shown = await store.dead_letter(hook[0].id)
    assert shown is not None
    assert shown.response == LastResponse(
        status=400, headers={"x-why": "bad"}, body=b'{"error": 1}'
    )
    assert shown.history[0].status == 400
    assert shown.outbound().idempotency_key in ("key-0", "key-1")
    assert await store.dead_letter("999999999") is None

    assert await store.replay(ids=[hook[0].id], tag=None, now=now + 10) == 1
    (back,) = await store.lease(LANE, now + 10, 10, 30)
    assert back.created == now + 10  # a fresh max age
    assert back.attempts == 0
    assert back.decode().outbound.idempotency_key == shown.outbound().idempotency_key
    assert await store.replay(ids=None, tag="hook", now=now + 10) == 1
    assert len(await store.dead_letters()) == 1

    assert await store.purge(before=now) == 0
    assert await store.purge(before=now + 100) == 1
    assert await store.dead_letters() == []


async def test_expire_dead_letters_old_unleased_jobs(store):
    now = time.time()
    await store.enqueue(new_jobs(2, now - 100))
    await store.enqueue(new_jobs(1, now))
    await store.enqueue(new_jobs(3, now - 200))
    (leased,) = await store.lease(LANE, now, 1, 30)  # the oldest: leased, not expired
    assert await store.expire(LANE, created_before=now - 50, now=now, limit=2) == 2
    assert await store.expire(LANE, created_before=now - 50, now=now, limit=2) == 2
    letters = await store.dead_letters()
    assert len(letters) == 4
    assert all(x.reason.startswith("max_age") for x in letters)
    assert sorted({x.created for x in letters}) == [now - 200, now - 100]
    assert (await store.depth())[LANE] == 2
    await store.settle([leased], [], [])


async def test_hasten_brings_retries_forward(store):
    now = time.time()
    await store.enqueue(new_jobs(2, now))
    jobs = await store.lease(LANE, now, 2, 30)
    for job in jobs:
        job.attempts = 1
    await store.settle([], [Retry(job=jobs[0], due=now + 300)], [])
    assert await store.hasten(LANE, now + 1) == 1  # jobs[1] is leased: left alone
    assert [j.id for j in await store.lease(LANE, now + 1, 10, 30)] == [jobs[0].id]


async def test_release_gives_leases_back(store):
    now = time.time()
    await store.enqueue(new_jobs(2, now))
    jobs = await store.lease(LANE, now, 2, 300)
    await store.release(jobs, now)
    assert len(await store.lease(LANE, now, 10, 30)) == 2


async def test_state_survives_reopening(stores):
    first = await stores()
    now = time.time()
    await first.enqueue(new_jobs(3, now))
    await first.set_schedule(LANE, now + 900)
    await first.close()
    second = await stores()
    assert await second.get_schedule(LANE) == now + 900
    assert await second.get_schedule("nope") is None
    assert len(await second.lease(LANE, now, 10, 30)) == 3


async def test_seen_is_atomic_and_expires(store):
    results = await asyncio.gather(*(store.seen("order-1", 60) for _ in range(20)))
    assert sorted(results) == [False] + [True] * 19
    assert await store.seen("order-2", 60) is False
    assert await store.seen("short", 0.2) is False
    await asyncio.sleep(0.35)
    assert await store.seen("short", 0.2) is False  # expired, so new again
    assert await store.seen("order-1", 60) is True


async def test_one_settle_covers_several_lanes_and_outcomes(store):
    # The engine writes the outcomes of many sends at once: done, retried and dead, any lanes.
    now = time.time()
    lanes = ["shop/a/https://a.example", "shop/b/https://b.example"]
    for lane in lanes:
        await store.enqueue(new_jobs(3, now, lane=lane))
    a = await store.lease(lanes[0], now, 10, 60)
    b = await store.lease(lanes[1], now, 10, 60)
    a[1].attempts = 1
    await store.settle([a[0], b[0], b[1]], [Retry(job=a[1], due=now + 100)], [dead_of(a[2], now)])
    assert await store.depth() == {lanes[0]: 1, lanes[1]: 1}
    assert await store.lease(lanes[0], now + 99, 10, 60) == []  # the retry is not due yet
    (retried,) = await store.lease(lanes[0], now + 101, 10, 60)
    assert (retried.id, retried.attempts) == (a[1].id, 1)
    assert [d.payload for d in await store.dead_letters()] == [a[2].payload]
    assert await store.lease(lanes[1], now + 30, 10, 60) == []  # b[2] is still leased
    (left,) = await store.lease(lanes[1], now + 61, 10, 60)
    assert left.id == b[2].id


async def test_many_jobs_at_once_enqueue_lease_and_settle_exactly(store):
    # Concurrent enqueues share a transaction (SQLite binds their rows in statements of up to
    # 128): every row lands once, in lanes counted right, and a settle of 300 removes all 300.
    now = time.time()
    other = "shop/other/https://other.example"
    sizes = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 129, 300]
    await asyncio.gather(
        *(store.enqueue(new_jobs(n, now, lane=LANE if n % 2 else other)) for n in sizes)
    )
    odd = sum(n for n in sizes if n % 2)
    assert await store.depth() == {LANE: odd, other: sum(sizes) - odd}
    leased = await store.lease(LANE, now, 1000, 60)
    assert len(leased) == odd and len({job.id for job in leased}) == odd
    await store.settle(leased[:300], [], [])
    assert (await store.depth())[LANE] == odd - 300
    rest = await store.lease(LANE, now + 61, 1000, 60)
    assert sorted(job.id for job in rest) == sorted(job.id for job in leased[300:])


async def test_enqueues_add_to_the_depth_of_lanes_old_and_new(store):
    # The lanes of one group of enqueues are counted together (SQLite: one statement for up to
    # 128 lanes): lanes that have jobs, lanes emptied to 0 and new ones, more than 128 of them.
    now = time.time()
    emptied = "shop/emptied/https://e.example"
    await store.enqueue(new_jobs(2, now) + new_jobs(1, now, lane=emptied))
    await store.settle(await store.lease(emptied, now, 10, 60), [], [])
    assert await store.depth() == {LANE: 2, emptied: 0}
    fresh = [f"shop/t{i}/https://{i}.example" for i in range(130)]
    await asyncio.gather(
        store.enqueue(new_jobs(3, now)),
        store.enqueue(new_jobs(2, now, lane=emptied) + new_jobs(1, now)),
        *(store.enqueue(new_jobs(1 + i % 3, now, lane=lane)) for i, lane in enumerate(fresh)),
    )
    expected = {LANE: 6, emptied: 2} | {lane: 1 + i % 3 for i, lane in enumerate(fresh)}
    assert await store.depth() == expected


async def test_redis_settles_after_its_scripts_were_lost(redis_url):
    # A Redis restarted without its script cache: the pipeline loads them and runs again.
    from sgtm.delivery.redis_store import RedisStore
    from tests.delivery.conftest import drop_redis_prefix, redis_prefix

    prefix = redis_prefix()
    store = RedisStore(redis_url, prefix=prefix)
    await store.open()
    try:
        now = time.time()
        await store.enqueue(new_jobs(2, now))
        jobs = await store.lease(LANE, now, 10, 60)
        for script in store._scripts.values():
            script.sha = "0" * 40  # a hash the server does not know
        await store.settle(jobs, [], [])
        assert await store.depth() == {LANE: 0}
    finally:
        await store.close()
        drop_redis_prefix(prefix)


async def test_sqlite_a_failing_operation_rolls_back_alone(tmp_path):
    # Operations that arrive together share a transaction; one that fails halfway (after a
    # write) must take back its own write and nothing of the others'.
    from sgtm.delivery.sqlite_store import SqliteStore

    store = SqliteStore(tmp_path)
    await store.open()
    try:
        now = time.time()

        def half_then_fail(conn) -> None:
            conn.execute("INSERT INTO schedule (lane, next_flush) VALUES ('half', 1)")
            raise ValueError("halfway")

        # The writer is held by a slow first operation, so the next four queue up together.
        outcomes = await asyncio.gather(
            store._call(lambda conn: time.sleep(0.2)),
            store.enqueue(new_jobs(2, now)),
            store._call(half_then_fail),
            store.set_schedule("kept", 5.0),
            store.enqueue(new_jobs(1, now, lane="shop/other/https://o.example")),
            return_exceptions=True,
        )
        kinds = [type(o).__name__ for o in outcomes]
        assert kinds == ["NoneType", "NoneType", "ValueError", "NoneType", "NoneType"]
        assert await store.get_schedule("half") is None
        assert await store.get_schedule("kept") == 5.0
        assert (await store.depth())[LANE] == 2
    finally:
        await store.close()


def test_lane_keys_read_back_what_they_wrote_and_what_was_stored_before() -> None:
    key = LaneKey("shop", "hook", "https://hooks.example")
    assert key.encode() == "shop/hook/https://hooks.example"  # the text stores already hold
    assert LaneKey.decode(key.encode()) == key
    # A tag's own destination key may hold slashes; only the names end at one.
    odd = LaneKey("shop", "ga4 - purchase", "acct/42/eu")
    assert LaneKey.decode(odd.encode()) == odd
    outbound = Outbound(method="POST", url="https://api.example:8443/v1/x?y=1")
    assert LaneKey.decode(lane_key("shop", "hook", outbound)) == LaneKey(
        "shop", "hook", "https://api.example:8443"
    )


async def test_sqlite_leases_of_a_store_open_in_this_process_are_kept_at_another_open(tmp_path):
    """A second store opened in the same process (a tool reading the outbox beside a server)
    leaves the first one's leases alone; a lease of this pid whose store is closed was left by
    an earlier process with the same pid, and is released."""
    import os
    import socket

    from sgtm.delivery.sqlite_store import SqliteStore

    serving = SqliteStore(tmp_path)
    await serving.open()
    now = time.time()
    await serving.enqueue(new_jobs(2, now))
    held = await serving.lease(LANE, now, 1, 30)
    assert len(held) == 1
    reader = SqliteStore(tmp_path)
    await reader.open()
    try:
        # Only the job the server did not lease is there to take.
        assert len(await reader.lease(LANE, time.time() + 1, 10, 30)) == 1
    finally:
        await reader.close()
    await serving.close()
    earlier = SqliteStore(tmp_path, owner=f"{socket.gethostname()}:{os.getpid()}:gone")
    await earlier.open()  # its owner is open now: what the closed stores held is released
    try:
        assert len(await earlier.lease(LANE, time.time() + 1, 10, 30)) == 2
    finally:
        await earlier.close()
