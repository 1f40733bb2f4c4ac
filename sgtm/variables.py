"""The core's variable types: event_data, constant, request_header, cookie, query_param, lookup,
regex_table.

This module is a plugin the core registers itself (`sgtm.plugins.DEFAULT_PLUGINS`): its types
register through the same hook as a third party's, but no entry-point allow-list can leave them
out. The per-event Scope they read is in `sgtm.scope`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec

from sgtm.hookspecs import hookimpl
from sgtm.plugin import Variable
from sgtm.scope import Scope
from sgtm.templates import Renderer, compile_value, has_template


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
        # Checked per row so the loader reports the row's position (`patterns[1]`).
        try:
            re.compile(self.match)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {self.match!r}: {exc}") from None


class RegexTableSettings(_Settings, dict=True):
    input: str
    patterns: list[RegexRow]
    default: Any = None
    ignore_case: bool = False
    full_match: bool = False

    def __post_init__(self) -> None:
        flags = re.IGNORECASE if self.ignore_case else 0
        # re.error here is reported by the config loader with the row's position.
        self._compiled = [re.compile(row.match, flags) for row in self.patterns]
        self._renderers = [compile_value(row.value) for row in self.patterns]
        self._default = compile_value(self.default)


class RegexTableVariable(Variable[RegexTableSettings]):
    name = "regex_table"
    Settings = RegexTableSettings
    description = "The value of the first pattern matching another variable; `$1` inserts groups."

    def references(self, settings: RegexTableSettings) -> list[str]:
        return [settings.input]

    def resolve(self, settings: RegexTableSettings, scope: Scope) -> Any:
        subject = _as_key(scope.var(settings.input))
        for pattern, render in zip(settings._compiled, settings._renderers, strict=True):
            match = pattern.fullmatch(subject) if settings.full_match else pattern.search(subject)
            if match is None:
                continue
            value = render(scope)
            if isinstance(value, str) and "$" in value:
                value = _insert_groups(value, match)
            return value
        return settings._default(scope)


def _insert_groups(text: str, match: re.Match[str]) -> str:
    def group(ref: re.Match[str]) -> str:
        index = int(ref.group(1))
        return (match.group(index) or "") if index <= (match.re.groups or 0) else ref.group(0)

    return re.sub(r"\$(\d)", group, text)


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
