"""Config regexes run on RE2 (sgtm/regex.py): what compiles, what is refused at load and why,
and how `matches` and `regex_table` read hit text with it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import msgspec
import pytest
import re2

from sgtm.config import load_text
from sgtm.regex import Regex, RegexError
from sgtm.scope import BUILTINS, BoundVariable, Scope
from sgtm.triggers import compile_condition
from sgtm.yamlsource import ConfigErrors
from tests.installed import registry

ROOT = Path(__file__).resolve().parent.parent
CATASTROPHIC = r"^(https?://)?([a-z0-9]+\.)*shop\.example(/.*)*$"
# 30 slashes and a newline, then one more character so that Python's `$` cannot match either:
# Python's re tries every split of the slashes between `(/.*)*` repetitions, 2**30 of them.
HOSTILE_DL = "https://www.shop.example" + "/" * 30 + "\n/"
SYNTAX = "see https://github.com/google/re2/wiki/Syntax"


def linear_regexes(value: Any, seen: set[int] | None = None) -> list[Regex]:
    """Every Regex a compiled condition closes over (its closures, lists, tuples, recursively)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return []
    seen.add(id(value))
    if isinstance(value, Regex):
        return [value]
    found: list[Regex] = []
    if callable(value) and getattr(value, "__closure__", None):
        for cell in value.__closure__:
            found.extend(linear_regexes(cell.cell_contents, seen))
    elif isinstance(value, (list, tuple)):
        for item in value:
            found.extend(linear_regexes(item, seen))
    return found


def test_the_catastrophic_pattern_compiles_to_re2_and_answers_at_once() -> None:
    condition = compile_condition(
        {"var": "page_location", "matches": CATASTROPHIC}, "t", BUILTINS.__contains__
    )
    (regex,) = linear_regexes(condition)
    assert isinstance(regex.compiled, type(re2.compile("x")))
    assert regex.pattern == CATASTROPHIC
    scope = Scope({"page_location": HOSTILE_DL * 100}, None, None, {})
    assert condition(scope) is False
    assert condition(Scope({"page_location": "https://www.shop.example/p/1"}, None, None, {}))


def test_every_condition_regex_is_linear_including_nested_and_negated_ones() -> None:
    raw = {
        "any": [
            {"not": {"key": "a", "not_matches": "^x", "ignore_case": True}},
            [{"key": "b", "matches": "y$"}],
        ]
    }
    condition = compile_condition(raw, "t", BUILTINS.__contains__)
    regexes = linear_regexes(condition)
    assert sorted(r.pattern for r in regexes) == ["^x", "y$"]
    assert [r.ignore_case for r in regexes if r.pattern == "^x"] == [True]


@pytest.mark.parametrize(
    ("pattern", "text", "groups"),
    [
        (r"^/p/([^/]+)", "/p/shoe/red", ("/p/shoe", "shoe")),
        (r"(a)|(b)", "b", ("b", "", "b")),
        (r"(?P<id>\d+)", "x42", ("42", "42")),
        (r"(?i)ÉCOLE", "une école", ("école",)),
        (r"\pL+", "ñandú!", ("ñandú",)),
        (r"x\z", "x", ("x",)),
        (r"^a$", "a\n", None),  # RE2's `$` is the very end; Python's also before a last newline
        (r"(?m)^a$", "a\nb", ("a",)),
        (r"\d+", "٣٤", None),  # `\d` is ASCII in RE2 (Python's is Unicode)
        (r"a{,2}", "a{,2}", ("a{,2}",)),  # `{,n}` is literal text in RE2
        (r".", "\ud800", ("\ufffd",)),  # a lone surrogate matches as U+FFFD
    ],
)
def test_search(pattern: str, text: str, groups: tuple[str, ...] | None) -> None:
    assert Regex(pattern).search(text) == groups


def test_fullmatch_and_ignore_case() -> None:
    regex = Regex("/p/[a-z]+", ignore_case=True)
    assert regex.fullmatch("/P/SHOE") == ("/P/SHOE",)
    assert regex.fullmatch("/p/shoe/") is None
    assert Regex("/p/[a-z]+").fullmatch("/P/SHOE") is None


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (
            r"(a)\1",
            "has no backreference `\\1`: compare the two parts in separate conditions, or list"
            " the alternatives",
        ),
        (
            r"(?P<n>a)(?P=n)",
            "has no named backreference `(?P=name)`: compare the two values in separate conditions",
        ),
        (r"a(?=b)", "has no lookahead `(?=...)`: match the text itself, or add a second condition"),
        (
            r"a(?!b)",
            "has no negative lookahead `(?!...)`: add a second condition with `not_matches`",
        ),
        (r"(?<=a)b", "has no lookbehind `(?<=...)`: match the text before it too"),
        (
            r"(?<!a)b",
            "has no negative lookbehind `(?<!...)`: add a second condition with `not_matches`",
        ),
        (r"(?>a+)b", "has no atomic group `(?>...)`: a plain group `(?:...)` does the same here"),
        (
            r"a++",
            "has no possessive quantifier `++`: drop the last `+`: RE2 never backtracks, so the"
            " plain quantifier does the same",
        ),
        (r"a{2,5}+", "has no possessive quantifier `{2,5}+`"),
        (r"(a)?(?(1)b|c)", "has no conditional group `(?(1)...)`"),
        (r"a(?#note)", "has no comment group `(?#...)`"),
        (r"(?x) a b", "has no inline flags other than i, m, s and U"),
        (r"end\Z", "has no `\\Z`: write `\\z` (end of text)"),
        (r"caf\u00e9", "has no `\\uXXXX`: write the character itself, or `\\x{XXXX}`"),
        (r"a{1001}", "has no count over 1000 (`{1001}`; nested counts multiply): use `+`, `*`"),
        (r"(?:a{100}){100}", "has no count over 1000 (`{100}`; nested counts multiply)"),
    ],
)
def test_python_only_syntax_is_refused_with_a_rewrite(pattern: str, message: str) -> None:
    with pytest.raises(RegexError) as info:
        Regex(pattern)
    text = str(info.value)
    assert text.startswith("RE2 (sgtm's linear-time regex engine) " + message)
    assert text.endswith(SYNTAX)


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(", "missing ): ("),
        ("a)", "unexpected ): a)"),
        ("[z-a]", "invalid character class range: z-a"),
        ("a{2,1}", "invalid repetition size: {2,1}"),
        ("*", "no argument for repetition operator: *"),
    ],
)
def test_invalid_patterns_say_what_re2_found(pattern: str, reason: str) -> None:
    with pytest.raises(RegexError) as info:
        Regex(pattern)
    assert str(info.value) == (
        f"invalid regular expression: {reason} (RE2 syntax: https://github.com/google/re2/wiki/Syntax)"
    )


