"""Best-effort sender: the Delivery `serve` uses until the durable engine replaces it.

Submissions go into a bounded in-memory queue and a fixed pool of workers sends them over one
pooled keep-alive httpx client. The request path only enqueues, so it never waits for a vendor.
It is honest about what it is: a full queue drops (counted and logged), and a crash loses what is
queued. Responses are classified by the tag; a `retry` outcome is retried a few times with
backoff while the process lives.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping

import httpx

from sgtm import metrics
from sgtm.delivery.base import DeliveryUnavailable, Submission
from sgtm.plugin import Tag, as_verdict

log = logging.getLogger("sgtm.delivery")


class BestEffortSender:
    def __init__(
        self,
        tag_types: Mapping[str, Tag],
        *,
        queue_size: int = 10_000,
        workers: int = 32,
        max_attempts: int = 3,
        drop_when_full: bool = True,
        drain_seconds: float = 10.0,
    ) -> None:
        self.drain_seconds = drain_seconds
        self.tag_types = tag_types
        self.queue: asyncio.Queue[tuple[Submission, int]] = asyncio.Queue(maxsize=queue_size)
        self.workers = workers
        self.max_attempts = max_attempts
        self.drop_when_full = drop_when_full
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        limits = httpx.Limits(max_connections=self.workers, max_keepalive_connections=self.workers)
        self._client = httpx.AsyncClient(limits=limits, follow_redirects=False)
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]

    async def submit(self, submissions: list[Submission]) -> None:
        for submission in submissions:
            try:
                self.queue.put_nowait((submission, 1))
            except asyncio.QueueFull:
                metrics.inc(
                    "sgtm_deliveries_total", tag=submission.tag, outcome="dropped_queue_full"
                )
                log.warning("delivery queue full, dropped", extra={"tag": submission.tag})
                if not self.drop_when_full:
                    raise DeliveryUnavailable("delivery queue is full") from None

    async def close(self) -> None:
        """Give queued work `drain_seconds` to finish, then stop the workers."""
        try:
            await asyncio.wait_for(self.queue.join(), self.drain_seconds)
        except TimeoutError:
            log.warning("shutdown: %d deliveries still queued were dropped", self.queue.qsize())
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    async def _worker(self) -> None:
        while True:
            submission, attempt = await self.queue.get()
            try:
                await self._send(submission, attempt)
            except Exception:  # a worker must survive anything a vendor or a plugin does
                log.exception("delivery worker error", extra={"tag": submission.tag})
            finally:
                self.queue.task_done()

    async def _send(self, submission: Submission, attempt: int) -> None:
        assert self._client is not None
        tag = self.tag_types[submission.tag_type]
        out = tag.merge([submission.outbound]) if tag.batching else submission.outbound
        started = time.perf_counter()
        try:
            response = await self._client.request(
                out.method,
                out.url,
                headers=out.headers,
                content=out.body,
                timeout=out.timeout or tag.timeout,
            )
            verdict = tag.classify(response.status_code, dict(response.headers), response.content)
            outcome: str = as_verdict(verdict).outcome
            status = response.status_code
        except httpx.HTTPError as exc:
            outcome, status = "retry", 0
            log.info("delivery error: %s", type(exc).__name__, extra={"tag": submission.tag})
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        if outcome == "retry" and attempt < self.max_attempts:
            await asyncio.sleep(random.uniform(0, 0.5 * 2**attempt))
            try:
                self.queue.put_nowait((submission, attempt + 1))
                outcome = "retrying"
            except asyncio.QueueFull:
                outcome = "dropped_queue_full"
        metrics.inc("sgtm_deliveries_total", tag=submission.tag, outcome=outcome)
        log.info(
            "delivery",
            extra={"tag": submission.tag, "status": status, "outcome": outcome, "ms": elapsed_ms},
        )
