"""sgtm: a self-hosted, plugin-based server-side tagging container."""

from sgtm.hookspecs import hookimpl
from sgtm.plugin import (
    BadRequest,
    BuildContext,
    Client,
    ClientContext,
    ClientResponse,
    Cookie,
    InvalidEvent,
    Outbound,
    PersonalData,
    Secret,
    Tag,
    Url,
    Variable,
)

__version__ = "0.1.0"

__all__ = [
    "BadRequest",
    "BuildContext",
    "Client",
    "ClientContext",
    "ClientResponse",
    "Cookie",
    "InvalidEvent",
    "Outbound",
    "PersonalData",
    "Secret",
    "Tag",
    "Url",
    "Variable",
    "__version__",
    "hookimpl",
]
