"""The core's variable types: event_data, constant, request_header, cookie, query_param, lookup,
regex_table.

This module is a plugin the core registers itself (`sgtm.plugins.DEFAULT_PLUGINS`): its types
register through the same hook as a third party's, but no entry-point allow-list can leave them
out. The per-event Scope they read is in `sgtm.scope`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

import msgspec

from sgtm.hookspecs import hookimpl
from sgtm.memo import remember
from sgtm.plugin import Variable
from sgtm.regex import Regex, RegexError
from sgtm.scope import BUILTIN_READS, BUILTINS, BoundVariable, Scope
from sgtm.templates import Renderer, compile_value, has_template, to_text, walk_references


def _render(renderer: Renderer | None, raw: Any, scope: Scope) -> Any:
    return renderer(scope) if renderer is not None else raw


class _Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class EventDataSettings(_Settings):
    key: str
    default: Any = None


class EventDataVariable(Variable[EventDataSettings]):
    name = "event_data"
    Settings = EventDataSettings
    description = "A value from the event data by dotted key (`user_data.email_address`)."

    def resolve(self, settings: EventDataSettings, scope: Scope) -> Any:
        value = scope.key(settings.key)
        return settings.default if value is None else value


class ConstantSettings(_Settings):
    value: Any


class ConstantVariable(Variable[ConstantSettings]):
    name = "constant"
    Settings = ConstantSettings
    description = "A fixed value."

    def resolve(self, settings: ConstantSettings, scope: Scope) -> Any:
        return settings.value


class NamedSettings(_Settings):
    name: str
    default: Any = None


class RequestHeaderVariable(Variable[NamedSettings]):
    name = "request_header"
    Settings = NamedSettings
    description = "A header of the incoming request (case-insensitive name)."

    def resolve(self, settings: NamedSettings, scope: Scope) -> Any:
        if scope.request is None:
            return settings.default
        return scope.request.headers.get(settings.name.lower(), settings.default)


class CookieVariable(Variable[NamedSettings]):
    name = "cookie"
    Settings = NamedSettings
    description = "A cookie of the incoming request."

    def resolve(self, settings: NamedSettings, scope: Scope) -> Any:
        if scope.request is None:
            return settings.default
        return scope.request.cookies.get(settings.name, settings.default)


class QueryParamVariable(Variable[NamedSettings]):
    name = "query_param"
    Settings = NamedSettings
    description = "A query parameter of the incoming request URL."

    def resolve(self, settings: NamedSettings, scope: Scope) -> Any:
        if scope.request is None:
            return settings.default
        return scope.request.query.get(settings.name, settings.default)


def _as_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


class LookupSettings(_Settings, dict=True):
    input: str
    map: dict[str, Any]
    default: Any = None

    def __post_init__(self) -> None:
        self._renderers = {k: compile_value(v) for k, v in self.map.items() if has_template(v)}
        self._default = compile_value(self.default) if has_template(self.default) else None


class LookupVariable(Variable[LookupSettings]):
    name = "lookup"
    Settings = LookupSettings
    description = "Maps the value of another variable through a table (exact match), else default."

    def references(self, settings: LookupSettings) -> list[str]:
        return [settings.input]

    def resolve(self, settings: LookupSettings, scope: Scope) -> Any:
        key = _as_key(scope.var(settings.input))
        if key in settings.map:
            return _render(settings._renderers.get(key), settings.map[key], scope)
        return _render(settings._default, settings.default, scope)


class RegexRow(_Settings):
    match: str
    value: Any

    def __post_init__(self) -> None:
        # Checked per row, "match: ..." so that the loader points at this row's pattern.
        try:
            Regex(self.match)
        except RegexError as exc:
            raise ValueError(f"match: {exc}") from None


class RegexTableSettings(_Settings, dict=True):
    input: str
    patterns: list[RegexRow]
    default: Any = None
    ignore_case: bool = False
    full_match: bool = False

    def __post_init__(self) -> None:
        self._compiled = [Regex(row.match, ignore_case=self.ignore_case) for row in self.patterns]
        self._values = [_group_template(row.value) for row in self.patterns]
        self._default = compile_value(self.default)
        # Which row matched a subject, and its groups ((-1, ()) for none): inputs repeat (page
        # paths, hostnames), and one lookup replaces a search per row until one matches. Only
        # what the subject decides is kept; a row's value is rendered per event. A bounded memo
        # (sgtm/memo.py), as the Regex one.
        self._rows: dict[str, tuple[int, tuple[str, ...]]] = {}

    def row(self, subject: str) -> tuple[int, tuple[str, ...]]:
        found = self._rows.get(subject)
        if found is not None:
            return found
        found = -1, ()
        for index, pattern in enumerate(self._compiled):
            groups = pattern.fullmatch(subject) if self.full_match else pattern.search(subject)
            if groups is not None:
                found = index, groups
                break
        if len(subject) <= _ROW_MEMO_CHARS:
            remember(self._rows, subject, found, _ROW_MEMO_ENTRIES)
        return found


_ROW_MEMO_ENTRIES = 1024
_ROW_MEMO_CHARS = 512


class RegexTableVariable(Variable[RegexTableSettings]):
    name = "regex_table"
    Settings = RegexTableSettings
    description = "The value of the first pattern matching another variable; `$1` inserts groups."

    def references(self, settings: RegexTableSettings) -> list[str]:
        return [settings.input]

    def resolve(self, settings: RegexTableSettings, scope: Scope) -> Any:
        index, groups = settings.row(_as_key(scope.var(settings.input)))
        return settings._values[index](scope, groups) if index >= 0 else settings._default(scope)


_GROUP_REF = re.compile(r"\$([0-9])")
GroupTemplate = Callable[[Scope, tuple[str, ...]], Any]


def _group_template(value: Any) -> GroupTemplate:
    """A row's value: `$0`..`$9` in its own text become the match's groups (a reference to a
    group the pattern lacks stays as written). Only the config's text is read for `$n`, never
    what a `{{variable}}` inside it renders to, so a hit cannot ask for a group."""
    parts = _GROUP_REF.split(value) if isinstance(value, str) else [value]
    if len(parts) == 1:
        render = compile_value(value)
        return lambda scope, groups: render(scope)
    # split() alternates text and group numbers: text, n, text, n, ..., text.
    texts = [compile_value(text) for text in parts[0::2]]
    numbers = [int(n) for n in parts[1::2]]

    def insert(scope: Scope, groups: tuple[str, ...]) -> str:
        out = [to_text(texts[0](scope))]
        for number, text in zip(numbers, texts[1:], strict=True):
            out.append(groups[number] if number < len(groups) else f"${number}")
            out.append(to_text(text(scope)))
        return "".join(out)

    return insert


# What a core variable type reads of an event: (event keys, other variables), from its settings.
# Only these exact types: a plugin's type (or a subclass) may read anything.
def _templates_read(*values: Any) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    names: list[str] = []
    for value in values:
        for _, name in walk_references(value):
            if name.startswith("event."):
                keys.append(name[len("event.") :])
            else:
                names.append(name)
    return keys, names


def _lookup_reads(settings: LookupSettings) -> tuple[list[str], list[str]]:
    keys, names = _templates_read(settings.map, settings.default)
    return keys, [settings.input, *names]


def _regex_table_reads(settings: RegexTableSettings) -> tuple[list[str], list[str]]:
    keys, names = _templates_read([row.value for row in settings.patterns], settings.default)
    return keys, [settings.input, *names]


_READS: dict[type, Callable[[Any], tuple[list[str], list[str]]]] = {
    EventDataVariable: lambda settings: ([settings.key], []),
    ConstantVariable: lambda settings: ([], []),
    RequestHeaderVariable: lambda settings: ([], []),
    CookieVariable: lambda settings: ([], []),
    QueryParamVariable: lambda settings: ([], []),
    LookupVariable: _lookup_reads,
    RegexTableVariable: _regex_table_reads,
}


def view_shared(
    variables: Mapping[str, BoundVariable], written: Collection[str] | None
) -> frozenset[str]:
    """The variables whose value on a tag's view of an event is their value on the event itself
    (`Scope.view`): every event key they read, themselves or through other variables, is apart
    from the paths the tag's transformations write (`written`, None when one may change any:
    `allow`). A plugin's variable type is never shared: what it reads is not known."""
    written_paths = [_written_part(path) for path in written or ()]

    def apart(key: str) -> bool:
        return not any(
            key == path or key.startswith(path + ".") or path.startswith(key + ".")
            for path in written_paths
        )

    reads: dict[str, frozenset[str] | None] = {}

    def event_keys(name: str) -> frozenset[str] | None:
        """The event keys `name` reads, None when not known (or when it reads itself)."""
        if name in reads:
            return reads[name]
        reads[name] = None  # a cycle stays unknown
        bound = variables.get(name)
        found: frozenset[str] | None
        if bound is None:
            found = frozenset(BUILTIN_READS.get(name, ()))
        else:
            read = _READS.get(type(bound.type))
            found = None
            if read is not None:
                keys, names = read(bound.settings)
                found = frozenset(keys)
                for other in names:
                    more = event_keys(other)
                    if more is None:
                        found = None
                        break
                    found |= more
        reads[name] = found
        return found

    shared = set()
    for name in [*variables, *BUILTINS]:
        keys = event_keys(name)
        if keys is not None and (written is not None or not keys) and all(map(apart, keys)):
            shared.add(name)
    return frozenset(shared)


def _written_part(path: str) -> str:
    """What a write at `path` may change: its whole path, but from a list index on, the whole
    list (deleting an item moves the next ones; writing past the end replaces the list). The
    top level is a dict: its keys are never indexes."""
    parts = path.split(".")
    for i in range(1, len(parts)):
        if parts[i].isdigit():
            return ".".join(parts[:i])
    return path


@hookimpl
def register_variable_types(register: Callable[[Any], None]) -> None:
    for variable in (
        EventDataVariable(),
        ConstantVariable(),
        RequestHeaderVariable(),
        CookieVariable(),
        QueryParamVariable(),
        LookupVariable(),
        RegexTableVariable(),
    ):
        register(variable)
