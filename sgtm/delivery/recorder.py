"""A Delivery that sends nothing: `sgtm emulate` and tests read what would have been sent."""

from __future__ import annotations

from sgtm.delivery.base import Submission


class RecorderDelivery:
    def __init__(self) -> None:
        self.submitted: list[Submission] = []

    async def start(self) -> None:
        return None

    async def submit(self, submissions: list[Submission]) -> None:
        self.submitted.extend(submissions)

    async def close(self) -> None:
        return None
