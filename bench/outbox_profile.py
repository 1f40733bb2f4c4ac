"""The ingest worker's CPU per request with the SQLite outbox on, in process (issue #10).

    .venv/bin/python bench/outbox_profile.py [--requests 6000] [--connections 32] [--cprofile]

`sgtm serve --role ingest` (create_app on bench/delivery.py's container: bench/ingest.py's tags
sending, so every hit's jobs are sealed, encoded and committed to a real SQLite outbox in a
temporary directory) and the same container dry-run (every tag `dry_run`, nothing stored) are
driven through their ASGI apps with the request mix of bench/ingest.py, `--connections` requests
at a time (as wrk's connections: group commit needs company), no sockets or uvicorn. It prints
microseconds of CPU per request of each (the process's CPU, the SQLite writer thread's included)
and their difference: what storing a request's jobs costs the ingest worker.

`--cprofile` profiles the event loop's thread of the outbox run (the writer thread's own work is
in `--cprofile-writer`, a second profile of that thread).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import os
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ingest import CONFIG, CONTAINER_YAML, Hit, build_mix, write_if_changed  # noqa: E402
from ingest_profile import call, scope_of  # noqa: E402


async def lifespan(app: Any) -> tuple[asyncio.Task[None], asyncio.Queue[dict[str, Any]]]:
    """Start the app's lifespan (the delivery engine opens its store); the task and its inbox."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message["type"].endswith(".failed"):
            raise SystemExit(message.get("message"))
        if message["type"] == "lifespan.startup.complete":
            started.set()

    await inbox.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, inbox.get, send))
    await started.wait()
    return task, inbox


async def drive(app: Any, mix: list[Hit], count: int, connections: int) -> dict[int, int]:
    scopes = [scope_of(hit) for hit in mix]
    statuses: dict[int, int] = {}
    todo = iter(range(count))

    async def connection() -> None:
        for i in todo:
            status = await call(app, scopes[i % len(scopes)], mix[i % len(mix)].body)
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(connection() for _ in range(connections)))
    return statuses


async def measure(app: Any, mix: list[Hit], args: argparse.Namespace, profile: bool) -> float:
    task, inbox = await lifespan(app)
    await drive(app, mix, args.warmup, args.connections)
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    writer = writer_clock()
    ticks = writer_ticks()
    main_ticks = thread_ticks(threading.get_native_id())
    writer_started = time.clock_gettime(writer) if writer is not None else 0.0
    started = time.process_time()
    statuses = await drive(app, mix, args.requests, args.connections)
    seconds = time.process_time() - started
    if profiler is not None:
        profiler.disable()
    if writer is not None:
        writer_seconds = time.clock_gettime(writer) - writer_started
        user, system = (b - a for a, b in zip(ticks, writer_ticks(), strict=True))
        loop_ticks = thread_ticks(threading.get_native_id())
        main_user, main_system = (b - a for a, b in zip(main_ticks, loop_ticks, strict=True))
        print(
            f"  of which the SQLite writer thread: {writer_seconds / args.requests * 1e6:.1f} us"
            f" ({system / (user + system or 1):.0%} system);"
            f" the event loop's thread: {main_system / (main_user + main_system or 1):.0%} system"
        )
    if args.keep:
        import shutil

        shutil.copy(Path(os.environ["SGTM_DATA_DIR"]) / "sgtm.db", args.keep)
    await inbox.put({"type": "lifespan.shutdown"})
    await task
    if set(statuses) != {200}:
        raise SystemExit(f"unexpected statuses {statuses}")
    if profiler is not None:
        stats = pstats.Stats(profiler).sort_stats(args.sort)
        stats.print_stats(args.top)
        if args.callers:
            stats.print_callers(args.callers)
    return seconds / args.requests * 1e6


def writer_clock() -> int | None:
    """The CPU clock of the SQLite writer thread, if one runs."""
    for thread in threading.enumerate():
        if thread.name == "sgtm-sqlite" and thread.ident is not None:
            return time.pthread_getcpuclockid(thread.ident)
    return None


def writer_ticks() -> tuple[int, int]:
    """The writer thread's user and system clock ticks (/proc), (0, 0) without one."""
    for thread in threading.enumerate():
        if thread.name == "sgtm-sqlite" and thread.native_id is not None:
            return thread_ticks(thread.native_id)
    return 0, 0


def thread_ticks(native_id: int) -> tuple[int, int]:
    stat = Path(f"/proc/self/task/{native_id}/stat").read_text()
    fields = stat.rpartition(")")[2].split()
    return int(fields[11]), int(fields[12])


def profile_writer(args: argparse.Namespace) -> None:
    """cProfile the SQLite writer thread: it is started by the store, so patch its target."""
    from sgtm.delivery import sqlite_store

    run = sqlite_store.SqliteStore._run

    def profiled(self: Any, ready: Any) -> None:
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            run(self, ready)
        finally:
            profiler.disable()
            print(f"-- writer thread {threading.current_thread().name}")
            stats = pstats.Stats(profiler).sort_stats(args.sort)
        stats.print_stats(args.top)
        if args.callers:
            stats.print_callers(args.callers)

    sqlite_store.SqliteStore._run = profiled  # type: ignore[method-assign]


async def run(args: argparse.Namespace) -> None:
    from delivery import pace_container

    from sgtm.app import create_app
    from sgtm.config import load_containers
    from sgtm.plugins import load_registry

    write_if_changed(CONFIG, CONTAINER_YAML)
    mix = build_mix()
    registry = load_registry()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        outbox = Path(tmp) / "outbox.yaml"
        # Port 9 (discard): nothing is sent by an ingest-only process anyway.
        outbox.write_text(pace_container("http://127.0.0.1:9", "sqlite", "bench"))
        os.environ["SGTM_DATA_DIR"] = str(Path(tmp) / "data")
        for name in args.scenarios.split(","):
            config = outbox if name == "outbox" else CONFIG
            role = "ingest" if name == "outbox" else "all"
            app = create_app(load_containers([config], registry), role=role)
            profile = args.cprofile and name == "outbox"
            results[name] = await measure(app, mix, args, profile)
            print(f"{name}: {results[name]:7.1f} us CPU/request")
    if {"outbox", "dryrun"} <= set(results):
        print(f"outbox - dryrun: {results['outbox'] - results['dryrun']:.1f} us/request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--warmup", type=int, default=600)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--scenarios", default="dryrun,outbox")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--cprofile-writer", action="store_true")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--keep", help="copy the outbox file here after the run")
    parser.add_argument("--callers", help="print the callers of functions matching this")
    args = parser.parse_args()
    from sgtm import logs

    logs.setup(args.log_level)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)
    if args.cprofile_writer:
        profile_writer(args)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
