"""`sgtm serve --record FILE`: incoming tagging requests written as `sgtm emulate --requests`
lines, so real traffic feeds `sgtm emulate`, `sgtm test` and `sgtm diff`.

What a line keeps: the method, the request target (path and query as sent), the host, the client
IP as the container's privacy policy gives it (anonymized when `privacy.anonymize_ip`), the body,
and only the headers clients read (RECORDED_HEADERS, plus the headers a client's settings name,
such as a webhook's signature header). Cookie values are masked (their names stay), and every
secret the container knows is written as `${NAME}`, as `sgtm emulate` shows it: a request
authenticated by an API key therefore replays as refused, one signed over its body replays as sent.

The event loop only encodes the line and appends it to a queue; a thread writes the queue to the
file in batches. The file stops growing at `max_bytes` (the lines after are counted, not written),
and a queue longer than MAX_PENDING lines drops new ones rather than grow without bound.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, BinaryIO

import msgspec

from sgtm.config import ContainerSpec
from sgtm.emulate import RequestLine
from sgtm.redact import Redactor
from sgtm.request import HitRequest

log = logging.getLogger("sgtm.record")

# Request headers the built-in clients read (identity, device, consent and body decoding).
RECORDED_HEADERS = frozenset(
    {
        "accept-language",
        "content-encoding",
        "content-type",
        "cookie",
        "origin",
        "referer",
        "sec-ch-ua",
        "sec-ch-ua-arch",
        "sec-ch-ua-bitness",
        "sec-ch-ua-full-version-list",
        "sec-ch-ua-mobile",
        "sec-ch-ua-model",
        "sec-ch-ua-platform",
        "sec-ch-ua-platform-version",
        "user-agent",
        "x-hub-signature-256",
    }
)
MASKED = "***"
MAX_PENDING = 10_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


def client_headers(spec: ContainerSpec) -> frozenset[str]:
    """Headers a container's clients read: the common ones, and every header a client's settings
    name (a settings field called `header` or ending in `_header`, e.g. `api_key_header`)."""
    named: set[str] = set()
    for client in spec.clients:
        stack: list[Any] = [msgspec.to_builtins(client.settings)]
        while stack:
            value = stack.pop()
            if isinstance(value, dict):
                for key, child in value.items():
                    if (key == "header" or key.endswith("_header")) and isinstance(child, str):
                        named.add(child.lower())
                    elif isinstance(child, (dict, list)):
                        stack.append(child)
            elif isinstance(value, list):
                stack.extend(value)
    return RECORDED_HEADERS | named


def mask_cookies(header: str) -> str:
    """`a=1; b=2` as `a=***; b=***`: which cookies a visitor had, not their values."""
    out = []
    for part in header.split(";"):
        name, sep, _ = part.strip().partition("=")
        if name:
            out.append(f"{name}={MASKED}" if sep else name)
    return "; ".join(out)


class TrafficRecorder:
    def __init__(self, path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.written = 0
        self.dropped = 0  # lines not written: over max_bytes or the queue full
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._pending = 0
        self._lock = threading.Lock()
        self._encoder = msgspec.json.Encoder()
        self._thread: threading.Thread | None = None
        self._file: BinaryIO | None = None
        # Per container version (a reload brings new specs): the headers kept and the masking.
        self._filters: dict[int, tuple[ContainerSpec, frozenset[str], Redactor]] = {}

    def start(self) -> None:
        """Opens the file for appending (an error here stops `sgtm serve` before it listens)."""
        self._file = open(self.path, "ab")  # noqa: SIM115 - closed by the writer thread
        self.written = self._file.tell()
        self._thread = threading.Thread(target=self._write, name="sgtm-record", daemon=True)
        self._thread.start()

    def record(self, spec: ContainerSpec, request: HitRequest, target: str) -> None:
        """Queue one request (on the event loop: no I/O here)."""
        with self._lock:
            if self._pending >= MAX_PENDING:
                self.dropped += 1
                return
            self._pending += 1
        self._queue.put(self._encoder.encode(self.line(spec, request, target)) + b"\n")

    def line(self, spec: ContainerSpec, request: HitRequest, target: str) -> RequestLine:
        cached = self._filters.get(id(spec))
        if cached is None or cached[0] is not spec:
            if len(self._filters) > 64:  # versions a reload replaced
                self._filters.clear()
            cached = self._filters[id(spec)] = (spec, client_headers(spec), Redactor(spec.secrets))
        _, wanted, redact = cached
        headers = {}
        for name, value in request.headers.items():
            if name in wanted:
                headers[name] = redact(mask_cookies(value) if name == "cookie" else value)
        return RequestLine(
            url=redact(target),
            method=request.method,
            headers=headers,
            body=redact(request.body.decode("utf-8", "replace")),
            ip=request.client_ip,
            host=request.host,
        )

    def _write(self) -> None:
        assert self._file is not None
        file = self._file
        while True:
            item = self._queue.get()
            batch = [item]
            while True:  # whatever else is queued goes in the same write
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            done = None in batch
            lines = [b for b in batch if b is not None]
            with self._lock:
                self._pending -= len(lines)
            for line in lines:
                if self.written + len(line) > self.max_bytes:
                    if not self.dropped:
                        log.warning(
                            "sgtm serve --record: %s reached its size limit; not recording more",
                            self.path,
                        )
                    self.dropped += 1
                    continue
                file.write(line)
                self.written += len(line)
            file.flush()
            if done:
                file.close()
                return

    def close(self) -> None:
        """Writes what is queued and closes the file (off the event loop: call in a thread)."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join()
        self._thread = None
