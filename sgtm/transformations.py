"""Transformations: allow / exclude / augment, applied per tag as sGTM does.

Each transformation has an optional `when` condition and optional `tags` (tag names) and
`tag_types` lists; without either it affects every tag. They run in the order the container lists
them, on a view of the event made for the tags they affect (the original is never changed).
Triggers and consent always see the event as the client produced it: a transformation changes
what a tag reads, not whether it fires.
`allow` always keeps `event_name`, since no tag can work without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sgtm import event as ev
from sgtm.scope import Scope
from sgtm.templates import Renderer
from sgtm.triggers import Condition


@dataclass(slots=True)
class Transformation:
    kind: Literal["allow", "exclude", "augment"]
    params: tuple[str, ...] = ()
    set: tuple[tuple[str, Renderer], ...] = ()
    when: Condition | None = None
    tags: frozenset[str] | None = None
    tag_types: frozenset[str] | None = None

    def affects(self, tag_name: str, tag_type: str) -> bool:
        if self.tags is None and self.tag_types is None:
            return True
        return (self.tags is not None and tag_name in self.tags) or (
            self.tag_types is not None and tag_type in self.tag_types
        )

    def applies(self, scope: Scope) -> bool:
        return self.when is None or self.when(scope)

    def apply(self, view: ev.EventData, scope: Scope, owned: dict[int, Any]) -> ev.EventData:
        """This transformation on `view` (a new dict for `allow`). Containers are written only
        once they are in `owned` (`ev.own_path`): what the view shares with the event is never
        changed."""
        if self.kind == "exclude":
            for path in self.params:
                if path not in view:  # a literal key is the top level's, owned already
                    ev.own_path(view, path, owned)
                ev.delete_path(view, path)
            return view
        if self.kind == "allow":
            kept: ev.EventData = {}
            owned[id(kept)] = kept
            for path in ("event_name", *self.params):
                if path in view:  # a literal key, dots and all, is kept as it is (`get` finds it)
                    kept[path] = view[path]
                    continue
                value: Any = ev.get(view, path, _ABSENT)
                if value is not _ABSENT:
                    ev.set_path(kept, path, value)  # new dicts on the way, the value shared
            return kept
        for path, render in self.set:
            ev.own_path(view, path, owned)
            ev.set_path(view, path, render(scope))
        return view


_ABSENT = object()


def apply_all(
    transformations: tuple[Transformation, ...], event: ev.EventData, scope: Scope
) -> ev.EventData:
    """The event as the tag sees it; the original is never modified. The view is a new dict
    that shares with the event every value no transformation writes under: the dicts and lists
    on the way to a path that changes are copied first (copy on write), not the whole event,
    per tag. Tags never modify the event they get (`build` is pure, docs/plugins.md)."""
    view = event
    owned: dict[int, Any] = {}  # the view's own containers by id; the values keep them alive
    for transformation in transformations:
        if not transformation.applies(scope):
            continue
        if view is event:  # made once, and only when something changes it
            view = dict(event)
            owned[id(view)] = view
        view = transformation.apply(view, scope, owned)
    return view
