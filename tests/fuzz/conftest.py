from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz.harness import Server, serve


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with serve() as running:
        yield running
