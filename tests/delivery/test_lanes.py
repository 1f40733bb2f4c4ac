"""Lanes stay bounded whatever destinations the hits name (issue #8): a tag has at most
`max_lanes` destinations at once (a request for one more is refused before it is stored,
counted and logged), and lanes that have had no job since their retirement are forgotten by the
store and /metrics. On both stores; `LaneBudget` alone first."""

from __future__ import annotations

import asyncio
import logging
import textwrap
import time

import pytest

from sgtm.composition import routes_for
from sgtm.config import ContainerSpec, load_text
from sgtm.delivery.base import Submission
from sgtm.delivery.budget import LaneBudget
from sgtm.delivery.engine import DeliveryEngine
from sgtm.delivery.policy import (
    DEFAULT_MAX_LANES,
    StoreConfig,
    TagDeliveryConfig,
    check_store,
    check_tag_delivery,
)
from sgtm.delivery.store import NewJob, Payload, encode_payload
from sgtm.metrics import Metrics
from sgtm.plugin import Outbound
from sgtm.yamlsource import ConfigErrors
from tests.delivery.helpers import PlainTag, engine, route, submission
from tests.delivery.test_config import reg
from tests.servers import FakeVendor, eventually

TAG = ("shop", "hook")


def never(_: str) -> bool:
    return False


# --- LaneBudget --------------------------------------------------------------------------------


def test_a_tag_admits_its_own_destinations_always_and_new_ones_up_to_the_cap() -> None:
    budget = LaneBudget(idle=300)
    assert [budget.admit(TAG, f"shop/hook/d{i}", 3, 0.0, never) for i in range(5)] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert budget.admit(TAG, "shop/hook/d0", 3, 1.0, never)  # one it has: always
    assert budget.admit(("shop", "other"), "shop/other/d9", 3, 1.0, never)  # caps are per tag
    assert budget.count(TAG) == 3


def test_a_place_is_freed_once_its_destination_is_idle_and_not_running() -> None:
    budget = LaneBudget(idle=300)
    for i in range(3):
        budget.admit(TAG, f"shop/hook/d{i}", 3, float(i), never)
    assert not budget.admit(TAG, "shop/hook/new", 3, 299.0, never)  # none idle long enough
    running = {"shop/hook/d0"}
    # d0's lane still runs (jobs waiting for a retry): it keeps its place; d1 is forgotten.
    assert budget.admit(TAG, "shop/hook/new", 3, 301.5, running.__contains__)
    assert budget.admit(TAG, "shop/hook/d0", 3, 301.5, never)
    assert not budget.admit(TAG, "shop/hook/d1", 3, 301.5, never)


def test_lanes_run_for_jobs_stored_elsewhere_take_places() -> None:
    budget = LaneBudget(idle=300)
    for i in range(4):
        budget.note(TAG, f"shop/hook/elsewhere{i}", 0.0)
    assert budget.count(TAG) == 4
    assert not budget.admit(TAG, "shop/hook/mine", 3, 1.0, never)


def test_a_full_tag_under_a_flood_looks_at_one_place_per_refusal() -> None:
    calls: list[str] = []

    def live(lane: str) -> bool:
        calls.append(lane)
        return True

    budget = LaneBudget(idle=10)
    for i in range(64):
        budget.admit(TAG, f"shop/hook/d{i}", 64, 0.0, never)
    assert not budget.admit(TAG, "shop/hook/x0", 64, 20.0, live)  # every lane still runs
    assert len(calls) == 64  # each looked at once and kept, as seen now
    calls.clear()
    for i in range(1, 10_000):
        assert not budget.admit(TAG, f"shop/hook/x{i}", 64, 20.0, live)
    assert calls == []


# --- the engine --------------------------------------------------------------------------------


def to(r, url: str, n: int, destination: str) -> Submission:
    sub = submission(r, url, n)
    sub.outbound = Outbound(
        method=sub.outbound.method,
        url=sub.outbound.url,
        headers=sub.outbound.headers,
        body=sub.outbound.body,
        destination=destination,
        idempotency_key=sub.outbound.idempotency_key,
    )
    return sub


def refused(eng: DeliveryEngine, tag: str = "hook") -> float:
    return eng.metrics.value(
        "sgtm_delivery_refused_total", container="shop", tag=tag, reason="max_lanes"
    )


def enqueued(eng: DeliveryEngine, tag: str = "hook") -> float:
    return eng.metrics.value("sgtm_delivery_enqueued_total", container="shop", tag=tag)


