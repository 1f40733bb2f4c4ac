r"""Regular expressions that a config supplies, compiled for RE2: time linear in the text matched.

Python's `re` backtracks: `^(https?://)?([a-z0-9]+\.)*shop\.example(/.*)*$` over a crafted
`page_location` takes minutes. RE2 (the google-re2 binding) runs any pattern in time linear in
the text, so every regex from a config (`matches` conditions, `regex_table` rows) compiles here.
The price is a smaller dialect: no backreferences or lookaround (they need backtracking), no
atomic groups or possessive quantifiers. Such patterns are refused at load with the reason and
a rewrite, so `sgtm validate` reports them. Syntax: https://github.com/google/re2/wiki/Syntax

What RE2 accepts but reads differently from Python (docs/configuration.md tells users): `\d \w \s
\b` are ASCII-only; `$` matches only at the very end (Python's also before a final newline);
`{,n}` is literal text (write `{0,n}`); `\10` and up are octal escapes, not backreferences.
"""

from __future__ import annotations

import re
from typing import Any

import re2

from sgtm.memo import remember

SYNTAX_URL = "https://github.com/google/re2/wiki/Syntax"

# RE2's error text names the construct it stopped at. For the ones Python accepts: what it is,
# and how to get the same for RE2.
_PERL_OPERATORS = {
    "(?=": ("lookahead `(?=...)`", "match the text itself, or add a second condition"),
    "(?!": ("negative lookahead `(?!...)`", "add a second condition with `not_matches`"),
    "(?<=": ("lookbehind `(?<=...)`", "match the text before it too"),
    "(?<!": ("negative lookbehind `(?<!...)`", "add a second condition with `not_matches`"),
    "(?>": ("atomic group `(?>...)`", "a plain group `(?:...)` does the same here"),
    "(?(": ("conditional group `(?(1)...)`", "write one condition per case under `any:`"),
    "(?P": ("named backreference `(?P=name)`", "compare the two values in separate conditions"),
    "(?#": ("comment group `(?#...)`", "remove it (a YAML # comment can say the same)"),
}
_FLAGS = ("inline flags other than i, m, s and U", "remove them (`ignore_case: true` is i)")
_ESCAPES = {
    "\\Z": ("`\\Z`", "write `\\z` (end of text)"),
    "\\u": ("`\\uXXXX`", "write the character itself, or `\\x{XXXX}`"),
    "\\U": ("`\\UXXXXXXXX`", "write the character itself, or `\\x{XXXXX}`"),
    "\\N": ("`\\N{name}`", "write the character itself, or `\\x{XXXX}`"),
}
_BACKREFERENCE = "compare the two parts in separate conditions, or list the alternatives"
_POSSESSIVE = "drop the last `+`: RE2 never backtracks, so the plain quantifier does the same"
_BIG_COUNT = "use `+`, `*` or `{n,}`"
_COUNT = re.compile(r"\{([0-9]+)(?:,([0-9]*))?\}")
_SURROGATE = re.compile("[\ud800-\udfff]")


class RegexError(ValueError):
    """A pattern RE2 cannot compile; the message says why and, where it can, how to rewrite it."""


class Regex:
    """A compiled config regex. Matches give the groups: `[0]` the whole match, `[n]` group n
    ("" when it did not take part)."""

    __slots__ = ("_memo", "compiled", "ignore_case", "pattern")

    def __init__(self, pattern: str, *, ignore_case: bool = False) -> None:
        options = re2.Options()
        options.log_errors = False  # RE2 would print every refused pattern on stderr
        options.case_sensitive = not ignore_case
        try:
            self.compiled: Any = re2.compile(pattern, options)
        except re2.error as exc:
            raise RegexError(_explain(pattern, exc)) from None
        self.pattern = pattern
        self.ignore_case = ignore_case
        # Answers for short texts (page paths, hostnames, event names), in a bounded memo
        # (sgtm/memo.py; an answer is a tuple of strings, shared safely).
        self._memo: dict[tuple[bool, str], tuple[str, ...] | None] = {}

    def search(self, text: str) -> tuple[str, ...] | None:
        return self._answer(False, text)

    def fullmatch(self, text: str) -> tuple[str, ...] | None:
        return self._answer(True, text)

    def _answer(self, full: bool, text: str) -> tuple[str, ...] | None:
        key = (full, text)
        try:
            return self._memo[key]
        except KeyError:
            pass
        subject = _encodable(text)
        found = _groups(self.compiled.fullmatch(subject) if full else self.compiled.search(subject))
        if len(text) <= _MEMO_CHARS:
            remember(self._memo, key, found, _MEMO_ENTRIES)
        return found

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r}, ignore_case={self.ignore_case})"


_MEMO_ENTRIES = 1024
_MEMO_CHARS = 512


def _groups(match: Any) -> tuple[str, ...] | None:
    if match is None:
        return None
    return (match.group(0), *match.groups(default=""))


def _encodable(text: str) -> str:
    """The binding encodes to UTF-8, which a lone surrogate (possible in decoded hit text) has no
    form in: match it as U+FFFD, one character for one, so group offsets stay put."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def _explain(pattern: str, exc: re2.error) -> str:
    raw = exc.args[0] if exc.args else ""
    reason = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    kind, _, fragment = reason.partition(": ")
    unsupported = None
    if kind == "invalid perl operator":
        unsupported = next(
            (u for op, u in _PERL_OPERATORS.items() if fragment.startswith(op)), None
        )
        if unsupported is None and fragment[2:3].isalpha():
            unsupported = _FLAGS
    elif kind == "invalid escape sequence":
        if len(fragment) == 2 and fragment[1] in "123456789":
            unsupported = (f"backreference `{fragment}`", _BACKREFERENCE)
        else:
            unsupported = _ESCAPES.get(fragment[:2])
    elif kind == "bad repetition operator" and len(fragment) > 1 and fragment.endswith("+"):
        unsupported = (f"possessive quantifier `{fragment}`", _POSSESSIVE)
    elif kind == "invalid repetition size" and _is_count(fragment):
        unsupported = (f"count over 1000 (`{fragment}`; nested counts multiply)", _BIG_COUNT)
    if unsupported is None:
        return f"invalid regular expression: {reason} (RE2 syntax: {SYNTAX_URL})"
    construct, rewrite = unsupported
    return f"RE2 (sgtm's linear-time regex engine) has no {construct}: {rewrite}; see {SYNTAX_URL}"


def _is_count(fragment: str) -> bool:
    """`{n}`, `{n,}` or `{n,m}` with n <= m: fine in Python, too big for RE2 (alone or nested)."""
    count = _COUNT.fullmatch(fragment)
    return count is not None and (not count[2] or int(count[1]) <= int(count[2]))
