"""The hooks a plugin implements. Every hook here is documented in docs/plugins.md and tested.

Hooks hand the plugin a `register` callback (llm's pattern) that checks what it is given, so a
broken plugin fails at startup with its own name in the error, not on the first request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from sgtm.plugin import Client, PersonalData, Tag, Variable

hookspec = pluggy.HookspecMarker("sgtm")
hookimpl = pluggy.HookimplMarker("sgtm")


@hookspec
def register_client_types(register: Callable[[Client[Any]], None]) -> None:
    """Register client types: call `register(MyClient())` once per `sgtm.plugin.Client` subclass."""


@hookspec
def register_tag_types(register: Callable[[Tag[Any]], None]) -> None:
    """Register tag types: call `register(MyTag())` once per `sgtm.plugin.Tag` subclass."""


@hookspec
def register_variable_types(register: Callable[[Variable[Any]], None]) -> None:
    """Register variable types: call `register(MyVariable())` per `sgtm.plugin.Variable`."""


@hookspec
def register_personal_data(register: Callable[[PersonalData], None]) -> None:
    """Tell `sgtm audit` about personal data the plugin knows beyond sGTM's common event data:
    call `register(PersonalData(...))` per field (an event key, a cookie, a click id)."""
