"""create_app(): the Starlette application, its routes, middleware and lifespan.

The tagging endpoint is a raw ASGI hit path (`TaggingApp`) that takes every HTTP request but
Starlette's own routes, ahead of Starlette's middleware and router: it routes by Host to a
container, reads the body within the limit and hands the container the `HitRequest`
sgtm/ingress.py builds (the client IP through that container's privacy policy). `/healthz`,
`/readyz` and `/metrics` (admin token, throttled with the admin API's: sgtm/admin/auth.py) are
Starlette routes, with the middleware of sgtm/middleware.py. The lifespan owns the delivery
(Starlette's lifespan pattern), so its connections open and close with the server.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, get_args

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sgtm.alerts import alerter_for
from sgtm.composition import build_engine
from sgtm.config import ContainerSpec, load_containers
from sgtm.container import DedupeStore
from sgtm.dedupe import MemoryDedupe
from sgtm.delivery.base import Delivery, DeliveryUnavailable
from sgtm.delivery.engine import DeliveryEngine
from sgtm.event import EventData
from sgtm.ingress import BadHost, asgi_headers, hit_request, request_host
from sgtm.limits import ServerLimits, limits_from_env
from sgtm.metrics import Metrics
from sgtm.middleware import (
    AccessLogMiddleware,
    BodyLimitMiddleware,
    ResponseHeadersMiddleware,
    log_request,
    request_id,
    stamped,
    too_large_body,
)
from sgtm.plugin import ClientResponse
from sgtm.plugins import load_registry
from sgtm.preview import Previews
from sgtm.preview import requested as preview_id
from sgtm.privacy import client_ip
from sgtm.record import TrafficRecorder
from sgtm.reload import (
    ContainerSet,
    LiveContainers,
    Reloader,
    ReloadOptions,
    container_set,
    files_version,
)

# What a `sgtm serve` process does: `all` ingests and delivers; `ingest` answers hits and stores
# their requests; `deliver` sends what is stored and serves only /healthz, /readyz and /metrics.
Role = Literal["all", "ingest", "deliver"]
ROLES: tuple[Role, ...] = get_args(Role)

log = logging.getLogger("sgtm.app")


class ClientGone(Exception):
    """The client closed the connection before its whole body arrived."""


class BodyTooLarge(Exception):
    pass


_INTERNAL_ERROR = ClientResponse(status=500, body=b"internal error\n")


class TaggingApp:
    """The raw ASGI hit path: every request that is not one of Starlette's routes. What the
    middleware does for those (a request id, the body limit, the headers every answer carries,
    a plain 500, the access line) is done here in one pass, with the same helpers."""

    def __init__(
        self,
        live: LiveContainers,
        limits: ServerLimits,
        metrics: Metrics,
        recorder: TrafficRecorder | None = None,
        previews: Previews | None = None,
    ) -> None:
        self.live = live  # read once per request: a reload never changes a request's container
        self.recorder = recorder  # `sgtm serve --record`
        self.previews = previews  # None unless the admin surface is on
        self.metrics = metrics
        self.body_timeout = limits.body_timeout
        self.max_body = limits.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        info: dict[str, Any] = {"request_id": request_id(scope)}
        scope["sgtm"] = info
        status = 500
        complete = False  # whether the request's body was read to its end
        try:
            try:
                response, complete = await self._answer(scope, receive, info)
            except Exception:
                await _send(send, _INTERNAL_ERROR, info["request_id"], False)
                raise  # for the server's log, which then sends nothing more
            if response is None:
                # The client closed the connection before its whole body arrived: nobody is left
                # to answer; the request line says 499 (nginx's "client closed request").
                status = 499
            else:
                status = response.status
                await _send(send, response, info["request_id"], complete)
        finally:
            log_request(self.metrics, scope, info, status, started)

    async def _answer(
        self, scope: Scope, receive: Receive, info: dict[str, Any]
    ) -> tuple[ClientResponse | None, bool]:
        """The answer (None when there is nobody to answer) and whether the body was read."""
        announced = False  # a request that announces no body is complete with its headers
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_body:
                    return ClientResponse(status=413, body=too_large_body(self.max_body)), False
                announced = announced or value != b"0"
            elif name == b"transfer-encoding":
                announced = True
        headers, hosts = asgi_headers(scope["headers"])
        try:
            if hosts > 1:
                raise BadHost("more than one Host header")
            host = request_host(headers.items()) if hosts else None
        except BadHost as exc:
            return ClientResponse(status=400, body=f"{exc}\n".encode()), not announced
        if host is None:  # HTTP/1.0 without Host: the address the request reached
            server = scope.get("server")
            host = str(server[0]) if server else ""
        info["host"] = host
        container = self.live.current.router.route(host)
        if container is None:
            return ClientResponse(status=404, body=b"unknown host\n"), not announced
        info["container"] = container.name
        body = b""
        if announced:
            try:
                async with asyncio.timeout(self.body_timeout):
                    body = await _read_body(receive, self.max_body)
            except ClientGone:
                # Half a body is not a hit: parsing it would deliver truncated events, and the
                # browser's retry would deliver them again.
                container.metrics.inc(
                    "sgtm_dropped_total", container=container.name, reason="client_disconnect"
                )
                return None, False
            except BodyTooLarge:
                return ClientResponse(status=413, body=too_large_body(self.max_body)), False
            except TimeoutError:
                container.metrics.inc(
                    "sgtm_dropped_total", container=container.name, reason="body_timeout"
                )
                late = f"request body not received within {self.body_timeout:g}s\n".encode()
                return ClientResponse(status=408, headers={"connection": "close"}, body=late), False
        peer = scope.get("client")
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        query = scope["query_string"]
        target = (raw_path + b"?" + query) if query else raw_path
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
        request.request_id = info.get("request_id", "")
        if self.recorder is not None:
            self.recorder.record(container.spec, request, target.decode("latin-1"))
        preview = preview_id(request) if self.previews is not None else None
        if preview is None:
            result = await container.handle(request)
        else:
            assert self.previews is not None
            result = await self.previews.handle(container, request, preview)
        info["client"] = result.client
        info["events"] = result.event_count
        return result.response, True


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The whole body; ClientGone, or BodyTooLarge once more than `limit` bytes arrived."""
    chunks = []
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send(send: Send, response: ClientResponse, rid: str, complete: bool) -> None:
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()
    ]
    headers.extend((b"set-cookie", c.header_value().encode("latin-1")) for c in response.cookies)
    headers.append((b"content-length", str(len(response.body)).encode()))
    headers = stamped(headers, response.status, complete)
    headers.append((b"x-request-id", rid.encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


class SgtmApp(Starlette):
    """Starlette for the lifespan and its own routes; every other HTTP request goes straight to
    the raw hit path, past Starlette's middleware stack and router."""

    def __init__(self, hits: TaggingApp | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hits = hits
        routes = self.router.routes
        self.own_paths = frozenset(r.path for r in routes if isinstance(r, Route))
        self.own_prefixes = tuple(r.path + "/" for r in routes if isinstance(r, Mount))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.hits is not None
            and scope["type"] == "http"
            and scope["path"] not in self.own_paths
            and not scope["path"].startswith(self.own_prefixes)
        ):
            await self.hits(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


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
    reload: ReloadOptions | None = None,
    metrics: Metrics | None = None,
    recorder: TrafficRecorder | None = None,
) -> SgtmApp:
    """`reload`: where the containers came from, to load them again on SIGHUP or, with
    `watch`, when the files change (sgtm/reload.py); without it they are fixed."""
    # One set of counters for the process, handed to everything that counts; /metrics renders it.
    metrics = metrics or Metrics()
    dedupe: DedupeStore
    if delivery is None:
        # The durable engine; its store also keeps dedupe keys, so they outlive a restart.
        engine = build_engine(specs, sends=role != "ingest", metrics=metrics)
        delivery, dedupe = engine, engine.store
    else:
        dedupe = MemoryDedupe()
    version = (reload.version or files_version(reload.paths)) if reload else "static"
    live = LiveContainers(container_set(specs, version, delivery, dedupe, metrics))
    if isinstance(delivery, DeliveryEngine):

        async def follow_ups(container: str, tag: str, events: list[EventData]) -> None:
            found = live.current.by_name.get(container)
            if found is not None:  # a container the config no longer has: nothing runs them
                await found.follow_up(tag, events)

        delivery.follow_ups = follow_ups
    state = {"ready": False}
    admin_token = os.environ.get("SGTM_ADMIN_TOKEN", "")
    limits = limits or limits_from_env()
    from sgtm.admin import admin_app, not_found
    from sgtm.admin.auth import TokenGate

    def client_of(request: Request) -> str | None:
        """The client's IP as the hit path resolves it for the request's Host (X-Forwarded-For
        only from the trusted proxies of the container it routes to), not anonymized."""
        headers, _ = asgi_headers(request.scope["headers"])
        try:
            container = live.current.router.route(request_host(headers.items()))
        except BadHost:
            container = None  # a Host the hit path refuses (two, or not a host): no proxy trusted
        trusted = container.spec.privacy.trusted_proxies if container is not None else ()
        peer = request.client.host if request.client else None
        return client_ip(peer, headers.get("x-forwarded-for"), trusted)

    # One gate for every surface that takes the token (the admin API and UI, /metrics): one
    # throttle of wrong tokens per client for all of them.
    gate = TokenGate(admin_token, client_of)
    admin: ASGIApp = not_found
    previews: Previews | None = None
    if admin_token:
        durable = delivery if isinstance(delivery, DeliveryEngine) else None
        if durable is not None:
            previews = Previews(durable.store)
        admin = admin_app(gate, durable.store if durable else None, durable, previews)

    alerter = alerter_for([s.alerts for s in specs if s.alerts is not None], metrics.samples)

    def swapped(new: ContainerSet) -> None:
        alerter.replace_rules([s.alerts for s in new.specs if s.alerts is not None])

    reloader = None
    if reload is not None:
        reloader = Reloader(live, reload, delivery, dedupe, metrics, on_swap=swapped)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Metrics]]:
        await delivery.start()
        await alerter.start()
        if recorder is not None:
            recorder.start()
        state["ready"] = True
        try:
            # Lifespan state reaches the HTTP protocol too (sgtm/protocol.py counts refusals).
            if reloader is None:
                yield {"sgtm.metrics": metrics}
            else:
                async with reloader.running():
                    yield {"sgtm.metrics": metrics}
        finally:
            state["ready"] = False
            await alerter.close()
            if recorder is not None:
                await asyncio.to_thread(recorder.close)
            await delivery.close()

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        # A reload swaps the set in one step: readiness never drops while one runs.
        count = len(live.current.containers)
        if state["ready"] and count:
            return PlainTextResponse(f"ready: {count} container(s)\n")
        return PlainTextResponse("not ready\n", status_code=503)

    async def metrics_endpoint(request: Request) -> Response:
        if not admin_token:
            return PlainTextResponse("not found\n", status_code=404)
        bearer = gate.bearer(request)
        if bearer.retry_after:
            late = {"retry-after": str(bearer.retry_after)}
            return PlainTextResponse("too many wrong tokens\n", status_code=429, headers=late)
        if not bearer.ok:
            challenge = {"www-authenticate": "Bearer"}
            return PlainTextResponse("unauthorized\n", status_code=401, headers=challenge)
        if isinstance(delivery, DeliveryEngine):
            await _read_queue_depths(delivery)
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Mount("/_sgtm", app=admin),
    ]
    # A deliverer's containers only run follow-up events: it answers no hits.
    hits = TaggingApp(live, limits, metrics, recorder, previews) if role != "deliver" else None
    app = SgtmApp(
        hits,
        routes=routes,
        middleware=[
            Middleware(AccessLogMiddleware, metrics=metrics),
            Middleware(ResponseHeadersMiddleware),
            Middleware(BodyLimitMiddleware, max_bytes=limits.max_body_bytes),
        ],
        lifespan=lifespan,
    )
    app.state.live = live  # live.current.containers: the containers served now
    app.state.reloader = reloader
    app.state.delivery = delivery
    app.state.metrics = metrics
    app.state.alerter = alerter
    return app


