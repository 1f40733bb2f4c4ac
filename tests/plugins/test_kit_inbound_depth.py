"""sgtm.kit.inbound.depth: nesting counted without recursion, up to MAX_DEPTH + 1."""

from __future__ import annotations

import msgspec
import pytest

from sgtm.kit.inbound import MAX_DEPTH, depth


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"1", 0),
        (b'"[[["', 0),
        (b"[]", 1),
        (b"{}", 1),
        (b'{"a": "[[[[", "b": [1, 2]}', 2),
        (b'[{}, [], {"x": [[]]}]', 4),
        (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, MAX_DEPTH),
        (b'{"a":' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH, MAX_DEPTH),
        (b"[" * 900 + b"]" * 900, MAX_DEPTH + 1),  # counting stops past the limit
        (b"[" + b"[[1]]," * 20_000 + b"[]]", 3),  # wide: one pass per level
    ],
)
def test_depth(raw: bytes, expected: int) -> None:
    assert depth(msgspec.json.decode(raw)) == expected
