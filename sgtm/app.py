"""create_app(): the Starlette application, its routes, middleware and lifespan.

The tagging endpoint is a pure ASGI app mounted at `/`: it routes by Host to a container, reads
the body within the limit and hands the container the `HitRequest` sgtm/ingress.py builds (the
client IP through that container's privacy policy). `/healthz`, `/readyz` and
`/metrics` (admin token) sit beside it. The lifespan owns the delivery (Starlette's lifespan
pattern), so its connections open and close with the server.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal, get_args

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from sgtm.composition import build_engine
from sgtm.config import ContainerSpec, load_containers
from sgtm.container import Container, DedupeStore
from sgtm.dedupe import MemoryDedupe
from sgtm.delivery.base import Delivery
from sgtm.delivery.engine import DeliveryEngine
from sgtm.event import EventData
from sgtm.ingress import BadHost, HostRouter, hit_request, request_host
from sgtm.limits import ServerLimits, limits_from_env
from sgtm.metrics import Metrics
from sgtm.middleware import (
    AccessLogMiddleware,
    BodyLimitMiddleware,
    ResponseHeadersMiddleware,
    has_body,
)
from sgtm.plugin import ClientResponse
from sgtm.plugins import load_registry
from sgtm.record import TrafficRecorder

# What a `sgtm serve` process does: `all` ingests and delivers; `ingest` answers hits and stores
# their requests; `deliver` sends what is stored and serves only /healthz, /readyz and /metrics.
Role = Literal["all", "ingest", "deliver"]
ROLES: tuple[Role, ...] = get_args(Role)


class ClientGone(Exception):
    """The client closed the connection before its whole body arrived."""


class TaggingApp:
    def __init__(
        self, router: HostRouter, body_timeout: float, recorder: TrafficRecorder | None = None
    ) -> None:
        self.router = router
        self.body_timeout = body_timeout
        self.recorder = recorder  # `sgtm serve --record`

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = scope.setdefault("sgtm", {})
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        try:
            host = request_host(headers)
        except BadHost as exc:
            await _send(send, ClientResponse(status=400, body=f"{exc}\n".encode()))
            return
        if host is None:  # HTTP/1.0 without Host: the address the request reached
            server = scope.get("server")
            host = str(server[0]) if server else ""
        info["host"] = host
        container = self.router.route(host)
        if container is None:
            await _send(send, ClientResponse(status=404, body=b"unknown host\n"))
            return
        info["container"] = container.name
        peer = scope.get("client")
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        query = scope["query_string"]
        target = (raw_path + b"?" + query) if query else raw_path
        body = b""  # a request that announces no body is complete with its headers
        try:
            if has_body(scope):
                async with asyncio.timeout(self.body_timeout):
                    body = await _read_body(receive)
        except ClientGone:
            # Half a body is not a hit: parsing it would deliver truncated events, and the
            # browser's retry would deliver them again. Nobody is left to answer; the request
            # line says 499 (nginx's "client closed request").
            info["status"] = 499
            container.metrics.inc(
                "sgtm_dropped_total", container=container.name, reason="client_disconnect"
            )
            return
        except TimeoutError:
            container.metrics.inc(
                "sgtm_dropped_total", container=container.name, reason="body_timeout"
            )
            body_late = f"request body not received within {self.body_timeout:g}s\n".encode()
            late = ClientResponse(status=408, headers={"connection": "close"}, body=body_late)
            await _send(send, late)
            return
        request = hit_request(
            container.spec.privacy,
            method=scope["method"],
            target=target.decode("latin-1"),
            headers=headers,
            body=body,
            peer=str(peer[0]) if peer else None,
            scheme=str(scope.get("scheme", "http")),
            host=host,
        )
        if self.recorder is not None:
            self.recorder.record(container.spec, request, target.decode("latin-1"))
        result = await container.handle(request)
        info["client"] = result.client
        info["events"] = result.event_count
        await _send(send, result.response)


async def _read_body(receive: Receive) -> bytes:
    """The whole body, or ClientGone."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send(send: Send, response: ClientResponse) -> None:
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()
    ]
    headers.extend((b"set-cookie", c.header_value().encode("latin-1")) for c in response.cookies)
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


