"""A minimal loopback vendor for the benchmarks: answers every request 200 with an empty body.

Run as its own process (`python bench/_vendor.py PORT [DELAY_MS]`) so the client being measured
has a core to itself; uvicorn with uvloop and httptools, one worker.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import uvicorn

DELAY = float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.0
COUNT = 0


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global COUNT
    if scope["type"] != "http":
        return
    while True:
        message = await receive()
        if not message.get("more_body"):
            break
    if scope["path"] == "/count":
        body = str(COUNT).encode()
    else:
        COUNT += 1
        body = b""
        if DELAY:
            await asyncio.sleep(DELAY)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
        lifespan="off",
        loop="uvloop",
        http="httptools",
    )