async def test_jobs_past_the_cap_are_refused_before_they_are_stored(stores, caplog) -> None:
    caplog.set_level(logging.WARNING, "sgtm.delivery")
    with FakeVendor() as vendor:
        capped = route(PlainTag(), delivery=TagDeliveryConfig(max_lanes=3))
        other = route(PlainTag(), name="crm")
        eng = engine(stores.new(), capped, other)
        await eng.start()
        try:
            url = vendor.url + "/e"
            # One hit: a request of the capped tag per destination and one of another tag.
            await eng.submit([to(capped, url, i, f"dest-{i}") for i in range(6)])
            await eng.submit([to(capped, url, 6, "dest-7"), submission(other, url, 7)])
            await eng.submit([to(capped, url, 8, "dest-0")])  # a destination it has
            got = await asyncio.to_thread(vendor.wait_for, 5, 15)
            assert sorted(r.headers["idempotency-key"] for r in got) == [
                f"event-{n}" for n in (0, 1, 2, 7, 8)
            ]
            assert refused(eng) == 4 and enqueued(eng) == 4
            assert refused(eng, "crm") == 0 and enqueued(eng, "crm") == 1
            assert {k for k in eng.lanes if k.startswith("shop/hook/")} == {
                "shop/hook/dest-0",
                "shop/hook/dest-1",
                "shop/hook/dest-2",
            }
            await asyncio.sleep(0.3)
            assert len(vendor.received) == 5  # nothing refused was stored to be sent later
        finally:
            await eng.close()
    lines = [r for r in caplog.records if r.getMessage().startswith("delivery refused")]
    assert len(lines) == 1  # rate-limited: once a minute per tag
    assert lines[0].tag == "hook" and lines[0].max_lanes == 3
    assert "dest-" not in str(lines[0].__dict__)  # a destination may be a hit's value


async def test_an_ingest_only_engine_caps_too(stores) -> None:
    r = route(PlainTag(), delivery=TagDeliveryConfig(max_lanes=2))
    eng = DeliveryEngine(stores.new(), {TAG: r}, sends=False)
    await eng.start()
    try:
        url = "https://vendor.invalid/e"
        await eng.submit([to(r, url, i, f"dest-{i}") for i in range(5)])
        assert sorted(await eng.store.lanes()) == ["shop/hook/dest-0", "shop/hook/dest-1"]
        assert refused(eng) == 3
    finally:
        await eng.close()


async def test_idle_lanes_are_forgotten_by_the_store_and_metrics_and_free_their_places(
    stores,
) -> None:
    with FakeVendor() as vendor:
        r = route(PlainTag(), delivery=TagDeliveryConfig(max_lanes=2))
        eng = engine(stores.new(), r, lane_idle_retire=1.0)
        await eng.start()
        try:
            url = vendor.url + "/e"
            await eng.submit([to(r, url, 0, "dest-0"), to(r, url, 1, "dest-1")])
            await asyncio.to_thread(vendor.wait_for, 2, 15)
            await eng.queue_depths()  # a scrape: the series exist
            depth_series = {
                labels["lane"]
                for _, labels, _ in eng.metrics.samples(["sgtm_delivery_queue_depth"])
            }
            assert depth_series >= {"shop/hook/dest-0", "shop/hook/dest-1"}
            await eng.submit([to(r, url, 2, "dest-2")])
            assert refused(eng) == 1  # full

            async def forgotten() -> bool:
                return not (await eng.store.depth()) and not eng.lanes

            await eventually(forgotten, "idle lanes forgotten")
            await eng.queue_depths()
            assert eng.metrics.samples(["sgtm_delivery_queue_depth"]) == []
            await eng.submit([to(r, url, 3, "dest-3")])  # the places are free again
            await asyncio.to_thread(vendor.wait_for, 3, 15)
            assert refused(eng) == 1
        finally:
            await eng.close()


async def test_a_lane_with_jobs_is_never_forgotten(stores) -> None:
    # A vendor that never answers in time: the job waits for retries, its lane must stay.
    r = route(PlainTag(), delivery=TagDeliveryConfig(max_lanes=1))
    eng = engine(stores.new(), r, lane_idle_retire=0.1)
    await eng.start()
    try:
        await eng.submit([to(r, "http://127.0.0.1:9/e", 0, "down")])  # connection refused
        await asyncio.sleep(1.0)  # many sweeps past lane_idle_retire
        assert (await eng.store.depth()) == {"shop/hook/down": 1}
        await eng.submit([to(r, "http://127.0.0.1:9/e", 1, "another")])
        assert refused(eng) == 1  # its place is held while it has work
    finally:
        await eng.close()


# --- the stores --------------------------------------------------------------------------------


def job(lane: str, now: float) -> NewJob:
    outbound = Outbound(method="POST", url="https://vendor.example/e", body=b"{}")
    payload = Payload(
        container="shop", tag="hook", tag_type="test_plain", outbound=outbound, created=now
    )
    return NewJob(lane=lane, due=now, created=now, payload=encode_payload(payload))


