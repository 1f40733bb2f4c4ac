"""Delivery benchmarks: the pace of delivery at full load, and the engine alone.

    .venv/bin/python bench/delivery.py [--store sqlite|redis] [--rounds 2] [--layouts all,split]
    .venv/bin/python bench/delivery.py --engine [--events 20000] [--backlog 1000000]

1. pace (the default): `sgtm serve` at full load for `--duration` s (wrk, or the built-in
   generator, with bench/ingest.py's GA4 mix and connections) on a container whose three
   `http_request` tags (bench/ingest.py's, not dry-run) send to a loopback vendor through the
   real outbox. The pace is the sends done when the load stops divided by all the sends it
   caused (1.0: delivery kept up); the drain is how long the rest took. Each layout runs in
   turn, `--rounds` times: `all` (one process ingests and delivers) and `split` (`--role
   ingest` and `--role deliver` processes on one outbox).
2. `--engine`: the engine in process. live: 64 concurrent "requests" each submit one event
   while the engine sends; events/s delivered, one request per event and batched (100 per
   request). drain: the outbox already holds the events (the vendor was down); events/s until
   it is empty.
3. `--backlog N`: N events enqueued while the vendor is down (the breaker open); the process's
   RSS before and after shows the backlog lives on disk, not in memory.

The vendor runs in its own process (bench/_vendor.py). Figures are in bench/README.md and
docs/operations.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# The checkout last: the installed package (or PYTHONPATH=dir with an older copy of sgtm/ and
# sgtm_plugins/, for a before/after) comes first.
sys.path.append(str(HERE.parent))
sys.path.insert(0, str(HERE))

import ingest  # noqa: E402
from transport import free_port, start_vendor  # noqa: E402

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


HISTORY = {"seconds": 24 * 3600.0}  # the delivery history's retention (--history; 0: none)


def make_store(kind: str, directory: str) -> Store:
    if kind == "redis":
        from sgtm.delivery.redis_store import RedisStore

        prefix = f"bench-{Path(directory).name}"
        return RedisStore("redis://127.0.0.1:6379/0", prefix=prefix, history=HISTORY["seconds"])
    from sgtm.delivery.sqlite_store import SqliteStore

    return SqliteStore(directory, history=HISTORY["seconds"])


async def drop(store: Store, kind: str) -> None:
    if kind == "redis":
        redis = store.r  # type: ignore[attr-defined]
        keys = [k async for k in redis.scan_iter(match="{" + store.prefix + "}*")]  # type: ignore[attr-defined]
        for i in range(0, len(keys), 1000):
            await redis.delete(*keys[i : i + 1000])


def engine(store: Store, tag: Tag, *, sends: bool = True, **options: float) -> DeliveryEngine:
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
        sends=sends,
    )


def submission(tag: Tag, url: str, n: int) -> Submission:
    outbound = Outbound(method="POST", url=url, body=BODY, idempotency_key=f"e-{n}")
    return Submission(
        container="bench", tag=tag.name, tag_type=tag.name, outbound=outbound, created=time.time()
    )


def delivered(eng: DeliveryEngine, tag: Tag) -> float:
    return eng.metrics.value(
        "sgtm_deliveries_total", container="bench", tag=tag.name, outcome="done"
    )


async def wait_delivered(eng: DeliveryEngine, tag: Tag, count: int) -> None:
    while delivered(eng, tag) < count:  # noqa: ASYNC110 - a benchmark polling a counter
        await asyncio.sleep(0.01)


@dataclass
class EngineRun:
    """Events/s, and CPU per event: of the event loop's thread, and of the whole process (the
    SQLite writer thread included). The vendor is another process: not counted."""

    rate: float
    loop_us: float
    process_us: float

    def __str__(self) -> str:
        return (
            f"{self.rate:8.0f} events/s; CPU per event {self.loop_us:5.0f} us event loop,"
            f" {self.process_us:5.0f} us process"
        )


class CpuClock:
    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.loop = time.thread_time()
        self.process = time.process_time()

    def run(self, events: int) -> EngineRun:
        return EngineRun(
            rate=events / (time.perf_counter() - self.wall),
            loop_us=(time.thread_time() - self.loop) / events * 1e6,
            process_us=(time.process_time() - self.process) / events * 1e6,
        )


async def live(kind: str, url: str, tag: Tag, events: int) -> EngineRun:
    directory = tempfile.mkdtemp(prefix="sgtm-bench-")
    eng = engine(make_store(kind, directory), tag)
    await eng.start()
    clock = CpuClock()
    started = time.perf_counter()
    counter = iter(range(events))

    async def client() -> None:
        for n in counter:
            await eng.submit([submission(tag, url, n)])

    await asyncio.gather(*(client() for _ in range(64)))
    ingested = time.perf_counter() - started
    await wait_delivered(eng, tag, events)
    run = clock.run(events)
    await drop(eng.store, kind)
    await eng.close()
    shutil.rmtree(directory, ignore_errors=True)
    print(f"    ingest (submit) {events / ingested:8.0f} events/s")
    return run


async def submit_only(kind: str, url: str, tag: Tag, events: int) -> EngineRun:
    """An ingest process's part (`--role ingest`): 64 concurrent callers each submit one event
    at a time, the engine stores them and never sends; CPU per event of storing alone."""
    directory = tempfile.mkdtemp(prefix="sgtm-bench-")
    eng = engine(make_store(kind, directory), tag, sends=False)
    await eng.start()
    counter = iter(range(events))

    async def client() -> None:
        for n in counter:
            await eng.submit([submission(tag, url, n)])

    clock = CpuClock()
    await asyncio.gather(*(client() for _ in range(64)))
    run = clock.run(events)
    await drop(eng.store, kind)
    await eng.close()
    shutil.rmtree(directory, ignore_errors=True)
    return run


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


async def drain(kind: str, url: str, tag: Tag, events: int) -> EngineRun:
    directory = tempfile.mkdtemp(prefix="sgtm-bench-")
    store = make_store(kind, directory)
    await store.open()
    await fill(store, tag, url, events)
    await store.close()
    eng = engine(make_store(kind, directory), tag)
    clock = CpuClock()
    await eng.start()
    await wait_delivered(eng, tag, events)
    run = clock.run(events)
    await drop(eng.store, kind)
    await eng.close()
    shutil.rmtree(directory, ignore_errors=True)
    return run


async def backlog(kind: str, tag: Tag, count: int) -> None:
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


# -- pace at full load ----------------------------------------------------------------------------

REDIS_URL = "redis://127.0.0.1:6379/0"
LAYOUTS = {
    # name: the `sgtm serve` processes, as (--role, what the load goes to)
    "all": [("all", True)],
    "split": [("ingest", True), ("deliver", False)],
}


def pace_container(vendor: str, store: str, prefix: str) -> str:
    """bench/ingest.py's container with its three tags sending to the loopback vendor."""
    lines = ingest.CONTAINER_YAML.splitlines(keepends=True)
    text = "".join(line for line in lines if not line.startswith("#"))
    for name in ("collector", "orders", "crm"):
        text = text.replace(f"https://{name}.example.invalid", f"{vendor}/{name}")
    text = text.replace("    dry_run: true\n", "")
    assert "example.invalid" not in text and "dry_run" not in text, "ingest.py's container changed"
    header = "# Written by bench/delivery.py: bench/ingest.py's container, its tags sending.\n"
    if store == "redis":
        text += f"delivery: {{store: redis, url: '{REDIS_URL}', prefix: {prefix}}}\n"
    return header + text


