"""create_app(): the Starlette application, its routes, middleware and lifespan.

The tagging endpoint is a pure ASGI app mounted at `/`: it routes by Host to a container, takes
the client IP through that container's privacy policy (trusted proxies, anonymization), reads the
body within the limit and hands a `HitRequest` to the container. `/healthz`, `/readyz` and
`/metrics` (admin token) sit beside it. The lifespan owns the delivery (Starlette's lifespan
pattern), so its connections open and close with the server.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from sgtm import metrics
from sgtm.config import ContainerSpec, load_containers
from sgtm.container import Container, DedupeStore
from sgtm.dedupe import MemoryDedupe
from sgtm.delivery.base import Delivery
from sgtm.delivery.engine import DeliveryEngine
from sgtm.delivery.setup import build_engine
from sgtm.event import EventData
from sgtm.middleware import AccessLogMiddleware, BodyLimitMiddleware
from sgtm.plugin import ClientResponse
from sgtm.plugins import registry
from sgtm.request import HitRequest

DEFAULT_MAX_BODY = 1024 * 1024


class SiteRouter:
    """Host header -> Container; a container without hosts is the default."""

    def __init__(self, containers: Sequence[Container]) -> None:
        self.by_host: dict[str, Container] = {}
        self.default: Container | None = None
        for container in containers:
            if not container.spec.hosts:
                self.default = container
            for host in container.spec.hosts:
                self.by_host[host] = container

    def route(self, host: str) -> Container | None:
        return self.by_host.get(host, self.default)


def host_of(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"host":
            host: str = value.decode("latin-1").strip().lower()
            if host.startswith("["):  # [::1]:8080
                return host.split("]")[0] + "]"
            return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    server = scope.get("server")
    return str(server[0]) if server else ""


class TaggingApp:
    def __init__(self, router: SiteRouter) -> None:
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = scope.setdefault("sgtm", {})
        host = host_of(scope)
        info["host"] = host
        container = self.router.route(host)
        if container is None:
            await _send(send, ClientResponse(status=404, body=b"unknown host\n"))
            return
        info["container"] = container.name
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            if name in headers:
                headers[name] += ("; " if name == "cookie" else ", ") + value
            else:
                headers[name] = value
        peer = scope.get("client")
        peer_ip = str(peer[0]) if peer else None
        privacy = container.spec.privacy
        client_ip = privacy.resolve(peer_ip, headers.get("x-forwarded-for"))
        scheme = str(scope.get("scheme", "http"))
        if privacy.is_trusted(peer_ip):
            scheme = headers.get("x-forwarded-proto", scheme).split(",")[0].strip() or scheme
        body = await _read_body(receive)
        request = HitRequest(
            method=scope["method"],
            path=scope["path"],
            query_string=scope["query_string"].decode("latin-1"),
            headers=headers,
            body=body,
            client_ip=client_ip,
            host=host,
            scheme=scheme,
        )
        result = await container.handle(request)
        info["client"] = result.client
        info["events"] = result.event_count
        await _send(send, result.response)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send(send: Send, response: ClientResponse) -> None:
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()
    ]
    headers.extend((b"set-cookie", c.header_value().encode("latin-1")) for c in response.cookies)
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


def create_app(
    specs: Sequence[ContainerSpec],
    delivery: Delivery | None = None,
    *,
    max_body: int | None = None,
) -> Starlette:
    dedupe: DedupeStore
    if delivery is None:
        # The durable engine; its store also keeps dedupe keys, so they outlive a restart.
        engine = build_engine(specs)
        delivery, dedupe = engine, engine.store
    else:
        dedupe = MemoryDedupe()
    containers = [Container(spec, delivery, dedupe) for spec in specs]
    if isinstance(delivery, DeliveryEngine):
        by_name = {c.name: c for c in containers}

        async def follow_ups(container: str, tag: str, events: list[EventData]) -> None:
            found = by_name.get(container)
            if found is not None:  # a container the config no longer has: nothing runs them
                await found.follow_up(tag, events)

        delivery.follow_ups = follow_ups
    router = SiteRouter(containers)
    state = {"ready": False}
    admin_token = os.environ.get("SGTM_ADMIN_TOKEN", "")
    limit = max_body or int(os.environ.get("SGTM_MAX_BODY_BYTES", DEFAULT_MAX_BODY))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await delivery.start()
        state["ready"] = True
        try:
            yield
        finally:
            state["ready"] = False
            await delivery.close()

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        if state["ready"] and containers:
            return PlainTextResponse(f"ready: {len(containers)} container(s)\n")
        return PlainTextResponse("not ready\n", status_code=503)

    async def metrics_endpoint(request: Request) -> Response:
        if not admin_token:
            return PlainTextResponse("not found\n", status_code=404)
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), admin_token.encode()):
            return PlainTextResponse("unauthorized\n", status_code=401)
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/readyz", readyz, methods=["GET", "HEAD"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Mount("/", app=TaggingApp(router)),
        ],
        middleware=[
            Middleware(AccessLogMiddleware),
            Middleware(BodyLimitMiddleware, max_bytes=limit),
        ],
        lifespan=lifespan,
    )
    app.state.containers = containers
    app.state.delivery = delivery
    return app


def app_from_env() -> Starlette:
    """Factory for `uvicorn --factory` with several workers: config paths in SGTM_CONFIG."""
    from sgtm import logs

    logs.setup(os.environ.get("SGTM_LOG_LEVEL", "info"))
    paths: list[str | Path] = [
        p for p in os.environ.get("SGTM_CONFIG", "config").split(os.pathsep) if p
    ]
    return create_app(load_containers(paths, registry()))