async def _read_queue_depths(engine: DeliveryEngine) -> None:
    """The queue depth gauges as of this scrape; a store that does not answer within a second
    leaves the last values (and says so) rather than holding the scrape."""
    try:
        async with asyncio.timeout(1.0):
            await engine.queue_depths()
    except (DeliveryUnavailable, TimeoutError) as exc:
        log.warning("queue depths not read for /metrics: %s", type(exc).__name__)


def app_from_env() -> Starlette:
    """Factory for `uvicorn --factory` with several workers: config paths in SGTM_CONFIG, the
    process's role in SGTM_ROLE, the `--watch` interval (seconds) in SGTM_WATCH. Each worker
    reloads on its own: on the SIGHUP the master passes on, and by watching the files."""
    from sgtm import logs
    from sgtm.reload import defer_sighup

    defer_sighup()
    logs.setup(os.environ.get("SGTM_LOG_LEVEL", "info"))
    paths: list[str | Path] = [
        p for p in os.environ.get("SGTM_CONFIG", "config").split(os.pathsep) if p
    ]
    role = os.environ.get("SGTM_ROLE", "all")
    if role not in ROLES:
        raise ValueError(f"SGTM_ROLE: expected one of {', '.join(ROLES)}, got {role!r}")
    watch = float(os.environ["SGTM_WATCH"]) if os.environ.get("SGTM_WATCH") else None
    # Hashed before loading: a file written meanwhile then differs from it, and is loaded again.
    version = files_version(paths)
    registry = load_registry()
    specs = load_containers(paths, registry)
    reload = ReloadOptions(tuple(paths), watch=watch, version=version, registry=registry)
    return create_app(specs, role=role, reload=reload)
