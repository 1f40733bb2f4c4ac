"""sgtm: a self-hosted, plugin-based server-side tagging container.

Plugins import what they need from `sgtm.plugin` (and shared helpers from `sgtm.kit`).
"""

from __future__ import annotations

import warnings
from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__"]

# Names this package re-exported before plugin contract 1.0 made `sgtm.plugin` the one public
# module. They still work, with a DeprecationWarning, until contract 2.0.
_MOVED_TO_PLUGIN = frozenset(
    {
        "BadRequest",
        "BuildContext",
        "Client",
        "ClientContext",
        "ClientResponse",
        "Cookie",
        "InvalidEvent",
        "Outbound",
        "Secret",
        "Tag",
        "Url",
        "Variable",
        "hookimpl",
    }
)


def __getattr__(name: str) -> Any:
    if name not in _MOVED_TO_PLUGIN:
        raise AttributeError(f"module 'sgtm' has no attribute {name!r}")
    warnings.warn(
        f"`from sgtm import {name}` is deprecated since plugin contract 1.0 and goes in 2.0:"
        f" import it from sgtm.plugin",
        DeprecationWarning,
        stacklevel=2,
    )
    from sgtm import plugin

    value = getattr(plugin, name)
    globals()[name] = value  # `from sgtm import X` looks X up twice: warn once
    return value
