"""The registry of installed plugins, loaded once for the whole test session: tests only read it.
(sgtm itself has no such global: its entry points load a registry and pass it down.)"""

from __future__ import annotations

import functools

from sgtm.plugins import Registry, load_registry


@functools.cache
def registry() -> Registry:
    return load_registry()