def bearer_matches(authorization: list[str], token: str) -> bool:
    """Whether the request's one Authorization header is `Bearer <token>` (RFC 6750; the scheme
    name is case-insensitive). The token is compared by digest in constant time, so neither its
    content nor its length shows in the time taken."""
    if len(authorization) != 1:
        return False
    scheme, _, given = authorization[0].partition(" ")
    given = given.lstrip(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    expected = hashlib.sha256(token.encode()).digest()
    return hmac.compare_digest(hashlib.sha256(given.encode("latin-1")).digest(), expected)


def create_app(
    specs: Sequence[ContainerSpec],
    delivery: Delivery | None = None,
    *,
    limits: ServerLimits | None = None,
    role: Role = "all",
    metrics: Metrics | None = None,
    recorder: TrafficRecorder | None = None,
) -> Starlette:
    # One set of counters for the process, handed to everything that counts; /metrics renders it.
    metrics = metrics or Metrics()
    dedupe: DedupeStore
    if delivery is None:
        # The durable engine; its store also keeps dedupe keys, so they outlive a restart.
        engine = build_engine(specs, sends=role != "ingest", metrics=metrics)
        delivery, dedupe = engine, engine.store
    else:
        dedupe = MemoryDedupe()
    containers = [Container(spec, delivery, dedupe, metrics=metrics) for spec in specs]
    if isinstance(delivery, DeliveryEngine):
        by_name = {c.name: c for c in containers}

        async def follow_ups(container: str, tag: str, events: list[EventData]) -> None:
            found = by_name.get(container)
            if found is not None:  # a container the config no longer has: nothing runs them
                await found.follow_up(tag, events)

        delivery.follow_ups = follow_ups
    router = HostRouter(containers)
    state = {"ready": False}
    admin_token = os.environ.get("SGTM_ADMIN_TOKEN", "")
    limits = limits or limits_from_env()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Metrics]]:
        await delivery.start()
        if recorder is not None:
            recorder.start()
        state["ready"] = True
        try:
            # Lifespan state reaches the HTTP protocol too (sgtm/protocol.py counts refusals).
            yield {"sgtm.metrics": metrics}
        finally:
            state["ready"] = False
            if recorder is not None:
                await asyncio.to_thread(recorder.close)
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
        if not bearer_matches(request.headers.getlist("authorization"), admin_token):
            challenge = {"www-authenticate": "Bearer"}
            return PlainTextResponse("unauthorized\n", status_code=401, headers=challenge)
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    if role != "deliver":  # a deliverer's containers only run follow-up events
        routes.append(Mount("/", app=TaggingApp(router, limits.body_timeout, recorder)))
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(AccessLogMiddleware, metrics=metrics),
            Middleware(ResponseHeadersMiddleware),
            Middleware(BodyLimitMiddleware, max_bytes=limits.max_body_bytes),
        ],
        lifespan=lifespan,
    )
    app.state.containers = containers
    app.state.delivery = delivery
    app.state.metrics = metrics
    return app


def app_from_env() -> Starlette:
    """Factory for `uvicorn --factory` with several workers: config paths in SGTM_CONFIG, the
    process's role in SGTM_ROLE."""
    from sgtm import logs

    logs.setup(os.environ.get("SGTM_LOG_LEVEL", "info"))
    paths: list[str | Path] = [
        p for p in os.environ.get("SGTM_CONFIG", "config").split(os.pathsep) if p
    ]
    role = os.environ.get("SGTM_ROLE", "all")
    if role not in ROLES:
        raise ValueError(f"SGTM_ROLE: expected one of {', '.join(ROLES)}, got {role!r}")
    return create_app(load_containers(paths, load_registry()), role=role)
