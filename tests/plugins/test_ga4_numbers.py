"""GA4 number params (`epn.*`, `upn.*`, `_et`, item `pr`...): a linear parser with a length cap.

The old parser was a regex whose adjacent digit runs backtracked quadratically (an 8,000-digit
value held the event loop for seconds). The replacement must accept exactly what that regex
accepted, so the regex stays here as the oracle on inputs short enough to be harmless.
"""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sgtm_plugins.ga4.parse import MAX_NUMBER_CHARS, parse_hits, parse_item, to_number

_OLD_NUMBER = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")


def old_to_number(raw: str) -> int | float | None:
    if not _OLD_NUMBER.fullmatch(raw):
        return None
    value = float(raw)
    if not math.isfinite(value):
        return None
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12", 12),
        ("-1.5", -1.5),
        ("+7", 7),
        ("2e3", 2000),
        ("2E3", 2000),
        ("1.5e-3", 0.0015),
        ("-2E+2", -200),
        ("12.", 12),
        (".5", 0.5),
        ("-.5", -0.5),
        ("30.00", 30),
        ("-0", 0),
        ("  42 ", 42),
        ("\t1\n", 1),
        ("\u00a03\u2003", 3),  # Unicode spaces are spaces, as the regex's \s said
        ("9007199254740992", 9007199254740992.0),  # 2**53 stays a float, as in JavaScript
        ("9007199254740991", 9007199254740991),
        ("1e308", 1e308),
        ("0." + "0" * 323 + "5", 5e-324),  # the smallest double, written out in full
        ("1" + "0" * 308, 1e308),
    ],
)
def test_valid_numbers(raw: str, expected: float) -> None:
    got = to_number(raw)
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        " ",
        ".",
        "+",
        "-",
        "e5",
        ".e5",
        "1e",
        "1e+",
        "1e5.0",
        "1.2.3",
        "+-1",
        "--1",
        "1 2",
        "1_000",
        "0x10",
        "NaN",
        "nan",
        "Infinity",
        "-inf",
        "1e999",  # overflow
        "-1e999",
        "١٢٣",  # Arabic-Indic digits: float() takes them, GA4 does not
        "²",
        "1²",
        "\uff11\uff12",  # fullwidth digits
        "1\x00",
        "12abc",
    ],
)
def test_invalid_numbers(raw: str) -> None:
    assert to_number(raw) is None


def test_length_cap_applies_to_the_number_not_its_spaces() -> None:
    longest = "1." + "5" * (MAX_NUMBER_CHARS - 2)
    assert to_number(longest) == float(longest)
    assert to_number(" " * 5000 + longest + " " * 5000) == float(longest)
    assert to_number(longest + "5") is None
    assert to_number("-" + longest[:-1]) == -float(longest)
    assert to_number("-" + longest) is None
    assert to_number("0." + "0" * (MAX_NUMBER_CHARS - 3) + "1") is not None
    assert to_number("0." + "0" * (MAX_NUMBER_CHARS - 2) + "1") is None


@pytest.mark.parametrize(
    "raw",
    ["1" * 8000, "1" * 8000 + "x", "1" * 8000 + ".", "." + "1" * 8000, "1e" + "1" * 8000],
)
def test_an_8000_digit_value_is_not_a_number(raw: str) -> None:
    assert to_number(raw) is None


def test_an_8000_digit_epn_param_is_dropped_and_the_event_kept() -> None:
    drops: list[tuple[str, int]] = []
    hit = f"v=2&en=scroll&epn.x={'1' * 8000}x&epn.y={'1' * 8000}&epn.ok=5"
    (event,) = parse_hits(hit, b"", drop=lambda reason, n: drops.append((reason, n)))
    assert "x" not in event and "y" not in event
    assert event["ok"] == 5
    assert event["event_name"] == "scroll"
    assert drops == [("ga4.invalid_param", 1)] * 2


def test_item_numbers_use_the_same_parser() -> None:
    item = parse_item(f"idA~pr{'9' * 8000}~qt2~ds{'1' * 400}")
    assert item == {"item_id": "A", "quantity": 2}


_NUMBERISH = st.text(alphabet="0123456789+-.eE \t\u00a0_x٣²", max_size=12)


@settings(max_examples=1000, derandomize=True, deadline=None)
@given(_NUMBERISH)
def test_same_answers_as_the_old_regex(raw: str) -> None:
    expected = old_to_number(raw)
    got = to_number(raw)
    assert got == expected and type(got) is type(expected)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_double_as_python_writes_it(value: float) -> None:
    for text in (repr(value), f"{value:.17e}", f"{value:f}"):
        got = to_number(text)
        assert got == old_to_number(text) == float(text)