class Outbox:
    """How many deliveries wait in the benchmark's outbox (read beside the servers)."""

    def __init__(self, store: str, data_dir: Path, prefix: str) -> None:
        self.store = store
        self.data_dir = data_dir
        self.prefix = prefix

    def depth(self) -> int:
        if self.store == "redis":
            import redis

            with redis.Redis.from_url(REDIS_URL) as client:
                return int(client.hlen("{" + self.prefix + "}:jobs"))
        path = self.data_dir / "sgtm.db"
        if not path.exists():
            return 0
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def drop(self) -> None:
        if self.store == "redis":
            import redis

            with redis.Redis.from_url(REDIS_URL) as client:
                keys = list(client.scan_iter(match="{" + self.prefix + "}*", count=1000))
                for i in range(0, len(keys), 1000):
                    client.delete(*keys[i : i + 1000])
        shutil.rmtree(self.data_dir, ignore_errors=True)


def vendor_count(base: str) -> int:
    import httpx

    return int(httpx.get(base + "/count", timeout=5).text)


def wait_until(predicate: Callable[[], bool], limit: float, poll: float = 0.05) -> float:
    """Seconds until `predicate()` held; raises SystemExit after `limit`."""
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > limit:
            raise SystemExit(f"not reached within {limit:.0f} s")
        time.sleep(poll)
    return time.perf_counter() - started