async def test_store_forgets_only_lanes_without_jobs(store) -> None:
    now = time.time()
    await store.enqueue([job("shop/hook/a", now), job("shop/hook/b", now), job("shop/hook/c", now)])
    await store.set_schedule("shop/hook/a", now + 60)
    (a,) = await store.lease("shop/hook/a", now, 10, 30)
    (b,) = await store.lease("shop/hook/b", now, 10, 30)
    await store.settle([a, b], [], [])
    assert await store.depth() == {"shop/hook/a": 0, "shop/hook/b": 0, "shop/hook/c": 1}
    removed = await store.forget_lanes(["shop/hook/a", "shop/hook/c", "shop/hook/never"])
    assert removed == ["shop/hook/a"]
    assert await store.depth() == {"shop/hook/b": 0, "shop/hook/c": 1}
    assert await store.get_schedule("shop/hook/a") is None
    assert await store.forget_lanes([]) == []
    # A job stored after brings the lane back.
    await store.enqueue([job("shop/hook/a", now)])
    assert (await store.depth())["shop/hook/a"] == 1
    assert await store.lanes() == ["shop/hook/a", "shop/hook/c"]


async def test_store_keeps_a_lane_whose_job_is_leased(store) -> None:
    now = time.time()
    await store.enqueue([job("shop/hook/a", now)])
    await store.lease("shop/hook/a", now, 10, 30)
    assert await store.forget_lanes(["shop/hook/a"]) == []


async def test_store_forgets_many_lanes_in_bounded_steps(store) -> None:
    now = time.time()
    lanes = [f"shop/hook/G-ATTACK{i:05d}" for i in range(1200)]
    await store.enqueue([job(lane, now) for lane in lanes])
    jobs = [j for lane in lanes for j in await store.lease(lane, now, 1, 30)]
    await store.settle(jobs, [], [])
    assert sorted(await store.forget_lanes(lanes)) == sorted(lanes)
    assert await store.depth() == {}


def test_metrics_forget_removes_one_series() -> None:
    metrics = Metrics()
    metrics.gauge("sgtm_delivery_queue_depth", 3, lane="a/b/c")
    metrics.gauge("sgtm_delivery_queue_depth", 1, lane="a/b/d")
    metrics.forget("sgtm_delivery_queue_depth", lane="a/b/c")
    metrics.forget("sgtm_delivery_queue_depth", lane="never")
    assert "a/b/c" not in metrics.render() and 'lane="a/b/d"' in metrics.render()


@pytest.mark.parametrize("cap", [0, -1])
def test_a_cap_below_one_is_a_config_error(cap: int) -> None:
    assert check_store(StoreConfig(max_lanes_per_tag=cap)) == [
        ("max_lanes_per_tag", "must be at least 1")
    ]
    assert check_tag_delivery(TagDeliveryConfig(max_lanes=cap), PlainTag()) == [
        ("max_lanes", "must be at least 1")
    ]


# --- the config ----------------------------------------------------------------------------------


def load(text: str) -> ContainerSpec:
    return load_text(textwrap.dedent(text), "shop.yaml", reg(), environ={})


def test_the_cap_comes_from_the_container_and_a_tag_may_override_it() -> None:
    spec = load(
        """\
        version: 1
        delivery: {max_lanes_per_tag: 5}
        tags:
          - {name: a, type: test_plain}
          - {name: b, type: test_plain, delivery: {max_lanes: 200}}
        """
    )
    routes = routes_for([spec])
    assert routes[("shop", "a")].policy.max_lanes == 5
    assert routes[("shop", "b")].policy.max_lanes == 200
    default = load("version: 1\ntags:\n  - {name: a, type: test_plain}\n")
    assert routes_for([default])[("shop", "a")].policy.max_lanes == DEFAULT_MAX_LANES


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "delivery: {max_lanes_per_tag: 0}",
            "shop.yaml:2:31: delivery.max_lanes_per_tag: must be at least 1",
        ),
        (
            "delivery: {max_lanes_per_tag: many}",
            "shop.yaml:2:31: delivery.max_lanes_per_tag: Expected `int`, got `str`",
        ),
        (
            "delivery: {max_lanes_per_tag: 1.5}",
            "shop.yaml:2:31: delivery.max_lanes_per_tag: Expected `int`, got `float`",
        ),
        (
            "tags:\n  - {name: a, type: test_plain, delivery: {max_lanes: -3}}",
            "shop.yaml:3:55: tags[0].delivery.max_lanes: must be at least 1",
        ),
    ],
)
def test_bad_caps_are_positioned_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigErrors) as info:
        load("version: 1\n" + text + "\n")
    assert [str(e) for e in info.value.errors] == [message]
