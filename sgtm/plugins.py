"""The plugin manager: the core's own plugins, then built-in and third-party ones found through
`sgtm` entry points.

`load_registry()` loads every plugin and asks each for its client, tag and variable types through
the `register_*` hooks. The `register` callback checks what it is given (llm's pattern), so a
plugin with a broken type fails at startup naming itself, not on the first request.

The core registers its own plugins (`DEFAULT_PLUGINS`, datasette's pattern) directly, not through
an entry point: `SGTM_LOAD_PLUGINS=a,b` loads only the named entry points (datasette's
allow-list) and can never take away the core's variable types. `SGTM_TRACE_PLUGINS=1` logs every
hook call.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pluggy

from sgtm import __version__, hookspecs
from sgtm.plugin import Batching, Client, PersonalData, RateLimit, Tag, Variable

log = logging.getLogger("sgtm.plugins")

ENTRY_POINT_GROUP = "sgtm"

# Plugins of the core itself, registered by `make_manager` whatever the allow-list says.
DEFAULT_PLUGINS = ("sgtm.variables",)


class PluginError(Exception):
    pass


@dataclass
class PluginInfo:
    name: str
    version: str
    client_types: list[str] = field(default_factory=list)
    tag_types: list[str] = field(default_factory=list)
    variable_types: list[str] = field(default_factory=list)


@dataclass
class Registry:
    clients: dict[str, Client[Any]] = field(default_factory=dict)
    tags: dict[str, Tag[Any]] = field(default_factory=dict)
    variables: dict[str, Variable[Any]] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)
    # What plugins told `sgtm audit` about personal data (`register_personal_data`).
    personal_data: list[PersonalData] = field(default_factory=list)


def make_manager() -> pluggy.PluginManager:
    """A plugin manager with the hooks declared and the core's own plugins registered."""
    pm = pluggy.PluginManager("sgtm")
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    return pm


def load_entry_points(pm: pluggy.PluginManager) -> dict[str, str]:
    """Register every `sgtm` entry point; returns plugin name -> distribution version."""
    allowed = os.environ.get("SGTM_LOAD_PLUGINS")
    allow = {n.strip() for n in allowed.split(",") if n.strip()} if allowed is not None else None
    versions: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allow is not None and ep.name not in allow:
            continue
        if pm.has_plugin(ep.name):
            continue
        try:
            module = ep.load()
        except Exception as exc:
            raise PluginError(f"plugin {ep.name!r} failed to import: {exc}") from exc
        if pm.is_registered(module):
            continue  # e.g. an old install's entry point for a module the core registers itself
        pm.register(module, name=ep.name)
        dist = ep.dist
        versions[ep.name] = dist.version if dist is not None else "unknown"
    return versions


def build_registry(pm: pluggy.PluginManager, versions: dict[str, str] | None = None) -> Registry:
    """Collect every registered type, one plugin at a time, so each type knows its plugin."""
    pm.check_pending()
    if os.environ.get("SGTM_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda message: log.info("plugin hook: %s", message.rstrip()))
        pm.enable_tracing()
    versions = versions or {}
    registry = Registry()
    for plugin_name, plugin in sorted(pm.list_name_plugin(), key=lambda pair: str(pair[0])):
        name = str(plugin_name)
        version = __version__ if name in DEFAULT_PLUGINS else _version_of(plugin)
        info = PluginInfo(name=name, version=versions.get(name, version))
        others = [p for p in pm.get_plugins() if p is not plugin]
        for hook, register in (
            (
                "register_client_types",
                _registrar(registry.clients, Client, name, info.client_types),
            ),
            ("register_tag_types", _registrar(registry.tags, Tag, name, info.tag_types)),
            (
                "register_variable_types",
                _registrar(registry.variables, Variable, name, info.variable_types),
            ),
            ("register_personal_data", _personal_data_registrar(registry.personal_data, name)),
        ):
            call = pm.subset_hook_caller(hook, others)  # this plugin's implementation only
            try:
                call(register=register)
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(f"plugin {name!r}: {hook} failed: {exc!r}") from exc
        registry.plugins.append(info)
    return registry


def _registrar(table: dict[str, Any], base: type, plugin: str, names: list[str]) -> Any:
    kind = base.__name__.lower()

    def register(obj: Any) -> None:
        if isinstance(obj, type):
            raise PluginError(
                f"plugin {plugin!r}: register an instance of {obj.__name__}, not the class"
            )
        if not isinstance(obj, base):
            raise PluginError(f"plugin {plugin!r}: {obj!r} is not a sgtm.{base.__name__}")
        type_name = getattr(obj, "name", None)
        if not isinstance(type_name, str) or not type_name.isidentifier():
            raise PluginError(
                f"plugin {plugin!r}: {kind} type name must be an identifier, got {type_name!r}"
            )
        settings = getattr(obj, "Settings", None)
        if not (isinstance(settings, type) and issubclass(settings, msgspec.Struct)):
            raise PluginError(
                f"plugin {plugin!r}: {kind} type {type_name!r} Settings must be a msgspec.Struct"
            )
        problem = contract_problem(obj)
        if problem is not None:
            raise PluginError(f"plugin {plugin!r}: {kind} type {type_name!r} {problem}")
        if type_name in table:
            raise PluginError(f"plugin {plugin!r}: {kind} type {type_name!r} is already registered")
        table[type_name] = obj
        names.append(type_name)

    return register


_CATEGORY_RE = re.compile(r"[a-z][a-z0-9_]{0,39}")
# RFC 6265: a cookie name is a token; a value, cookie-octets (no space, quote, comma, `;`, `\`).
_COOKIE_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}")
_COOKIE_VALUE_RE = re.compile(r"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]{1,1024}")


