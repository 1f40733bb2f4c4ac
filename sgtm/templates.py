"""`{{variable}}` and `{{event.dotted.key}}` templates in settings strings.

A template is compiled once at load into a function of the event's Scope. There is no expression
language: a reference is a name, nothing is evaluated, so a template can never execute code.
A string that is exactly one reference keeps the value's type (a number stays a number, `items`
stays a list); a reference inside longer text is rendered as text (JSON for lists and dicts).

In a URL (a settings field declared `sgtm.plugin.Url`), a value is encoded for the component it
lands in: a path segment or a query or fragment value, so `../../admin?x=1#` stays inside its
segment. A reference in the scheme, host or port is refused at load: an event never chooses where
a request goes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec

from sgtm import fields
from sgtm.fields import FieldPath

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


# How a compiled piece is rendered: as it is, read straight from the Scope (a variable, an
# event key), or by calling its renderer. Settings are rendered per event and tag: a read is
# one call, not a call of a closure that calls it.
_FIXED, _VAR, _KEY, _RENDER = range(4)
_Piece = tuple[int, Any]


def _reference(name: str) -> _Piece:
    if name.startswith("event."):
        return _KEY, name[len("event.") :]
    return _VAR, name


def _render_all(pieces: list[_Piece], scope: Scope) -> list[Any]:
    out = []
    for kind, arg in pieces:
        if kind == _VAR:
            out.append(scope.var(arg))
        elif kind == _FIXED:
            out.append(arg)
        elif kind == _KEY:
            out.append(scope.key(arg))
        else:
            out.append(arg(scope))
    return out


def compile_string(text: str) -> Renderer:
    whole = _REF_RE.fullmatch(text.strip())
    if whole:
        return _lookup(whole.group(1))
    pieces: list[_Piece] = []
    last = 0
    for match in _REF_RE.finditer(text):
        if match.start() > last:
            pieces.append((_FIXED, text[last : match.start()]))
        pieces.append(_reference(match.group(1)))
        last = match.end()
    if last < len(text):
        pieces.append((_FIXED, text[last:]))

    def render(scope: Scope) -> str:
        values = _render_all(pieces, scope)
        return "".join([v if v.__class__ is str else to_text(v) for v in values])

    return render


class TemplateError(ValueError):
    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path  # within the value compiled, e.g. "url"


def _url_component(literal_before: str) -> str:
    """The URL component text following `literal_before` belongs to."""
    scheme_end = literal_before.find("://")
    if scheme_end < 0:
        return "authority"
    rest = literal_before[scheme_end + 3 :]
    if "#" in rest:
        return "fragment"
    if "?" in rest:
        return "query"
    return "path" if "/" in rest else "authority"


def _encode_for_url(value: str) -> str:
    text = quote(value, safe="")
    # A whole segment of dots would walk up the path once a client normalizes the URL.
    return text.replace(".", "%2E") if text.strip(".") == "" else text


def _encoded(lookup: Renderer) -> Renderer:
    return lambda scope: _encode_for_url(to_text(lookup(scope)))


def compile_url(text: str) -> Renderer:
    """A renderer for a URL template: references only in the path, query or fragment, each
    value percent-encoded for its component; TemplateError otherwise."""
    literal = ""
    pieces: list[str | Renderer] = []
    last = 0
    for match in _REF_RE.finditer(text):
        literal += text[last : match.start()]
        if match.start() > last:
            pieces.append(text[last : match.start()])
        if _url_component(literal) == "authority":
            raise TemplateError(
                f"{{{{{match.group(1)}}}}} is in the URL's scheme or host: templates may fill the"
                " path and query only, an event must never choose where a request goes"
            )
        pieces.append(_encoded(_lookup(match.group(1))))
        last = match.end()
    if last < len(text):
        pieces.append(text[last:])

    def render(scope: Scope) -> str:
        return "".join(p if isinstance(p, str) else p(scope) for p in pieces)

    return render


def compile_value(
    value: Any, urls: tuple[FieldPath, ...] = (), path: tuple[str | int, ...] = ()
) -> Renderer:
    """A renderer for any settings structure; untemplated parts are returned as they are.
    Strings at `urls` (paths of `Url` fields, `sgtm.fields`) compile as URL templates."""
    if not has_template(value):
        return lambda scope: value
    if isinstance(value, str):
        if not fields.matches(path, urls):
            return compile_string(value)
        try:
            return compile_url(value)
        except TemplateError as exc:
            exc.path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
            exc.path = exc.path.lstrip(".")
            raise
    if isinstance(value, dict):
        keys = list(value)
        values = [_piece(v, urls, (*path, k)) for k, v in value.items()]
        return lambda scope: dict(zip(keys, _render_all(values, scope), strict=True))
    items = [_piece(v, urls, (*path, i)) for i, v in enumerate(value)]
    return lambda scope: _render_all(items, scope)


def _piece(value: Any, urls: tuple[FieldPath, ...], path: tuple[str | int, ...]) -> _Piece:
    """A value inside a structure: fixed, a whole reference read as it is (not in a URL, whose
    values are encoded), or rendered."""
    if not has_template(value):
        return _FIXED, value
    if isinstance(value, str) and not fields.matches(path, urls):
        whole = _REF_RE.fullmatch(value.strip())
        if whole:
            return _reference(whole.group(1))
    return _RENDER, compile_value(value, urls, path)


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
