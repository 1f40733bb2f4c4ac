"""Parsers of request text that replaced backtracking ones: same answers on what they accept.

Each old parser stays here as the oracle, run only on inputs short enough to be harmless; the
hostile sizes are checked for their answer (what they cost is bench/hostile.py's business).
"""

from __future__ import annotations

import re
from http.cookies import CookieError, SimpleCookie

from hypothesis import given, settings
from hypothesis import strategies as st
from sgtm_plugins.ga4.parse import header_client_hints

from sgtm.request import parse_cookie_header


def simple_cookie_value(value: str) -> str:
    """What sgtm did before: SimpleCookie's reading, else the value without its quotes."""
    try:
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(f"x={value}")
        return parsed["x"].value
    except (CookieError, KeyError):
        return value[1:-1]


# No `;` (the header is split on it first) and no whitespace: SimpleCookie would read text after
# a closing quote as more cookies, which sgtm deliberately keeps as part of the value.
@settings(max_examples=500, derandomize=True, deadline=None)
@given(st.text(alphabet='"\\a0137=,é\x00', max_size=10))
def test_quoted_cookie_values_read_as_simple_cookie_reads_them(inner: str) -> None:
    value = f'"{inner}"'
    assert parse_cookie_header(f"a={value}") == {"a": simple_cookie_value(value)}


def test_text_after_a_closing_quote_stays_in_the_value() -> None:
    assert parse_cookie_header('a="x" "y"; b=1') == {"a": 'x" "y', "b": "1"}


def test_a_cookie_of_backslashes_reads_in_one_pass() -> None:
    many = 32 * 1024
    assert parse_cookie_header('a="' + "\\\\" * many + '"; b=1') == {"a": "\\" * many, "b": "1"}
    assert parse_cookie_header('a="' + "\\101" * many + '"') == {"a": "A" * many}
    # An escaped quote at the very end leaves the string open: the value only loses its quotes.
    assert parse_cookie_header('a="' + '\\"' * many) == {"a": ('\\"' * many)[:-1]}
    assert parse_cookie_header('a="' + "\\" * (2 * many + 1) + '"') == {"a": "\\" * (2 * many + 1)}


_OLD_BRAND = re.compile(r'"((?:[^"\\]|\\.)*)"\s*;\s*v\s*=\s*"((?:[^"\\]|\\.)*)"')


def old_brands(header: str) -> list[dict[str, str]]:
    def unescape(text: str) -> str:
        return re.sub(r"\\(.)", r"\1", text)

    return [
        {"brand": unescape(brand), "version": unescape(version)}
        for brand, version in _OLD_BRAND.findall(header)
    ]


_SF_TEXT = st.text(alphabet='ab ;=,()"\\.9', max_size=8)
_SPACE = st.sampled_from(["", " ", "  ", "\t"])


def sf_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def sec_ch_ua(draw: st.DrawFn) -> str:
    entries = []
    for _ in range(draw(st.integers(0, 4))):
        brand, version = draw(_SF_TEXT), draw(_SF_TEXT)
        a, b, c, d = (draw(_SPACE) for _ in range(4))
        entries.append(f"{sf_string(brand)}{a};{b}v{c}={d}{sf_string(version)}")
    return draw(st.sampled_from([", ", ",", " , "])).join(entries)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(sec_ch_ua())
def test_sec_ch_ua_brands_as_the_old_regex_read_them(header: str) -> None:
    hints = header_client_hints({"sec-ch-ua": header})
    assert hints.get("brands", []) == old_brands(header)


def test_sec_ch_ua_real_header() -> None:
    header = '"Chromium";v="116", "Not)A;Brand";v="24", "Google Chrome";v="116"'
    assert header_client_hints({"sec-ch-ua": header})["brands"] == [
        {"brand": "Chromium", "version": "116"},
        {"brand": "Not)A;Brand", "version": "24"},
        {"brand": "Google Chrome", "version": "116"},
    ]


def test_sec_ch_ua_of_escaped_quotes_has_no_brand() -> None:
    # The header the old regex needed ~45 ms for (2 KiB: one string that never closes).
    assert "brands" not in header_client_hints({"sec-ch-ua": '"' + '\\"' * 50_000})
    # A real pair after garbage is still found.
    header = 'x;y, "ok";v="1", "' + "\\" * 10_001
    assert header_client_hints({"sec-ch-ua": header})["brands"] == [{"brand": "ok", "version": "1"}]