@dataclass
class PaceRun:
    layout: str
    hits_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0
    sent_at_stop: int = 0
    caused: int = 0
    waiting_at_stop: int = 0
    drain_s: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # % of one core over the load

    @property
    def pace(self) -> float:
        return self.sent_at_stop / self.caused if self.caused else float("nan")


def pace_run(
    layout: str,
    args: argparse.Namespace,
    wrk: str | None,
    vendor: tuple[Any, str],
    workdir: Path,
    number: int,
) -> PaceRun:
    vendor_proc, vendor_url = vendor
    prefix = f"bench-pace-{os.getpid()}-{number}"
    data_dir = workdir / f"data-{number}"
    config = workdir / f"pace-{number}.yaml"
    config.write_text(pace_container(vendor_url, args.store, prefix))
    outbox = Outbox(args.store, data_dir, prefix)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SGTM_")}
    env["SGTM_DATA_DIR"] = str(data_dir)
    bindir = Path(sys.executable).parent
    servers: list[tuple[ingest.Server, bool]] = []
    for role, takes_load in LAYOUTS[layout]:
        argv = [str(bindir / "sgtm"), "serve", "-c", str(config), "--log-level", args.log_level]
        if role != "all":
            argv += ["--role", role]
        log = workdir / f"sgtm-{number}-{role}.log"
        servers.append((ingest.Server(f"sgtm {role}", argv, env, "/healthz", log), takes_load))
    mix = ingest.build_mix()
    run = PaceRun(layout)
    try:
        for server, _ in servers:
            server.start()
        target = next(server for server, takes_load in servers if takes_load)
        ingest.smoke(target, mix, 200)

        def load(duration: float) -> dict[str, Any]:
            if wrk:
                return ingest.wrk_load(wrk, target.host, args.connections, args.threads, duration)
            return ingest.python_load(target.host, mix, args.connections, duration)

        if args.warmup > 0:
            load(args.warmup)
        wait_until(lambda: outbox.depth() == 0, 300)
        before = vendor_count(vendor_url)
        pids = {server.name.removeprefix("sgtm "): server.proc.pid for server, _ in servers}  # type: ignore[union-attr]
        pids["vendor"] = vendor_proc.pid
        cpu_before = {name: ingest.cpu_seconds(pid) for name, pid in pids.items()}
        started = time.perf_counter()
        result = load(args.duration)
        elapsed = time.perf_counter() - started
        run.sent_at_stop = vendor_count(vendor_url) - before
        stopped = time.perf_counter()
        run.cpu = {
            name: 100 * (ingest.cpu_seconds(pid) - cpu_before[name]) / elapsed
            for name, pid in pids.items()
        }
        run.waiting_at_stop = outbox.depth()
        wait_until(lambda: outbox.depth() == 0, 600)
        run.drain_s = time.perf_counter() - stopped
        run.caused = vendor_count(vendor_url) - before
        run.hits_per_s = result["rps"]
        run.p50_ms = result["p50_ms"]
        run.p99_ms = result["p99_ms"]
        run.errors = int(result["non_2xx_3xx"] + result["socket_errors"])
    finally:
        for server, _ in servers:
            server.stop()
        outbox.drop()
    return run


