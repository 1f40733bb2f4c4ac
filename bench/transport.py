"""HTTP client benchmark for the delivery transport: requests/s and CPU per request to a
loopback vendor.

    .venv/bin/python bench/transport.py [--requests 5000] [--concurrency 32] [--rounds 3]
    .venv/bin/python bench/transport.py --clients aiohttp,sgtm,httpx

Each client (one pooled keep-alive client POSTing a 600-byte JSON body with `concurrency`
requests in flight) runs once per round, in turn, against the same vendor in its own process.
Printed: medians of requests/s and of this process's CPU per request (the cost a send puts on
a worker's event loop), and their ratios to the first client of `--clients`. The decision these
figures made is in bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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


@dataclass
class Measure:
    rate: float  # requests/s
    cpu_us: float  # this process's CPU per request (the vendor is another process)


async def run(send: Callable[[], Awaitable[int]], requests: int, concurrency: int) -> Measure:
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            status = await send()
            assert status == 200, status

    started = time.perf_counter()
    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Measure(
        rate=requests / (time.perf_counter() - started),
        cpu_us=(time.process_time() - cpu) / requests * 1e6,
    )


async def bench_httpx(url: str, requests: int, concurrency: int) -> Measure:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:

        async def send() -> int:
            response = await client.post(url, content=BODY, headers=HEADERS)
            return response.status_code

        await run(send, 200, concurrency)  # warm the pool
        return await run(send, requests, concurrency)


async def bench_aiohttp(url: str, requests: int, concurrency: int) -> Measure:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send() -> int:
            async with session.post(url, data=BODY, headers=HEADERS) as response:
                await response.read()
                return response.status

        await run(send, 200, concurrency)
        return await run(send, requests, concurrency)


async def bench_sgtm_transport(url: str, requests: int, concurrency: int) -> Measure:
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


CLIENTS: dict[str, Callable[[str, int, int], Awaitable[Measure]]] = {
    "aiohttp": bench_aiohttp,
    "sgtm": bench_sgtm_transport,
    "httpx": bench_httpx,
}
LABELS = {
    "aiohttp": "aiohttp.ClientSession",
    "sgtm": "sgtm Transport",
    "httpx": "httpx.AsyncClient",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="each client once per round")
    parser.add_argument(
        "--clients", default="aiohttp,sgtm", help=f"from {','.join(CLIENTS)} (first: baseline)"
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.clients.split(",") if n.strip()]
    if not names or set(names) - set(CLIENTS):
        parser.error(f"--clients: choose from {', '.join(CLIENTS)}")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    proc, base = start_vendor()
    url = base + "/e"
    results: dict[str, list[Measure]] = {name: [] for name in names}
    try:
        print(
            f"{args.requests} POSTs of {len(BODY)} bytes, {args.concurrency} in flight, loopback,"
            f" {args.rounds} rounds"
        )
        for _ in range(args.rounds):
            for name in names:
                results[name].append(
                    asyncio.run(CLIENTS[name](url, args.requests, args.concurrency))
                )
    finally:
        proc.terminate()
        proc.wait()
    baseline = names[0]
    base_rate = statistics.median(m.rate for m in results[baseline])
    base_cpu = statistics.median(m.cpu_us for m in results[baseline])
    header = f"{'client':<24} {'req/s':>8} {'CPU us/req':>11} {'x req/s':>8} {'x CPU':>7}"
    print(header + "  rounds (req/s)")
    for name in names:
        rate = statistics.median(m.rate for m in results[name])
        cpu = statistics.median(m.cpu_us for m in results[name])
        rounds = ", ".join(f"{m.rate:.0f}" for m in results[name])
        print(
            f"{LABELS[name]:<24} {rate:8.0f} {cpu:11.1f} {rate / base_rate:8.2f}"
            f" {cpu / base_cpu:7.2f}  {rounds}"
        )
    print(f"(medians; ratios to {LABELS[baseline]} in the same run)")


if __name__ == "__main__":
    main()
