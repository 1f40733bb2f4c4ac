"""Testing plugins and containers in-process (docs/testing-plugins.md).

- `Harness`: a container (YAML text or a dict) run on requests or event data with a fixed
  clock; every request a tag builds is captured, and `deliver()` sends them once the way the
  delivery engine does, reporting each item's verdict.
- `MockTransport`: a scripted vendor in-process, as the delivery's transport.
- `FakeVendor`: the same scripted vendor as a real HTTP server on loopback.
- `json_body`, `query_params`: read a built request.
"""

from sgtm.testing.harness import (
    DEFAULT_NOW,
    Delivered,
    FixedClock,
    Harness,
    Result,
    json_body,
    query_params,
)
from sgtm.testing.vendor import FakeVendor, MockTransport, Received, Reply, Vendor, free_port

__all__ = [
    "DEFAULT_NOW",
    "Delivered",
    "FakeVendor",
    "FixedClock",
    "Harness",
    "MockTransport",
    "Received",
    "Reply",
    "Result",
    "Vendor",
    "free_port",
    "json_body",
    "query_params",
]
