"""The delivery history and preview sessions in the Store contract, SQLite and Redis alike."""

from __future__ import annotations

import time

from sgtm.delivery.store import MAX_PREVIEWS, MAX_TRACES, Outcome
from tests.delivery.test_store import new_jobs


def outcome(job: str, state: str, at: float, **fields) -> Outcome:
    values = {
        "event_id": "ev-1",
        "transaction_id": "",
        "job": job,
        "container": "shop",
        "tag": "hook",
        "state": state,
        "attempts": 1,
        "status": 200,
        "at": at,
    }
    values.update(fields)
    return Outcome(**values)


async def test_outcomes_are_written_with_the_settlement_and_found_by_event(store):
    now = time.time()
    await store.enqueue(new_jobs(2, now))
    jobs = await store.lease("shop/hook/https://vendor.example", now, 10, 30)
    await store.settle(
        jobs[:1],
        [],
        [],
        [
            outcome("a", "delivered", now, transaction_id="T-1"),
            outcome("b", "retrying", now, tag="meta", status=503),
        ],
    )
    # The same delivery later: its record is replaced, not added.
    await store.settle([], [], [], [outcome("b", "delivered", now + 1, tag="meta", attempts=2)])
    found = await store.history(event_id="ev-1")
    assert [(o.tag, o.state, o.attempts, o.status) for o in found] == [
        ("hook", "delivered", 1, 200),
        ("meta", "delivered", 2, 200),
    ]
    by_order = await store.history(transaction_id="T-1")
    assert [o.job for o in by_order] == ["a", "b"]  # the order's events, every delivery
    assert await store.history(event_id="nope") == []
    assert await store.history(transaction_id="") == []
    assert await store.depth() == {"shop/hook/https://vendor.example": 1}


async def test_hostile_history_keys_are_plain_lookups(store):
    now = time.time()
    odd = "ev' OR 1=1 --{{secret.X}}*\u2028"
    await store.settle([], [], [], [outcome("a", "delivered", now, event_id=odd)])
    assert [o.event_id for o in await store.history(event_id=odd)] == [odd]
    assert await store.history(event_id="ev' OR 1=1 --") == []
    assert await store.history(event_id="*") == []


async def test_sqlite_history_is_pruned_after_its_retention(tmp_path):
    from sgtm.delivery.sqlite_store import SqliteStore

    store = SqliteStore(tmp_path, history=3600)
    await store.open()
    try:
        now = time.time()
        await store.settle(
            [], [], [], [outcome("old", "delivered", now - 7200), outcome("new", "dead", now)]
        )
        assert await store.prune(now) == 1
        assert [o.job for o in await store.history(event_id="ev-1")] == ["new"]
    finally:
        await store.close()


async def test_no_history_kept_when_its_retention_is_zero(tmp_path, redis_url):
    from sgtm.delivery.redis_store import RedisStore
    from sgtm.delivery.sqlite_store import SqliteStore
    from tests.delivery.conftest import drop_redis_prefix, redis_prefix

    prefix = redis_prefix()
    for store in (
        SqliteStore(tmp_path, history=0),
        RedisStore(redis_url, prefix=prefix, history=0),
    ):
        await store.open()
        try:
            await store.settle([], [], [], [outcome("a", "delivered", time.time())])
            assert await store.history(event_id="ev-1") == []
        finally:
            await store.close()
    drop_redis_prefix(prefix)


async def test_redis_history_expires_by_itself(redis_url):
    from sgtm.delivery.redis_store import RedisStore
    from tests.delivery.conftest import drop_redis_prefix, redis_prefix

    prefix = redis_prefix()
    store = RedisStore(redis_url, prefix=prefix, history=3600)
    await store.open()
    try:
        await store.settle([], [], [], [outcome("a", "delivered", time.time(), transaction_id="T")])
        for key in (f"{{{prefix}}}:history:event:ev-1", f"{{{prefix}}}:history:transaction:T"):
            assert 3500 < await store.r.ttl(key) <= 3600
    finally:
        await store.close()
        drop_redis_prefix(prefix)


async def test_preview_sessions_live_an_hour_and_keep_their_newest_traces(store):
    now = time.time()
    await store.preview_open("s1", now + 3600, now)
    assert await store.preview_expires("s1", now) == now + 3600
    assert await store.preview_expires("s1", now + 3601) is None
    assert await store.preview_expires("unknown", now) is None
    for n in range(MAX_TRACES + 5):
        await store.preview_add("s1", b'{"n": %d}' % n)
    await store.preview_add("unknown", b"{}")  # not kept: no such session
    ref = "s1/trace/0/1/0"
    await store.settle([], [], [], [outcome("a", "retrying", now, preview=ref, response="slow")])
    await store.settle([], [], [], [outcome("z", "delivered", now, preview="gone/t/0/0/0")])
    data = await store.preview_read("s1", now)
    assert data is not None
    assert len(data.traces) == MAX_TRACES
    assert data.traces[0] == b'{"n": 5}' and data.traces[-1] == b'{"n": %d}' % (MAX_TRACES + 4)
    assert data.deliveries[ref].state == "retrying" and data.deliveries[ref].response == "slow"
    assert list(data.deliveries) == [ref]
    assert await store.preview_read("unknown", now) is None
    assert await store.preview_read("s1", now + 3601) is None


async def test_preview_sessions_are_capped_and_ended_ones_pruned(store):
    now = time.time()
    await store.preview_open("short", now + 10, now)
    for n in range(MAX_PREVIEWS):
        await store.preview_open(f"s{n}", now + 3600 + n, now)
    assert await store.preview_expires("short", now) is None  # the oldest made room
    assert await store.preview_expires("s0", now) is not None
    await store.preview_open("late", now + 7200, now)
    assert await store.preview_expires("s0", now) is None
    await store.prune(now + 3600 + MAX_PREVIEWS)
    assert await store.preview_read("late", now + 3600 + MAX_PREVIEWS) is not None
    assert await store.preview_read("s5", now) is None
