"""Delivery outcome lines name the event and the hit that caused them; the queue-depth and
breaker gauges are current."""

from __future__ import annotations

import json
import logging
import time

import msgspec

from sgtm.delivery.base import Submission
from sgtm.delivery.store import NewJob, Payload, encode_payload
from sgtm.plugin import Outbound
from tests.delivery.helpers import BatchTag, PlainTag, engine, route, submission
from tests.servers import FakeVendor, Reply, eventually


def lines(caplog, message: str) -> list[dict]:
    return [r.__dict__ for r in caplog.records if r.getMessage() == message]


def tagged(r, url: str, n: int) -> Submission:
    sub = submission(r, url, n)
    sub.event_id = f"ev-{n}"
    sub.request_id = f"req-{n // 2}"  # two events per hit
    return sub


async def test_a_delivered_event_logs_one_compact_line_at_info(stores, caplog):
    caplog.set_level(logging.INFO, logger="sgtm.delivery")
    with FakeVendor() as vendor:
        r = route(PlainTag())
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            await eng.submit([tagged(r, vendor.url + "/e", 3)])
            (line,) = await eventually(lambda: lines(caplog, "delivered"))
        finally:
            await eng.close()
    assert line["levelname"] == "INFO"
    assert line["event_id"] == "ev-3" and line["request_id"] == "req-1"
    assert line["status"] == 200 and line["lane"].startswith("shop/hook/http://127.0.0.1:")
    assert isinstance(line["ms"], float)


async def test_retries_and_dead_letters_name_their_events(stores, caplog):
    caplog.set_level(logging.INFO, logger="sgtm.delivery")
    refused = Reply(400, {}, b'{"error": "bad email ana@example.com"}')
    with FakeVendor(responses=[503, refused]) as vendor:
        r = route(PlainTag())
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            await eng.submit([tagged(r, vendor.url + "/e", 5)])
            (dead,) = await eventually(lambda: lines(caplog, "delivery dead-lettered"))
        finally:
            await eng.close()
    (retry,) = lines(caplog, "delivery will be retried")
    assert retry["levelname"] == "INFO" and retry["status"] == 503
    assert retry["event_id"] == "ev-5" and retry["request_id"] == "req-2"
    assert retry["attempts"] == 1 and retry["error"] == "vendor answered 503"
    assert dead["levelname"] == "WARNING" and dead["status"] == 400
    assert dead["event_id"] == "ev-5" and dead["request_id"] == "req-2"
    assert dead["attempts"] == 2 and dead["reason"] == "vendor answered 400"


async def test_a_batch_line_lists_every_event_and_each_hit_once(stores, caplog):
    caplog.set_level(logging.INFO, logger="sgtm.delivery")

    def reply(got, status):
        return json.dumps({"results": ["done"] * len(json.loads(got.body)["items"])}).encode()

    with FakeVendor(reply=reply) as vendor:
        r = route(BatchTag())
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            await eng.submit([tagged(r, vendor.url + "/b", n) for n in range(4)])
            found = await eventually(lambda: lines(caplog, "delivered"))
        finally:
            await eng.close()
    assert sorted(e for line in found for e in line["event_ids"]) == [f"ev-{n}" for n in range(4)]
    assert sum(line["items"] for line in found) == 4
    for line in found:
        assert len(line["request_ids"]) == len(set(line["request_ids"]))


async def test_jobs_stored_before_the_ids_existed_are_still_delivered(stores, caplog):
    caplog.set_level(logging.INFO, logger="sgtm.delivery")
    store = await stores()
    with FakeVendor() as vendor:
        r = route(PlainTag())
        outbound = Outbound(method="POST", url=vendor.url + "/old", body=b"{}")
        # A Payload as stored by the previous release: six fields, no event or request id.
        old = msgspec.msgpack.encode(["shop", "hook", PlainTag.name, outbound, time.time(), ""])
        decoded = msgspec.msgpack.decode(old, type=Payload)
        assert (decoded.event_id, decoded.request_id) == ("", "")
        assert encode_payload(decoded) != old  # the new layout is longer
        lane = f"shop/hook/{vendor.url}"
        await store.enqueue([NewJob(lane=lane, due=time.time(), created=time.time(), payload=old)])
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            (line,) = await eventually(lambda: lines(caplog, "delivered"))
        finally:
            await eng.close()
    assert line["event_id"] == "" and line["request_id"] == ""
    assert [g.path for g in vendor.received] == ["/old"]


async def test_queue_depths_are_read_when_asked_and_an_emptied_lane_shows_zero(stores):
    with FakeVendor(default_status=503) as vendor:
        r = route(PlainTag())
        # A sweep every hour: only queue_depths() can have set the gauge.
        eng = engine(stores.new(), r, sweep_interval=3600.0)
        await eng.start()
        try:
            await eng.submit([submission(r, vendor.url + "/e", n) for n in range(3)])
            lane = next(iter(await eng.store.lanes()))
            assert await eng.queue_depths() == {lane: 3}
            assert eng.metrics.value("sgtm_delivery_queue_depth", lane=lane) == 3
            vendor.default_status = 200

            async def emptied() -> bool:
                return (await eng.queue_depths()).get(lane, 0) == 0

            await eventually(emptied, "outbox emptied")
            assert eng.metrics.value("sgtm_delivery_queue_depth", lane=lane) == 0
        finally:
            await eng.close()


async def test_the_breaker_gauge_is_one_while_open_and_zero_once_closed(stores):
    with FakeVendor(default_status=503) as vendor:
        r = route(PlainTag())
        eng = engine(stores.new(), r)
        await eng.start()
        try:
            await eng.submit([submission(r, vendor.url + "/e", 1)])
            lane = f"shop/hook/{vendor.url}"

            def state() -> float:
                return eng.metrics.value(
                    "sgtm_delivery_breaker_state", container="shop", tag="hook", lane=lane
                )

            await eventually(lambda: state() == 1.0, "breaker open")
            vendor.default_status = 200
            await eventually(lambda: state() == 0.0 and len(vendor.received) >= 4, "closed")
        finally:
            await eng.close()