def load_errors(text: str) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load_text(textwrap.dedent(text), "shop.yaml", registry())
    return [str(e) for e in info.value.errors]


def test_the_loader_refuses_unsupported_patterns_where_they_are_written() -> None:
    errors = load_errors(
        r"""
        version: 1
        variables:
          section:
            type: regex_table
            input: page_path
            ignore_case: true
            patterns:
              - {match: "^/ok", value: ok}
              - {match: '^/(\w+)/\1', value: twice}
        triggers:
          look: {var: page_path, matches: "^/p(?=/)"}
          behind: {not: {var: page_path, not_matches: "(?<!x)y"}}
        transformations:
          - {type: exclude, params: [x], when: {key: a, matches: "a++"}}
        """
    )
    assert [e.split(": RE2")[0] for e in errors] == [
        "shop.yaml:10:17: variables.section.patterns[1].match",
        "shop.yaml:12:35: triggers.look.matches",
        "shop.yaml:13:47: triggers.behind.not.not_matches",
        "shop.yaml:15:58: transformations[0].when.matches",
    ]
    assert errors[1] in (ROOT / "docs" / "configuration.md").read_text()  # its example
    assert "has no backreference `\\1`" in errors[0]
    assert "has no lookahead" in errors[1]
    assert "has no negative lookbehind" in errors[2]
    assert "has no possessive quantifier `++`" in errors[3]


def test_sgtm_validate_rejects_an_unsupported_pattern(tmp_path: Path) -> None:
    config = tmp_path / "shop.yaml"
    config.write_text('version: 1\ntriggers:\n  t: {var: page_path, matches: "(a)\\\\1"}\n')
    done = subprocess.run(
        [sys.executable, "-m", "sgtm.cli", "validate", str(config)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(
        f"{config}:3:32: triggers.t.matches: RE2 (sgtm's linear-time regex engine) has no"
        " backreference `\\1`"
    )
    assert "re2.cc" not in done.stderr  # RE2's own logging stays off


def bind(name: str, type_name: str, **settings: Any) -> BoundVariable:
    vtype = registry().variables[type_name]
    return BoundVariable(name, vtype, msgspec.convert(settings, vtype.Settings, strict=False))


def resolve_table(table: BoundVariable, event: dict[str, Any]) -> Any:
    variables = [
        table,
        bind("subject", "event_data", key="subject"),
        bind("other", "event_data", key="other"),
    ]
    return Scope(event, None, None, {v.name: v for v in variables}).var(table.name)


def test_regex_table_reads_group_references_in_the_config_text_only() -> None:
    table = bind(
        "x",
        "regex_table",
        input="subject",
        patterns=[{"match": r"^/p/(\w+)", "value": "$1:{{other}}:$1"}],
    )
    # The hit's text is inserted as it is: its own `$1` is not a group reference.
    assert resolve_table(table, {"subject": "/p/shoe", "other": "a$1b$0"}) == "shoe:a$1b$0:shoe"
    assert resolve_table(table, {"subject": "/p/shoe"}) == "shoe::shoe"


def test_regex_table_on_re2_with_hostile_input() -> None:
    table = bind(
        "x",
        "regex_table",
        input="subject",
        patterns=[{"match": CATASTROPHIC, "value": "shop"}],
        default="other",
    )
    assert resolve_table(table, {"subject": HOSTILE_DL * 1000}) == "other"
    assert resolve_table(table, {"subject": "https://www.shop.example/p"}) == "shop"
    (regex,) = table.settings._compiled
    assert isinstance(regex.compiled, type(re2.compile("x")))


def test_answers_are_memoized_bounded_and_the_same() -> None:
    """Hits repeat their inputs, so a Regex keeps its answers for short texts; the memo never
    holds more than its bound, and long texts are answered every time, never kept."""
    from sgtm import regex

    pattern = Regex(r"^/p/([^/]+)")
    assert pattern.search("/p/shoe") == ("/p/shoe", "shoe") == pattern.search("/p/shoe")
    assert pattern.fullmatch("/p/shoe") == ("/p/shoe", "shoe")
    assert pattern.fullmatch("/p/shoe/x") is None and pattern.search("/p/shoe/x") is not None
    for n in range(regex._MEMO_ENTRIES * 3):
        assert pattern.search(f"/p/{n}") == (f"/p/{n}", str(n))
        assert len(pattern._memo) <= regex._MEMO_ENTRIES
    long_text = "/p/" + "x" * regex._MEMO_CHARS
    pattern._memo.clear()
    assert pattern.search(long_text) == (long_text, long_text[3:])
    assert pattern._memo == {}
