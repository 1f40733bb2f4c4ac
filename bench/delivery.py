"""Delivery engine benchmark: events/s to a loopback vendor, drain after an outage, RSS with a
large backlog.

    .venv/bin/python bench/delivery.py [--events 20000] [--backlog 1000000] [--store sqlite|redis]

1. live: 64 concurrent "requests" each submit one event (the request path: one group-committed
   transaction per batch of submits) while the engine sends; events/s delivered, one request per
   event and batched (100 events per request).
2. drain: the outbox already holds the events (the vendor was down); events/s until it is empty.
3. backlog: `--backlog` events are enqueued while the vendor is down (the lane's breaker open);
   the process's RSS before and after shows the backlog lives on disk, not in memory.

The vendor runs in its own process (bench/_vendor.py). Figures are in docs/operations.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from transport import free_port, start_vendor  # noqa: E402

from sgtm import metrics  # noqa: E402
from sgtm.delivery.base import Submission  # noqa: E402
from sgtm.delivery.engine import DeliveryEngine, EngineOptions, TagRoute  # noqa: E402
from sgtm.delivery.policy import lane_policy  # noqa: E402
from sgtm.delivery.store import Store  # noqa: E402
from sgtm.plugin import Batching, Outbound, Tag  # noqa: E402

BODY = json.dumps({"event_name": "purchase", "value": 12.5, "x": "y" * 300}).encode()


class OneTag(Tag):
    name = "bench_one"


class BatchTag(Tag):
    name = "bench_batch"
    batching = Batching(max_items=100, max_bytes=1_000_000)

    def merge(self, outbounds: list[Outbound]) -> Outbound:
        body = b"[" + b",".join(o.body for o in outbounds) + b"]"
        return Outbound(method="POST", url=outbounds[0].url, body=body)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def disk_mb(directory: str) -> float:
    return sum(p.stat().st_size for p in Path(directory).glob("*")) / 2**20


def make_store(kind: str, directory: str) -> Store:
    if kind == "redis":
        from sgtm.delivery.redis_store import RedisStore

        return RedisStore("redis://127.0.0.1:6379/0", prefix=f"bench-{Path(directory).name}")
    from sgtm.delivery.sqlite_store import SqliteStore

    return SqliteStore(directory)


async def drop(store: Store, kind: str) -> None:
    if kind == "redis":
        redis = store.r  # type: ignore[attr-defined]
        keys = [k async for k in redis.scan_iter(match="{" + store.prefix + "}*")]  # type: ignore[attr-defined]
        for i in range(0, len(keys), 1000):
            await redis.delete(*keys[i : i + 1000])


def engine(store: Store, tag: Tag, **options: float) -> DeliveryEngine:
    route = TagRoute(
        container="bench",
        tag=tag.name,
        type=tag,
        settings=None,
        policy=lane_policy(tag, None, 6 * 3600),
    )
    return DeliveryEngine(
        store,
        {("bench", tag.name): route},
        options=EngineOptions(**options),  # type: ignore[arg-type]
    )


def submission(tag: Tag, url: str, n: int) -> Submission:
    outbound = Outbound(method="POST", url=url, body=BODY, idempotency_key=f"e-{n}")
    return Submission(
        container="bench", tag=tag.name, tag_type=tag.name, outbound=outbound, created=time.time()
    )


def delivered(tag: Tag) -> float:
    return metrics.value("sgtm_deliveries_total", container="bench", tag=tag.name, outcome="done")


async def wait_delivered(tag: Tag, count: int) -> None:
    while delivered(tag) < count:  # noqa: ASYNC110 - a benchmark polling a counter
        await asyncio.sleep(0.01)


async def live(kind: str, url: str, tag: Tag, events: int) -> float:
    metrics.reset()
    directory = tempfile.mkdtemp(prefix="sgtm-bench-")
    eng = engine(make_store(kind, directory), tag)
    await eng.start()
    started = time.perf_counter()
    counter = iter(range(events))

    async def client() -> None:
        for n in counter:
            await eng.submit([submission(tag, url, n)])

    await asyncio.gather(*(client() for _ in range(64)))
    ingested = time.perf_counter() - started
    await wait_delivered(tag, events)
    elapsed = time.perf_counter() - started
    await drop(eng.store, kind)
    await eng.close()
    shutil.rmtree(directory, ignore_errors=True)
    print(f"    ingest (submit) {events / ingested:8.0f} events/s")
    return events / elapsed


async def fill(store: Store, tag: Tag, url: str, count: int, chunk: int = 10_000) -> None:
    from sgtm.delivery.engine import lane_key
    from sgtm.delivery.store import NewJob, Payload, encode_payload

    outbound = Outbound(method="POST", url=url, body=BODY, idempotency_key="e")
    lane = lane_key("bench", tag.name, outbound)
    now = time.time()
    data = encode_payload(
        Payload(container="bench", tag=tag.name, tag_type=tag.name, outbound=outbound, created=now)
    )
    for start in range(0, count, chunk):
        jobs = [NewJob(lane=lane, due=now, created=now, payload=data)]
        await store.enqueue(jobs * min(chunk, count - start))


async def drain(kind: str, url: str, tag: Tag, events: int) -> float:
    metrics.reset()
    directory = tempfile.mkdtemp(prefix="sgtm-bench-")
    store = make_store(kind, directory)
    await store.open()
    await fill(store, tag, url, events)
    await store.close()
    eng = engine(make_store(kind, directory), tag)
    started = time.perf_counter()
    await eng.start()
    await wait_delivered(tag, events)
    elapsed = time.perf_counter() - started
    await drop(eng.store, kind)
    await eng.close()
    shutil.rmtree(directory, ignore_errors=True)
    return events / elapsed


async def backlog(kind: str, tag: Tag, count: int) -> None:
    metrics.reset()
    directory = tempfile.mkdtemp(prefix="sgtm-bench-")
    down = f"http://127.0.0.1:{free_port()}/e"  # nothing listens: the vendor is down
    eng = engine(make_store(kind, directory), tag, breaker_open_max=5.0)
    await eng.start()
    await eng.submit([submission(tag, down, n) for n in range(50)])  # opens the breaker
    await asyncio.sleep(1.0)
    before = rss_mb()
    started = time.perf_counter()
    await fill(eng.store, tag, down, count)
    elapsed = time.perf_counter() - started
    await asyncio.sleep(3.0)  # the engine probes the dead vendor meanwhile
    after = rss_mb()
    depth = sum((await eng.store.depth()).values())
    size = disk_mb(directory)
    print(
        f"  backlog of {depth} events: RSS {before:.0f} MB -> {after:.0f} MB;"
        f" enqueued at {count / elapsed:.0f} events/s; store on disk {size:.0f} MB"
    )
    await drop(eng.store, kind)
    await eng.close()
    shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--store", choices=["sqlite", "redis"], default="sqlite")
    args = parser.parse_args()
    import uvloop

    uvloop.install()
    proc, base = start_vendor()
    url = base + "/e"
    try:
        print(f"store: {args.store}; vendor on loopback in its own process")
        for tag in (OneTag(), BatchTag()):
            label = "1 event/request" if tag.batching is None else "100 events/request"
            print(f"  live, {label}:")
            rate = asyncio.run(live(args.store, url, tag, args.events))
            print(f"    delivered       {rate:8.0f} events/s")
            rate = asyncio.run(drain(args.store, url, tag, args.events))
            print(f"  drain after an outage, {label}: {rate:8.0f} events/s")
        if args.backlog:
            asyncio.run(backlog(args.store, OneTag(), args.backlog))
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
