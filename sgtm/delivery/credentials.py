"""Run-time credentials (OAuth tokens, session logins) for tags that declare `auth_request`.

Tokens are cached per tag instance until shortly before they expire. However many sends need a
token at once, one request fetches it (single flight: every waiter shares the same task). When
the vendor refuses a token (`tag.is_auth_failure`), the engine asks for a refresh with the token
that failed: if another send already replaced it, the new one is returned without a second
request. Tokens live only in this cache: `{{credential}}` placeholders are filled in the copy of
a request about to be sent, never in what is stored, and no token is ever logged.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Collection
from typing import Any

from cachetools import TLRUCache

from sgtm import placeholders
from sgtm.delivery.base import rewrite
from sgtm.delivery.transport import Transport, TransportError
from sgtm.plugin import Credential, Outbound, Tag

log = logging.getLogger("sgtm.delivery.credentials")


class CredentialError(Exception):
    """No token could be obtained (the token endpoint failed or refused); the send is retried."""


class CredentialManager:
    def __init__(
        self,
        transport: Transport,
        *,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.time,
        maxsize: int = 4096,
    ) -> None:
        self.transport = transport
        self.refresh_margin = refresh_margin
        self.clock = clock
        # Each entry leaves the cache `refresh_margin` seconds before its token expires, so the
        # next send refreshes it in time; tokens without an expiry stay until refused.
        self._cache: TLRUCache[str, Credential] = TLRUCache(
            maxsize=maxsize, ttu=self._expires, timer=clock
        )
        self._inflight: dict[str, asyncio.Task[Credential]] = {}
        self.fetches = 0  # token requests made (tests and metrics)

    def _expires(self, _key: str, credential: Credential, _now: float) -> float:
        if credential.expires_at is None:
            return math.inf
        return credential.expires_at - self.refresh_margin

    async def get(self, key: str, tag: Tag[Any], settings: Any, time_limit: float) -> Credential:
        credential = self._cache.get(key)
        if credential is not None:
            return credential
        return await self._single_flight(key, tag, settings, time_limit)

    def forget(self, key: str) -> None:
        """Drop the cached token of `key`: its settings changed (a config reload)."""
        self._cache.pop(key, None)

    async def refresh(
        self, key: str, tag: Tag[Any], settings: Any, time_limit: float, failed: Credential
    ) -> Credential:
        """A new token after `failed` was refused, unless another send already got one."""
        current = self._cache.get(key)
        if current is not None and current.token != failed.token:
            return current
        self._cache.pop(key, None)
        return await self._single_flight(key, tag, settings, time_limit)

    async def _single_flight(
        self, key: str, tag: Tag[Any], settings: Any, time_limit: float
    ) -> Credential:
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._fetch(key, tag, settings, time_limit))
            self._inflight[key] = task

            def forget(done: asyncio.Task[Credential]) -> None:
                if self._inflight.get(key) is done:
                    del self._inflight[key]

            task.add_done_callback(forget)
        # shield: one waiter being cancelled must not cancel the fetch the others wait for.
        return await asyncio.shield(task)

    async def _fetch(self, key: str, tag: Tag[Any], settings: Any, time_limit: float) -> Credential:
        request = tag.auth_request(settings)
        if request is None:
            raise CredentialError(f"tag type {tag.name!r} declares no auth_request")
        self.fetches += 1
        try:
            response = await self.transport.send(
                request.method,
                request.url,
                request.headers,
                request.body,
                request.timeout or time_limit,
            )
        except TransportError as exc:
            raise CredentialError(f"token request failed: {exc.kind}") from None
        if not 200 <= response.status < 300:
            # The body may echo what was sent (a client id, a user name): it is not logged.
            log.warning("token request refused", extra={"lane": key, "status": response.status})
            raise CredentialError(f"token request answered {response.status}")
        try:
            credential = tag.parse_auth(
                response.status, response.headers, response.body, self.clock()
            )
        except Exception as exc:
            raise CredentialError(f"token response not understood ({type(exc).__name__})") from None
        self._cache[key] = credential
        return credential


def needs_credential(outbound: Outbound, nonces: Collection[str]) -> bool:
    """Whether the request holds a credential placeholder of its own jobs' nonces."""
    return (
        placeholders.contains(outbound.url, "credential", nonces)
        or any(placeholders.contains(v, "credential", nonces) for v in outbound.headers.values())
        or placeholders.contains(
            outbound.body.decode("utf-8", "surrogateescape"), "credential", nonces
        )
    )


def fill(outbound: Outbound, credential: Credential, nonces: Collection[str]) -> Outbound:
    """A copy of the request with its jobs' credential placeholders replaced by the token
    (`{{credential}}`) or one of its values (`{{credential.NAME}}`)."""

    def real(kind: str, name: str | None, form: str) -> str | None:
        if kind != "credential":
            return None
        return credential.token if name is None else credential.values.get(name)

    body = placeholders.fill_bytes(outbound.body, nonces, real)
    return rewrite(outbound, lambda value: placeholders.fill(value, nonces, real), body)
