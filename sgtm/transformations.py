"""Transformations: allow / exclude / augment, applied per tag as sGTM does.

Each transformation has an optional `when` condition and optional `tags` (tag names) and
`tag_types` lists; without either it affects every tag. They run in the order the container lists
them, on a copy of the event made for the tags they affect. Triggers and consent always see the
event as the client produced it: a transformation changes what a tag reads, not whether it fires.
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

    def apply(self, event: ev.EventData, scope: Scope) -> ev.EventData:
        """This transformation on `event` (modified in place, or a new dict for `allow`)."""
        if self.kind == "exclude":
            for path in self.params:
                ev.delete_path(event, path)
            return event
        if self.kind == "allow":
            kept: ev.EventData = {}
            for path in ("event_name", *self.params):
                if path in event:  # a literal key, dots and all, is kept as it is (`get` finds it)
                    kept[path] = event[path]
                    continue
                value: Any = ev.get(event, path, _ABSENT)
                if value is not _ABSENT:
                    ev.set_path(kept, path, value)
            return kept
        for path, render in self.set:
            ev.set_path(event, path, render(scope))
        return event


_ABSENT = object()


def apply_all(
    transformations: tuple[Transformation, ...], event: ev.EventData, scope: Scope
) -> ev.EventData:
    """The event as the tag sees it; the original is never modified."""
    view = event
    for transformation in transformations:
        if not transformation.applies(scope):
            continue
        if view is event:  # copied once, and only when something changes it
            view = ev.copy_event(event)
        view = transformation.apply(view, scope)
    return view
