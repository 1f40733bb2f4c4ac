"""The per-event Scope: how variables, triggers and templates read one event.

A Scope lives for one event. Each variable is computed at most once per Scope (sGTM evaluates
variables lazily too), so a trigger and three tags reading `{{email}}` pay once. A name that is
not a container variable falls back to sGTM's built-in variables (`page_path`, `client_name`...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sgtm import event as ev
from sgtm.memo import remember
from sgtm.request import HitRequest

if TYPE_CHECKING:
    from sgtm.plugin import Variable


@dataclass(slots=True)
class BoundVariable:
    """A user variable from the container: its type and decoded settings."""

    name: str
    type: Variable[Any]
    settings: Any


class Scope:
    """What a variable, a trigger or a template sees of one event.

    `event` is the event data, `request` the `HitRequest` (None for events fed straight in),
    `client_name` the client that parsed it. `key("a.b")` reads a dotted event key; `var(name)`
    reads a variable, computed at most once per Scope.
    """

    __slots__ = (
        "_cache",
        "_held",
        "_parent",
        "_shared",
        "client_name",
        "event",
        "request",
        "variables",
    )

    def __init__(
        self,
        event: ev.EventData,
        request: HitRequest | None,
        client_name: str | None,
        variables: Mapping[str, BoundVariable],
    ) -> None:
        self.event = event
        self.request = request
        self.client_name = client_name
        self.variables = variables
        self._cache: dict[str, Any] = {}
        self._parent: Scope | None = None
        self._shared: frozenset[str] = frozenset()
        self._held: dict[Callable[[Scope], bool], bool] | None = None

    def view(self, event: ev.EventData, shared: frozenset[str]) -> Scope:
        """A Scope of a tag's view of this Scope's event (its transformations applied). The
        variables named in `shared` read nothing the transformations wrote
        (`sgtm.variables.view_shared`): their values are this Scope's, computed once for every
        tag; the others are computed on the view."""
        scope = Scope(event, self.request, self.client_name, self.variables)
        scope._parent = self
        scope._shared = shared
        return scope

    def holds(self, condition: Callable[[Scope], bool]) -> bool:
        """`condition(self)`, evaluated once per Scope: a transformation's `when` is the same for
        every tag it affects."""
        held = self._held
        if held is None:
            held = self._held = {}
        elif condition in held:
            return held[condition]
        result = held[condition] = condition(self)
        return result

    def key(self, path: str) -> Any:
        return ev.get(self.event, path)

    def var(self, name: str) -> Any:
        cache = self._cache
        value = cache.get(name, _UNSET)  # not try/except: every first read would raise
        if value is not _UNSET:
            return value
        if name in self._shared:
            value = cache[name] = self._parent.var(name)  # type: ignore[union-attr]
            return value
        bound = self.variables.get(name)
        if bound is not None:
            cache[name] = None  # a variable that reads itself sees None, not a recursion error
            value = bound.type.resolve(bound.settings, self)
        else:
            builtin = BUILTINS.get(name)
            value = builtin(self) if builtin is not None else None
        cache[name] = value
        return value


_UNSET = object()


def _top(key: str) -> Callable[[Scope], Any]:
    # A key without dots: what `scope.key` gives, one dict lookup.
    return lambda scope: scope.event.get(key)


def _page_part(part: str) -> Callable[[Scope], Any]:
    own_key = f"page_{part}"
    index = 0 if part == "hostname" else 1

    def get(scope: Scope) -> Any:
        event = scope.event
        explicit = event.get(own_key)
        if explicit is not None:
            return explicit
        location = event.get("page_location")
        if not isinstance(location, str) or not location:
            return None
        parts = _PAGE_PARTS.get(location)
        if parts is None:
            parts = _page_parts(location)
            if len(location) <= _PAGE_MEMO_CHARS:
                remember(_PAGE_PARTS, location, parts, _PAGE_MEMO_ENTRIES)
        return parts[index]

    return get


# Hits repeat their pages: (hostname, path) by page_location, in a bounded memo (sgtm/memo.py).
# Splitting the URL and reading its hostname (a Python property) cost more than the rest of a
# trigger.
_PAGE_PARTS: dict[str, tuple[str | None, str | None]] = {}
_PAGE_MEMO_ENTRIES = 1024
_PAGE_MEMO_CHARS = 2048


def _page_parts(location: str) -> tuple[str | None, str | None]:
    try:
        split = urlsplit(location)
    except ValueError:
        return None, None
    # As a browser's URL.pathname: an http(s) URL without a path has the path "/".
    return split.hostname, split.path or ("/" if split.netloc else "")


# The event keys each built-in variable reads (the others read the request or nothing).
BUILTIN_READS: dict[str, tuple[str, ...]] = {
    "event_name": ("event_name",),
    "page_location": ("page_location",),
    "page_path": ("page_path", "page_location"),
    "page_hostname": ("page_hostname", "page_location"),
    "page_referrer": ("page_referrer",),
    "client_id": ("client_id",),
    "user_id": ("user_id",),
    "ip_override": ("ip_override",),
    "user_agent": ("user_agent",),
    "analytics_session_id": ("ga_session_id",),
    "analytics_session_number": ("ga_session_number",),
}

# sGTM's built-in variables (reference/sgtm-model.md §5), by their snake_case names.
BUILTINS: dict[str, Callable[[Scope], Any]] = {
    "client_name": lambda s: s.client_name,
    "event_name": _top("event_name"),
    "request_path": lambda s: s.request.path if s.request else None,
    "request_method": lambda s: s.request.method if s.request else None,
    "query_string": lambda s: s.request.query_string if s.request else None,
    "page_location": _top("page_location"),
    "page_path": _page_part("path"),
    "page_hostname": _page_part("hostname"),
    "page_referrer": _top("page_referrer"),
    "client_id": _top("client_id"),
    "user_id": _top("user_id"),
    "ip_override": _top("ip_override"),
    "user_agent": _top("user_agent"),
    "analytics_session_id": _top("ga_session_id"),
    "analytics_session_number": _top("ga_session_number"),
}