def _personal_data_registrar(found: list[PersonalData], plugin: str) -> Any:
    def register(data: Any) -> None:
        if not isinstance(data, PersonalData):
            raise PluginError(f"plugin {plugin!r}: {data!r} is not a sgtm.plugin.PersonalData")
        if not _CATEGORY_RE.fullmatch(data.category):
            raise PluginError(
                f"plugin {plugin!r}: personal data category {data.category!r} must be"
                " lower-case snake_case"
            )
        if not data.name or not data.value or not all(data.marks):
            raise PluginError(
                f"plugin {plugin!r}: personal data {data.name!r} needs a name, a value and"
                " non-empty marks"
            )
        if data.cookie is not None and not (
            _COOKIE_NAME_RE.fullmatch(data.cookie) and _COOKIE_VALUE_RE.fullmatch(data.value)
        ):
            raise PluginError(
                f"plugin {plugin!r}: personal data {data.name!r}: the cookie name or value is"
                " not valid in a Cookie header"
            )
        if not all(part for key in data.event_keys for part in key.split(".")):
            raise PluginError(
                f"plugin {plugin!r}: personal data {data.name!r}: event keys are dotted paths"
            )
        for other in found:
            if other.name == data.name or other.value == data.value:
                raise PluginError(
                    f"plugin {plugin!r}: personal data {data.name!r} has the name or value of"
                    f" {other.name!r}, already registered"
                )
        found.append(data)

    return register


# Methods a type must implement; the base class's own would fail on every event.
_REQUIRED: tuple[tuple[type, tuple[str, ...]], ...] = (
    (Client, ("claim", "parse")),
    (Tag, ("build",)),
    (Variable, ("resolve",)),
)


def contract_problem(obj: object) -> str | None:
    """What a type lacks to keep the contract, or None: checked when it registers, so a broken
    type stops startup rather than dead-lettering every delivery."""
    cls = type(obj)
    for base, methods in _REQUIRED:
        if isinstance(obj, base):
            for method in methods:
                if getattr(cls, method) is getattr(base, method):
                    return f"does not implement {method}()"
    if not isinstance(obj, Tag):
        return None
    tag = type(obj)
    if obj.batching is not None:
        if not isinstance(obj.batching, Batching):
            return f"batching must be a sgtm.plugin.Batching, got {obj.batching!r}"
        if tag.merge is Tag.merge:
            return "declares batching but does not implement merge()"
    if obj.rate_limit is not None and not isinstance(obj.rate_limit, RateLimit):
        return f"rate_limit must be a sgtm.plugin.RateLimit, got {obj.rate_limit!r}"
    if tag.auth_request is not Tag.auth_request and tag.parse_auth is Tag.parse_auth:
        return "implements auth_request() but not parse_auth()"
    timeout = obj.timeout
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        return f"timeout must be a number of seconds above zero, got {timeout!r}"
    return None


def _version_of(plugin: Any) -> str:
    return str(getattr(plugin, "__version__", "")) or "unknown"


def load_registry(extra: Sequence[object] = (), *, installed: bool = True) -> Registry:
    """A new registry: the core's plugins, the installed ones (unless `installed` is False) and
    `extra` plugins (modules or objects with hook implementations), e.g. one under test."""
    pm = make_manager()
    versions = load_entry_points(pm) if installed else {}
    for plugin in extra:
        if not pm.is_registered(plugin):  # an installed plugin given again
            pm.register(plugin, name=getattr(plugin, "__name__", None))
    return build_registry(pm, versions)
