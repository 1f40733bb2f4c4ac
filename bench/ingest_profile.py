"""The CPU cost of sgtm's request path, in process: no sockets, no uvicorn, no load generator.

    .venv/bin/python bench/ingest_profile.py [--requests 20000] [--log-level info] [--cprofile]

Calls the ASGI app of `sgtm serve` (create_app on bench/ingest.yaml) and bench/bare_app.py
directly with the request mix of bench/ingest.py, and prints microseconds of CPU per request
for each. Logs go to /dev/null through sgtm's own JSON handler, so their formatting cost counts.
Every tag is dry_run, so delivery is never called: a stub stands in for the outbox engine.

Being single-process and network-free, it is far less noisy than bench/ingest.py on a shared
machine: use it to compare a change to sgtm/ before and after (same --requests, several runs).
`--cprofile` prints the top functions (cProfile's overhead inflates small, frequent calls).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bare_app  # noqa: E402
from ingest import CONFIG, CONTAINER_YAML, Hit, build_mix, write_if_changed  # noqa: E402


class NoDelivery:
    async def start(self) -> None:
        pass

    async def submit(self, submissions: list[Any]) -> None:
        raise AssertionError("the bench container is dry_run: nothing is submitted")

    async def close(self) -> None:
        pass


def scope_of(hit: Hit) -> dict[str, Any]:
    """The ASGI scope uvicorn (httptools) builds for this request."""
    path, _, query = hit.target.partition("?")
    headers = [(b"host", b"127.0.0.1:8080")]
    headers += [(k.lower().encode(), v.encode("latin-1")) for k, v in hit.headers]
    if hit.body:
        headers.append((b"content-length", str(len(hit.body)).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 50123),
        "scheme": "http",
        "method": hit.method,
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": headers,
        "state": {},
    }


async def call(app: Any, scope: dict[str, Any], body: bytes) -> int:
    """One request through the ASGI app, as uvicorn would hand it over; its status."""
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # http.disconnect never comes within the request
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(dict(scope), receive, send)
    return status


async def drive(app: Any, mix: list[Hit], count: int) -> tuple[float, dict[int, int]]:
    scopes = [scope_of(hit) for hit in mix]
    statuses: dict[int, int] = {}
    started = time.process_time()
    for i in range(count):
        status = await call(app, scopes[i % len(scopes)], mix[i % len(mix)].body)
        statuses[status] = statuses.get(status, 0) + 1
    return time.process_time() - started, statuses


async def run(args: argparse.Namespace) -> None:
    from sgtm.app import create_app
    from sgtm.config import load_containers
    from sgtm.plugins import load_registry

    write_if_changed(CONFIG, CONTAINER_YAML)
    mix = build_mix()
    sgtm_app = create_app(load_containers([CONFIG], load_registry()), delivery=NoDelivery())
    apps = {"sgtm": sgtm_app, "bare": bare_app.create_app()}
    warm = min(2000, args.requests) if args.warmup is None else args.warmup
    results = {}
    for name in args.apps.split(","):
        app = apps[name]
        await drive(app, mix, warm)
        if args.cprofile and name == "sgtm":
            profiler = cProfile.Profile()
            profiler.enable()
            seconds, statuses = await drive(app, mix, args.requests)
            profiler.disable()
        else:
            seconds, statuses = await drive(app, mix, args.requests)
        results[name] = seconds / args.requests * 1e6
        print(f"{name}: {results[name]:7.1f} us CPU/request  statuses {statuses}")
    if len(results) < 2:
        return
    events = sum(h.events for h in mix) / len(mix)
    print(
        f"sgtm - bare: {results['sgtm'] - results['bare']:.1f} us/request "
        f"({(results['sgtm'] - results['bare']) / events:.1f} us/event), log level {args.log_level}"
    )
    if args.cprofile:
        stats = pstats.Stats(profiler)
        stats.sort_stats(args.sort).print_stats(args.top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--log-level", default=os.environ.get("SGTM_LOG_LEVEL", "info"))
    parser.add_argument("--cprofile", action="store_true", help="profile sgtm's requests")
    parser.add_argument("--sort", default="tottime", help="pstats sort key (tottime, cumulative)")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--apps", default="sgtm,bare", help="which apps to drive: sgtm, bare")
    parser.add_argument("--warmup", type=int, help="unmeasured requests first (min(2000, N))")
    args = parser.parse_args()
    if not 0 < args.requests <= 1_000_000:
        parser.error("--requests must be in (0, 1000000]")
    from sgtm import logs

    logs.setup(args.log_level)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
