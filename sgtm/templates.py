"""`{{variable}}` and `{{event.dotted.key}}` templates in settings strings.

A template is compiled once at load into a function of the event's Scope. There is no expression
language: a reference is a name, nothing is evaluated, so a template can never execute code.
A string that is exactly one reference keeps the value's type (a number stays a number, `items`
stays a list); a reference inside longer text is rendered as text (JSON for lists and dicts).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from sgtm.scope import Scope

_REF_RE = re.compile(r"\{\{\s*([A-Za-z_][\w.\-]*)\s*\}\}")

Renderer = Callable[["Scope"], Any]


def references(text: str) -> list[str]:
    """Names a string refers to: variable names, or `event.<path>` for event data."""
    return _REF_RE.findall(text)


def has_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value and _REF_RE.search(value) is not None
    if isinstance(value, dict):
        return any(has_template(v) for v in value.values())
    if isinstance(value, list):
        return any(has_template(v) for v in value)
    return False


def _lookup(name: str) -> Renderer:
    if name.startswith("event."):
        path = name[len("event.") :]
        return lambda scope: scope.key(path)
    return lambda scope: scope.var(name)


def to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return msgspec.json.encode(value).decode()
    return str(value)


def compile_string(text: str) -> Renderer:
    whole = _REF_RE.fullmatch(text.strip())
    if whole:
        return _lookup(whole.group(1))
    pieces: list[str | Renderer] = []
    last = 0
    for match in _REF_RE.finditer(text):
        if match.start() > last:
            pieces.append(text[last : match.start()])
        pieces.append(_lookup(match.group(1)))
        last = match.end()
    if last < len(text):
        pieces.append(text[last:])

    def render(scope: Scope) -> str:
        return "".join(p if isinstance(p, str) else to_text(p(scope)) for p in pieces)

    return render


def compile_value(value: Any) -> Renderer:
    """A renderer for any settings structure; untemplated parts are returned as they are."""
    if not has_template(value):
        return lambda scope: value
    if isinstance(value, str):
        return compile_string(value)
    if isinstance(value, dict):
        parts = {k: compile_value(v) for k, v in value.items()}
        return lambda scope: {k: r(scope) for k, r in parts.items()}
    items = [compile_value(v) for v in value]
    return lambda scope: [r(scope) for r in items]


def walk_references(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(config path, referenced name) for every reference in a structure, for load-time checks."""
    from sgtm.yamlsource import join_path

    out: list[tuple[str, str]] = []
    if isinstance(value, str):
        out.extend((path, name) for name in references(value))
    elif isinstance(value, dict):
        for k, v in value.items():
            out.extend(walk_references(v, join_path(path, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(walk_references(v, join_path(path, i)))
    return out
