"""HTTP transport for deliveries: one pooled keep-alive aiohttp session per engine.

aiohttp, not httpx: on loopback with 32 concurrent requests it sends several times more requests
per second than httpx.AsyncClient for the same CPU (bench/transport.py; figures in
docs/operations.md). Tags never see the transport: they build `Outbound`s and classify
responses, so this choice can change without touching a plugin.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
from yarl import URL

MAX_RESPONSE_BYTES = 1024 * 1024  # a vendor response larger than this is cut: we only classify it


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes


class TransportError(Exception):
    """No HTTP response: connection refused or reset, DNS, TLS, timeout. Always retryable."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class Transport:
    def __init__(self, *, connections: int = 256, per_host: int = 64) -> None:
        self.connections = connections
        self.per_host = per_host
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.connections, limit_per_host=self.per_host, ttl_dns_cache=300
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
            headers={"User-Agent": "sgtm"},
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes, time_limit: float
    ) -> Response:
        assert self._session is not None, "transport not started"
        try:
            async with self._session.request(
                method,
                as_sent(url),
                headers=headers,
                data=body or None,
                timeout=aiohttp.ClientTimeout(total=time_limit),
                allow_redirects=False,
            ) as response:
                content = await response.content.read(MAX_RESPONSE_BYTES)
                return Response(
                    status=response.status,
                    headers={k.lower(): v for k, v in response.headers.items()},
                    body=content,
                )
        except TimeoutError:
            raise TransportError("timeout") from None
        except aiohttp.ClientError as exc:
            raise TransportError(type(exc).__name__) from None
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            raise TransportError(type(exc).__name__) from None


def as_sent(url: str) -> URL:
    """The URL byte for byte when it is already valid on the wire: yarl would otherwise
    normalize its escapes (`%7e` -> `~`, `%2f` case), and a vendor that signs its URLs (retail
    media event URLs) rejects a changed byte. A URL with spaces or non-ASCII is quoted."""
    if url.isascii() and url.isprintable() and " " not in url:
        return URL(url, encoded=True)
    return URL(url)
