"""HTTP client benchmark for the delivery transport: requests/s to a loopback vendor.

    .venv/bin/python bench/transport.py [--requests 5000] [--concurrency 32]

Compares plain httpx.AsyncClient, httpx over the httpx-aiohttp transport (if installed) and
aiohttp.ClientSession, each with one pooled keep-alive client POSTing a 600-byte JSON body with
`concurrency` requests in flight. The vendor runs in its own process. Figures are in
docs/operations.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx

HERE = Path(__file__).resolve().parent
BODY = json.dumps({"data": [{"event_name": "purchase", "value": 12.5, "x": "y" * 500}]}).encode()
HEADERS = {"Content-Type": "application/json", "Idempotency-Key": "k" * 32}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_vendor() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "_vendor.py"), str(port)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/count", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("vendor did not start")


async def run(send: Callable[[], Awaitable[int]], requests: int, concurrency: int) -> float:
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            status = await send()
            assert status == 200, status

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return requests / (time.perf_counter() - started)


async def bench_httpx(url: str, requests: int, concurrency: int) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:

        async def send() -> int:
            response = await client.post(url, content=BODY, headers=HEADERS)
            return response.status_code

        await run(send, 200, concurrency)  # warm the pool
        return await run(send, requests, concurrency)


async def bench_httpx_aiohttp(url: str, requests: int, concurrency: int) -> float | None:
    try:
        from httpx_aiohttp import AiohttpTransport
    except ImportError:
        return None
    transport = AiohttpTransport()
    async with httpx.AsyncClient(transport=transport) as client:

        async def send() -> int:
            response = await client.post(url, content=BODY, headers=HEADERS)
            return response.status_code

        await run(send, 200, concurrency)
        return await run(send, requests, concurrency)


async def bench_aiohttp(url: str, requests: int, concurrency: int) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send() -> int:
            async with session.post(url, data=BODY, headers=HEADERS) as response:
                await response.read()
                return response.status

        await run(send, 200, concurrency)
        return await run(send, requests, concurrency)


async def bench_sgtm_transport(url: str, requests: int, concurrency: int) -> float:
    sys.path.insert(0, str(HERE.parent))
    from sgtm.delivery.transport import Transport

    transport = Transport()
    await transport.start()
    try:

        async def send() -> int:
            return (await transport.send("POST", url, HEADERS, BODY, 10.0)).status

        await run(send, 200, concurrency)
        return await run(send, requests, concurrency)
    finally:
        await transport.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    proc, base = start_vendor()
    url = base + "/e"
    try:
        print(f"{args.requests} POSTs, {args.concurrency} in flight, loopback, pid {os.getpid()}")
        for name, bench in (
            ("httpx.AsyncClient", bench_httpx),
            ("httpx + httpx-aiohttp", bench_httpx_aiohttp),
            ("aiohttp.ClientSession", bench_aiohttp),
            ("sgtm Transport (aiohttp)", bench_sgtm_transport),
        ):
            rate = asyncio.run(bench(url, args.requests, args.concurrency))  # type: ignore[operator]
            shown = "not installed" if rate is None else f"{rate:8.0f} req/s"
            print(f"  {name:26} {shown}")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