def pace(args: argparse.Namespace) -> list[PaceRun]:
    wrk = shutil.which("wrk") if args.loadgen in ("auto", "wrk") else None
    if args.loadgen == "wrk" and wrk is None:
        raise SystemExit("wrk is not on PATH (apt-get install wrk), or use --loadgen python")
    layouts = [name.strip() for name in args.layouts.split(",") if name.strip()]
    unknown = set(layouts) - set(LAYOUTS)
    if unknown:
        raise SystemExit(f"--layouts: unknown {sorted(unknown)}; choose from {sorted(LAYOUTS)}")
    workdir = Path(tempfile.mkdtemp(prefix="sgtm-pace-"))
    vendor = start_vendor()
    load = f"wrk -t{args.threads}" if wrk else "the built-in asyncio generator"
    print(
        f"pace at full load: {load}, {args.connections} connections, {args.duration:g} s,"
        f" store {args.store}, {os.cpu_count()} CPUs, sgtm log level {args.log_level}"
    )
    runs: list[PaceRun] = []
    try:
        number = 0
        for _ in range(args.rounds):
            for layout in layouts:
                number += 1
                runs.append(pace_run(layout, args, wrk, vendor, workdir, number))
                print_pace_run(runs[-1])
    finally:
        vendor[0].terminate()
        vendor[0].wait()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print_pace_summary(runs, layouts)
    return runs


def print_pace_run(run: PaceRun) -> None:
    cpu = " ".join(f"{name} {value:.0f}%" for name, value in run.cpu.items())
    print(
        f"  {run.layout:<6} hits/s {run.hits_per_s:6.0f}  p99 {run.p99_ms:6.1f} ms"
        f"  sends caused {run.caused:6d}"
        f"  done at stop {run.sent_at_stop:6d}  pace {run.pace:.3f}"
        f"  drain {run.drain_s:5.1f} s  CPU {cpu}"
        + (f"  ERRORS {run.errors}" if run.errors else "")
    )


def print_pace_summary(runs: list[PaceRun], layouts: list[str]) -> None:
    print()
    for layout in layouts:
        paces = [r.pace for r in runs if r.layout == layout]
        hits = [r.hits_per_s for r in runs if r.layout == layout]
        drains = [r.drain_s for r in runs if r.layout == layout]
        print(
            f"  {layout:<6} pace {statistics.median(paces):.3f}"
            f" (rounds: {', '.join(f'{p:.3f}' for p in paces)});"
            f" drain {statistics.median(drains):.1f} s; hits/s {statistics.median(hits):.0f}"
        )
    if "all" in layouts and "split" in layouts:
        ratio = [
            s.pace / a.pace
            for a, s in zip(
                [r for r in runs if r.layout == "all"],
                [r for r in runs if r.layout == "split"],
                strict=False,
            )
        ]
        print(f"  pace split/all: {', '.join(f'{x:.2f}' for x in ratio)}")


# -- main ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of full load")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load first")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help="all,split")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--log-level", default=os.environ.get("SGTM_LOG_LEVEL", "info"))
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument("--engine", action="store_true", help="the engine in process instead")
    parser.add_argument("--events", type=int, default=20_000, help="--engine: events per part")
    parser.add_argument("--backlog", type=int, default=0, help="events of the backlog part")
    parser.add_argument(
        "--history",
        default="24h",
        help="--engine: the delivery history's retention (0: outcomes are not recorded)",
    )
    args = parser.parse_args()
    from sgtm.delivery.policy import parse_duration

    HISTORY["seconds"] = parse_duration(args.history)
    if not args.engine and not args.backlog:
        pace(args)
        return
    import uvloop

    uvloop.install()
    proc, base = start_vendor()
    url = base + "/e"
    try:
        print(f"store: {args.store}; vendor on loopback in its own process")
        if args.engine:
            run = asyncio.run(submit_only(args.store, url, OneTag(), args.events))
            print(f"  store only (--role ingest), 1 event/request: {run}")
        for tag in (OneTag(), BatchTag()) if args.engine else ():
            label = "1 event/request" if tag.batching is None else "100 events/request"
            print(f"  live, {label}:")
            run = asyncio.run(live(args.store, url, tag, args.events))
            print(f"    delivered       {run}")
            run = asyncio.run(drain(args.store, url, tag, args.events))
            print(f"  drain after an outage, {label}: {run}")
        if args.backlog:
            asyncio.run(backlog(args.store, OneTag(), args.backlog))
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
