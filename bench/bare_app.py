"""The baseline of bench/ingest.py: a bare Starlette app answering 204 on every path and method.

It is served exactly as `sgtm serve` serves sgtm (sgtm/cli.py cmd_serve): uvicorn, one worker,
`log_config=None`, `access_log=False`, `proxy_headers=False`, `server_header=False`; uvicorn picks
uvloop and httptools when installed, as it does for sgtm. The app reads the request body, like
sgtm, so a POST costs the same on both sides of the socket. What sgtm/bare measures is then the
cost of sgtm's own request path over the same server stack.

    .venv/bin/python bench/bare_app.py --port 8099
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

METHODS = ["GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"]


async def no_content(request: Request) -> Response:
    await request.body()
    return Response(status_code=204)


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/", no_content, methods=METHODS),
            Route("/{path:path}", no_content, methods=METHODS),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args()
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=15,
    )


if __name__ == "__main__":
    main()
