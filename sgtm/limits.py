"""What one request and one connection may cost the server: sizes and deadlines, from the
environment (docs/operations.md, "Security model").

`sgtm serve` reads them before it starts (a bad value stops it with one line naming the variable);
each worker process reads the same environment, so every worker applies the same limits.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from sgtm.delivery.policy import parse_duration


@dataclass(frozen=True, slots=True)
class ServerLimits:
    max_body_bytes: int = 1024 * 1024
    max_header_bytes: int = 64 * 1024  # request line and headers together
    header_timeout: float = 10.0  # from connection (or first byte after keep-alive) to headers read
    body_timeout: float = 30.0  # from headers read to the whole body read
    keepalive_timeout: float = 5.0  # an idle connection between requests
    write_timeout: float = 30.0  # a client not taking its responses (writing paused) until closed
    min_write_rate: int = 1024  # bytes/s a client behind on its answers takes, per write_timeout
    max_pipelined: int = 16  # requests waiting behind the one being answered before reading stops
    max_connections: int = 4096  # per worker; beyond it new requests get 503 at once (0: none)
    backlog: int = 2048  # connections the kernel queues before sgtm accepts them


ENV = {
    "max_body_bytes": "SGTM_MAX_BODY_BYTES",
    "max_header_bytes": "SGTM_MAX_HEADER_BYTES",
    "header_timeout": "SGTM_HEADER_TIMEOUT",
    "body_timeout": "SGTM_BODY_TIMEOUT",
    "keepalive_timeout": "SGTM_KEEPALIVE_TIMEOUT",
    "write_timeout": "SGTM_WRITE_TIMEOUT",
    "min_write_rate": "SGTM_MIN_WRITE_RATE",
    "max_pipelined": "SGTM_MAX_PIPELINED",
    "max_connections": "SGTM_MAX_CONNECTIONS",
    "backlog": "SGTM_BACKLOG",
}
_MAY_BE_ZERO = {"max_connections"}


def limits_from_env(environ: Mapping[str, str] | None = None) -> ServerLimits:
    """ServerLimits with the environment's overrides; ValueError naming the variable otherwise.
    Durations as "500ms", "10s", "1m" or seconds; sizes and counts as whole numbers."""
    env = os.environ if environ is None else environ
    given: dict[str, float | int] = {}
    for item in fields(ServerLimits):
        name = ENV[item.name]
        raw = env.get(name)
        if raw is None or not raw.strip():
            continue
        try:
            if item.type == "float":
                value: float | int = parse_duration(raw)
            elif raw.strip().isascii() and raw.strip().isdigit():
                value = int(raw)
            else:
                raise ValueError(f"expected a whole number, got {raw!r}")
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        if value <= 0 and item.name not in _MAY_BE_ZERO:
            raise ValueError(f"{name}: must be more than 0, got {raw!r}")
        given[item.name] = value
    return ServerLimits(**given)  # type: ignore[arg-type]
