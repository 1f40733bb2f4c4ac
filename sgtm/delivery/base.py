"""The Delivery interface: the one seam between the request pipeline and sending.

`submit` is called once per request with everything its tags built, before the client answers.
An implementation that promises durability returns only once the submissions are safe; if it
cannot accept them it raises `DeliveryUnavailable` and the request is answered 503, never a
silent 2xx. The response never waits for a vendor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

import msgspec

from sgtm.plugin import Outbound


class Submission(msgspec.Struct, kw_only=True):
    container: str
    tag: str  # the tag's name in the container: with the destination, it names the lane
    tag_type: str
    outbound: Outbound
    created: float  # seconds since the epoch; ages out after the delivery's max age
    nonce: str = ""  # binds the request's credential placeholders (BuildContext.nonce)
    # What delivery log lines and the delivery history name the job by: the event's own
    # event_id (else one drawn for it; "" from callers that set none) and the id of the request
    # that caused it (the `x-request-id` of its request line); the event's transaction_id.
    event_id: str = ""
    request_id: str = ""
    transaction_id: str = ""
    # For a traced request, where its preview session shows the delivery (Payload.preview).
    preview: str = ""

    @property
    def lane(self) -> str:
        return lane_key(self.container, self.tag, self.outbound)


class LaneKey(msgspec.Struct, frozen=True):
    """Which lane a job belongs to: its container, its tag and the destination.

    Stores keep it as the text `container/tag/destination`. Container and tag names never hold
    a `/` (the config loader refuses them: `check_name`), so the first two slashes end them and
    the destination, a URL origin or a tag's own key, keeps any slash it has. Jobs stored before
    this type read back the same way."""

    container: str
    tag: str
    destination: str

    def encode(self) -> str:
        return lane_text(self.container, self.tag, self.destination)

    @classmethod
    def decode(cls, text: str) -> LaneKey:
        container, _, rest = text.partition("/")
        tag, _, destination = rest.partition("/")
        return cls(container, tag, destination)


def lane_key(container: str, tag: str, outbound: Outbound) -> str:
    """A lane per container, tag and destination; without a destination key, the URL's origin
    (so one tag sending to two hosts never lets one host's outage hold back the other)."""
    destination = outbound.destination
    if not destination:
        parts = urlsplit(outbound.url)
        destination = f"{parts.scheme}://{parts.netloc}"
    return lane_text(container, tag, destination)


def lane_text(container: str, tag: str, destination: str) -> str:
    """A lane's text as stores keep it (`LaneKey.encode`), without building the Struct: the
    engine works one out for every job it stores."""
    return f"{container}/{tag}/{destination}"


def check_name(name: str) -> str | None:
    """Why a container or tag name cannot name a lane (None when it can): the store's lane text
    ends each name at a `/`, and logs, metrics labels and `sgtm dlq` print the names."""
    if not name.strip():
        return "must not be empty"
    if "/" in name:
        return "must not contain '/' (it separates the container, tag and destination of a lane)"
    if name != name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "must not have control characters or spaces at either end"
    return None


def rewrite(outbound: Outbound, text: Callable[[str], str], body: bytes) -> Outbound:
    """The request with `text` applied to its URL and header values and `body` as its body;
    every other field (lane, batch key, idempotency key...) kept."""
    return msgspec.structs.replace(
        outbound,
        url=text(outbound.url),
        headers={k: text(v) for k, v in outbound.headers.items()},
        body=body,
    )


class DeliveryUnavailable(Exception):
    """The delivery cannot accept work now (queue full, store down); the request gets 503."""


class Delivery(Protocol):
    async def start(self) -> None: ...

    async def submit(self, submissions: list[Submission]) -> None: ...

    async def close(self) -> None: ...
