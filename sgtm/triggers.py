"""Trigger conditions, compiled once at load into plain closures over a Scope.

Grammar (docs/design.md): `all: [..]`, `any: [..]`, `not: cond`, a list (= all), the shorthand
`event_name: X`, and leaves `{var|key: NAME, OP: VALUE}` with OP one of OPERATORS or `not_` + OP.
`var` names a variable (user-defined or built-in); `key` a dotted event data path.
`ignore_case: true` on a leaf makes string operators case-insensitive. `matches` patterns run on
RE2 (sgtm.regex): linear in the text whatever the pattern.

Comparison rules, as GTM's: string operators compare text (a missing value never matches);
`equals` with a number or boolean compares as that type; gt/gte/lt/lte are numeric and false for
anything that is not a number; `in` takes a list; `exists: true` means present and not null.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from sgtm.regex import Regex, RegexError
from sgtm.scope import Scope
from sgtm.templates import to_text

Condition = Callable[[Scope], bool]

OPERATORS = (
    "equals",
    "contains",
    "starts_with",
    "ends_with",
    "matches",
    "in",
    "gt",
    "gte",
    "lt",
    "lte",
    "exists",
)
ALL_OPERATORS = OPERATORS + tuple(f"not_{op}" for op in OPERATORS)


class ConditionError(Exception):
    def __init__(self, path: str, message: str, *, at_key: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.at_key = at_key


def always(scope: Scope) -> bool:
    return True


def compile_condition(raw: Any, path: str, is_variable: Callable[[str], bool]) -> Condition:
    """Compile a condition; raises ConditionError with the config path of the first problem."""
    from sgtm.yamlsource import join_path

    if isinstance(raw, list):
        return all_of(
            [compile_condition(c, join_path(path, i), is_variable) for i, c in enumerate(raw)]
        )
    if not isinstance(raw, dict):
        raise ConditionError(path, f"a condition must be a mapping, got {type(raw).__name__}")
    if not raw:
        raise ConditionError(path, "empty condition (use `all: []` for one that always matches)")
    keys = set(raw)
    for combinator in ("all", "any"):
        if combinator in keys:
            if keys != {combinator}:
                raise ConditionError(path, f"`{combinator}` must be the only key of its condition")
            items = raw[combinator]
            if not isinstance(items, list):
                raise ConditionError(join_path(path, combinator), "expected a list of conditions")
            sub = join_path(path, combinator)
            parts = [
                compile_condition(c, join_path(sub, i), is_variable) for i, c in enumerate(items)
            ]
            return all_of(parts) if combinator == "all" else any_of(parts)
    if "not" in keys:
        if keys != {"not"}:
            raise ConditionError(path, "`not` must be the only key of its condition")
        inner = compile_condition(raw["not"], join_path(path, "not"), is_variable)
        return lambda scope: not inner(scope)
    if keys == {"event_name"}:
        try:
            return _leaf({"var": "event_name", "equals": raw["event_name"]}, path, is_variable)
        except ConditionError as exc:  # name the key the user wrote, not the expansion
            raise ConditionError(join_path(path, "event_name"), str(exc)) from None
    return _leaf(raw, path, is_variable)


def never(scope: Scope) -> bool:
    return False


# A loop, not all()/any() over a generator (a frame resumed per item): a trigger runs per event
# and tag.
def all_of(parts: Sequence[Condition]) -> Condition:
    """A condition true when every one of `parts` is (`always` when there are none)."""
    if not parts:
        return always
    if len(parts) == 1:
        return parts[0]
    conditions = tuple(parts)

    def check(scope: Scope) -> bool:
        for condition in conditions:  # noqa: SIM110 - see above
            if not condition(scope):
                return False
        return True

    return check


def any_of(parts: Sequence[Condition]) -> Condition:
    """A condition true when one of `parts` is (`never` when there are none)."""
    if not parts:
        return never
    if len(parts) == 1:
        return parts[0]
    conditions = tuple(parts)

    def check(scope: Scope) -> bool:
        for condition in conditions:  # noqa: SIM110 - see above
            if condition(scope):
                return True
        return False

    return check


def _leaf(raw: dict[str, Any], path: str, is_variable: Callable[[str], bool]) -> Condition:
    from sgtm.yamlsource import join_path

    sources = [k for k in ("var", "key") if k in raw]
    if len(sources) != 1:
        raise ConditionError(path, "a condition needs exactly one of `var` or `key`")
    source = sources[0]
    name = raw[source]
    if not isinstance(name, str) or not name:
        raise ConditionError(join_path(path, source), "expected a non-empty name")
    if source == "var" and not is_variable(name):
        raise ConditionError(join_path(path, source), f"unknown variable '{name}'")
    ignore_case = raw.get("ignore_case", False)
    if not isinstance(ignore_case, bool):
        raise ConditionError(join_path(path, "ignore_case"), "expected true or false")
    ops = [k for k in raw if k not in ("var", "key", "ignore_case")]
    unknown = [k for k in ops if k not in ALL_OPERATORS]
    if unknown:
        raise ConditionError(
            join_path(path, unknown[0]),
            f"unknown operator '{unknown[0]}' (expected one of {', '.join(OPERATORS)} or not_<op>)",
            at_key=True,
        )
    if len(ops) != 1:
        raise ConditionError(path, "a condition needs exactly one operator")
    op = ops[0]
    negate = op.startswith("not_")
    test = _operator(op.removeprefix("not_"), raw[op], join_path(path, op), ignore_case)

    # One closure per source and sign: a leaf costs its read and its test, nothing in between.
    if source == "var":
        if negate:
            return lambda scope: not test(scope.var(name))
        return lambda scope: test(scope.var(name))
    if negate:
        return lambda scope: not test(scope.key(name))
    return lambda scope: test(scope.key(name))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float (JSON allows any length)
            return None
    elif isinstance(value, str):
        if "_" in value or not value.isascii():  # float() accepts "1_000" and non-ASCII digits
            return None
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _text(value: Any, ignore_case: bool) -> str | None:
    if value is None:
        return None
    text = to_text(value)
    return text.lower() if ignore_case else text


def _operator(op: str, expected: Any, path: str, ignore_case: bool) -> Callable[[Any], bool]:
    if op == "exists":
        if not isinstance(expected, bool):
            raise ConditionError(path, "`exists` takes true or false")
        return (lambda v: v is not None) if expected else (lambda v: v is None)
    if op in ("gt", "gte", "lt", "lte"):
        bound = _number(expected)
        if bound is None:
            raise ConditionError(path, f"`{op}` needs a number")
        compare: Callable[[float], bool] = {
            "gt": lambda n: n > bound,
            "gte": lambda n: n >= bound,
            "lt": lambda n: n < bound,
            "lte": lambda n: n <= bound,
        }[op]
        return lambda v: (n := _number(v)) is not None and compare(n)
    if op == "in":
        if not isinstance(expected, list):
            raise ConditionError(path, "`in` needs a list")
        # Numbers and booleans in the list compare as `equals` does (10 matches 10.0 and "10").
        typed = [
            _operator("equals", x, path, ignore_case)
            for x in expected
            if isinstance(x, (bool, int, float))
        ]
        options = {_text(x, ignore_case) for x in expected if not isinstance(x, (bool, int, float))}
        return lambda v: (
            v is not None and (_text(v, ignore_case) in options or any(t(v) for t in typed))
        )
    if op == "equals":
        if isinstance(expected, bool):
            return lambda v: v is expected or _text(v, True) == to_text(expected)
        if isinstance(expected, (int, float)):
            return lambda v: _number(v) == expected
    if isinstance(expected, (dict, list)) or expected is None:
        raise ConditionError(path, f"`{op}` needs a string, number or boolean")
    if op == "matches":
        try:
            pattern = Regex(str(expected), ignore_case=ignore_case)
        except RegexError as exc:
            raise ConditionError(path, str(exc)) from None
        return lambda v: v is not None and pattern.search(to_text(v)) is not None
    want = _text(expected, ignore_case) or ""
    if op == "contains":

        def contains(v: Any) -> bool:
            if isinstance(v, list):
                return any(_text(x, ignore_case) == want for x in v)
            text = _text(v, ignore_case)
            return text is not None and want in text

        return contains
    test = _text_test(op, want)
    if test is None:
        raise ConditionError(path, f"unknown operator '{op}'")  # pragma: no cover - guarded above
    if ignore_case:
        # Text as _text gives it: a str lowered, anything else through to_text.
        return lambda v: test(v.lower() if v.__class__ is str else _text(v, True))
    return lambda v: test(v if v.__class__ is str else _text(v, False))


def _text_test(op: str, want: str) -> Callable[[Any], bool] | None:
    """`equals`, `starts_with` or `ends_with` on a value already turned into text (None for
    None); None for another operator."""
    if op == "equals":
        return lambda t: t == want
    if op == "starts_with":
        return lambda t: t is not None and t.startswith(want)
    if op == "ends_with":
        return lambda t: t is not None and t.endswith(want)
    return None
