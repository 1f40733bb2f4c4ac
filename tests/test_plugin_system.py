"""The plugin system: hooks documented and tested, register validation, entry-point discovery."""

from __future__ import annotations

import ast
import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sgtm import __version__ as sgtm_version
from sgtm import hookspecs
from sgtm.audit import audit
from sgtm.config import load_text
from sgtm.container import Container
from sgtm.dedupe import MemoryDedupe
from sgtm.delivery.recorder import RecorderDelivery
from sgtm.plugin import (
    CONTRACT_VERSION,
    Batching,
    Client,
    ClientResponse,
    Outbound,
    PersonalData,
    Tag,
    Variable,
)
from sgtm.plugins import PluginError, build_registry, load_entry_points, make_manager
from sgtm.request import HitRequest
from tests.installed import registry

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "docs" / "plugins.md").read_text()
HOOKS = [
    name
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(fn, "sgtm_spec")
]


def test_hooks_exist():
    assert HOOKS == [
        "register_client_types",
        "register_personal_data",
        "register_tag_types",
        "register_variable_types",
    ]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_signature(hook):
    params = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert f"### {hook}({params})\n" in DOCS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    assert callable(globals().get(f"test_hook_{hook}")), f"write test_hook_{hook}"


# -- plugins used by the hook tests -----------------------------------------------------------


class EchoSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    path: str = "/echo"


class EchoClient(Client):
    name = "echo"
    Settings = EchoSettings

    def claim(self, request: HitRequest, settings: EchoSettings) -> bool:
        return request.path == settings.path

    def parse(self, request: HitRequest, settings: EchoSettings, ctx: Any) -> list[dict[str, Any]]:
        return [{"event_name": request.query.get("e", "ping"), "n": request.query.get("n")}]

    def respond(
        self, request: HitRequest, events: list[Any], settings: Any, ctx: Any
    ) -> ClientResponse:
        return ClientResponse(status=202, body=str(len(events)).encode())


class CountSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str
    label: str = ""


class CountTag(Tag):
    name = "count"
    Settings = CountSettings

    def build(self, event: dict[str, Any], settings: CountSettings, ctx: Any) -> list[Outbound]:
        body = msgspec.json.encode({"label": settings.label, "event": event["event_name"]})
        return [Outbound(method="POST", url=settings.url, body=body)]


class DoubleSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    key: str


class DoubleVariable(Variable):
    name = "double"
    Settings = DoubleSettings

    def resolve(self, settings: DoubleSettings, scope: Any) -> Any:
        value = scope.key(settings.key)
        return None if value is None else int(value) * 2


def plugin_module(name: str, **hooks: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, hookspecs.hookimpl(fn))
    return module


def make_registry(*modules: types.ModuleType):
    pm = make_manager()
    for module in modules:
        pm.register(module, name=module.__name__)
    return build_registry(pm)


CONTAINER = """\
version: 1
clients:
  - {name: echo, type: echo}
variables:
  doubled: {type: double, key: n}
triggers:
  big: {var: doubled, gt: 10}
tags:
  - name: counter
    type: count
    triggers: [big]
    settings: {url: "https://count.example/x", label: "n={{doubled}}"}
"""


async def run(reg: Any, path: str) -> Any:
    spec = load_text(CONTAINER, "c.yaml", reg)
    recorder = RecorderDelivery()
    container = Container(spec, recorder, MemoryDedupe())
    result = await container.handle(
        HitRequest(method="GET", path="/echo", query_string=path), trace=True
    )
    return result, recorder


def full_registry():
    return make_registry(
        plugin_module("echo_plugin", register_client_types=lambda register: register(EchoClient())),
        plugin_module("count_plugin", register_tag_types=lambda register: register(CountTag())),
        plugin_module(
            "double_plugin", register_variable_types=lambda register: register(DoubleVariable())
        ),
    )


async def test_hook_register_client_types():
    reg = full_registry()
    assert reg.clients["echo"].name == "echo"
    info = {p.name: p for p in reg.plugins}
    assert info["echo_plugin"].client_types == ["echo"]
    result, _ = await run(reg, "e=hello&n=1")
    assert result.client == "echo"
    assert result.response.status == 202 and result.response.body == b"1"
    assert result.events[0].data == {"event_name": "hello", "n": "1"}


async def test_hook_register_tag_types():
    reg = full_registry()
    assert {p.name: p.tag_types for p in reg.plugins}["count_plugin"] == ["count"]
    _, recorder = await run(reg, "e=buy&n=6")
    (submission,) = recorder.submitted
    assert submission.tag == "counter" and submission.tag_type == "count"
    assert json.loads(submission.outbound.body) == {"label": "n=12", "event": "buy"}


async def test_hook_register_variable_types():
    reg = full_registry()
    assert {p.name: p.variable_types for p in reg.plugins}["double_plugin"] == ["double"]
    result, recorder = await run(reg, "e=buy&n=5")  # doubled = 10: not > 10
    assert recorder.submitted == []
    assert result.events[0].tags[0].reason == "trigger"


LOYALTY = PersonalData(
    category="loyalty_id", name="loyalty_card", value="LOYAL-7302-AUDIT", event_keys=("loyalty",)
)


async def test_hook_register_personal_data():
    """What a plugin registers is in the registry, and `sgtm audit` probes for it."""
    reg = make_registry(
        plugin_module("loyalty_plugin", register_personal_data=lambda register: register(LOYALTY))
    )
    assert reg.personal_data == [LOYALTY]
    spec = load_text(
        "version: 1\ntags: [{name: hook, type: http_request, settings: {url: 'https://x.test'}}]\n",
        "c.yaml",
        registry(),
    )
    (report,) = await audit([spec], reg.personal_data)
    assert ("loyalty_id", "clear", "body $.loyalty") in {
        (s.category, s.form, s.where) for s in report.tags[0].sends
    }


@pytest.mark.parametrize(
    ("registered", "message"),
    [
        ({"x": 1}, "is not a sgtm.plugin.PersonalData"),
        (msgspec.structs.replace(LOYALTY, category="Loyalty ID"), "must be lower-case snake_case"),
        (msgspec.structs.replace(LOYALTY, value=""), "needs a name, a value"),
        (msgspec.structs.replace(LOYALTY, marks=("",)), "non-empty marks"),
        (msgspec.structs.replace(LOYALTY, cookie="loyal", value="a;b"), "not valid in a Cookie"),
        (msgspec.structs.replace(LOYALTY, cookie="lo yal"), "not valid in a Cookie"),
        (msgspec.structs.replace(LOYALTY, event_keys=("a..b",)), "event keys are dotted paths"),
    ],
)
def test_register_personal_data_validates_what_it_gets(registered, message):
    module = plugin_module("broken", register_personal_data=lambda register: register(registered))
    with pytest.raises(PluginError, match=re.escape(message)) as info:
        make_registry(module)
    assert "plugin 'broken'" in str(info.value)


def test_personal_data_names_and_values_are_unique():
    first = plugin_module("first", register_personal_data=lambda register: register(LOYALTY))
    again = msgspec.structs.replace(LOYALTY, name="other_card")
    second = plugin_module("second", register_personal_data=lambda register: register(again))
    with pytest.raises(PluginError, match="has the name or value of 'loyalty_card'"):
        make_registry(first, second)


class NotStructSettings(Tag):
    name = "bad_settings"
    Settings = dict  # type: ignore[assignment]


class BadName(Tag):
    name = "has space"


@pytest.mark.parametrize(
    ("register_arg", "message"),
    [
        (CountTag, "register an instance of CountTag, not the class"),
        (EchoClient(), "is not a sgtm.Tag"),
        (BadName(), "tag type name must be an identifier"),
        (NotStructSettings(), "Settings must be a msgspec.Struct"),
    ],
)
def test_register_validates_what_it_gets(register_arg, message):
    module = plugin_module("broken", register_tag_types=lambda register: register(register_arg))
    with pytest.raises(PluginError, match=re.escape(message)) as info:
        make_registry(module)
    assert "plugin 'broken'" in str(info.value)


class NoBuild(Tag):
    name = "no_build"


class BatchingWithoutMerge(CountTag):
    name = "no_merge"
    batching = Batching(max_items=10)


class AuthWithoutParse(CountTag):
    name = "no_parse_auth"

    def auth_request(self, settings: Any) -> Outbound:
        return Outbound(method="POST", url="https://auth.example/token")


class BatchingNotDeclared(CountTag):
    name = "bad_batching"
    batching = {"max_items": 10}  # type: ignore[assignment]


class RateNotDeclared(CountTag):
    name = "bad_rate"
    rate_limit = (10, 1.0)  # type: ignore[assignment]


class NoTimeout(CountTag):
    name = "bad_timeout"
    timeout = 0


class ClaimOnly(Client):
    name = "claim_only"

    def claim(self, request: HitRequest, settings: Any) -> bool:
        return True


class NoClaim(Client):
    name = "no_claim"

    def parse(self, request: HitRequest, settings: Any, ctx: Any) -> list[dict[str, Any]]:
        return []


class NoResolve(Variable):
    name = "no_resolve"


@pytest.mark.parametrize(
    ("hook", "obj", "message"),
    [
        ("register_tag_types", NoBuild(), "tag type 'no_build' does not implement build()"),
        (
            "register_tag_types",
            BatchingWithoutMerge(),
            "tag type 'no_merge' declares batching but does not implement merge()",
        ),
        (
            "register_tag_types",
            AuthWithoutParse(),
            "tag type 'no_parse_auth' implements auth_request() but not parse_auth()",
        ),
        (
            "register_tag_types",
            BatchingNotDeclared(),
            "tag type 'bad_batching' batching must be a sgtm.plugin.Batching, got {",
        ),
        (
            "register_tag_types",
            RateNotDeclared(),
            "tag type 'bad_rate' rate_limit must be a sgtm.plugin.RateLimit, got (10, 1.0)",
        ),
        (
            "register_tag_types",
            NoTimeout(),
            "tag type 'bad_timeout' timeout must be a number of seconds above zero, got 0",
        ),
        (
            "register_client_types",
            ClaimOnly(),
            "client type 'claim_only' does not implement parse()",
        ),
        ("register_client_types", NoClaim(), "client type 'no_claim' does not implement claim()"),
        (
            "register_variable_types",
            NoResolve(),
            "variable type 'no_resolve' does not implement resolve()",
        ),
    ],
)
def test_the_contract_is_checked_when_plugins_load(hook, obj, message):
    """A type that would fail on every event stops startup, naming plugin, type and method."""
    module = plugin_module("half_done", **{hook: lambda register: register(obj)})
    with pytest.raises(PluginError) as info:
        make_registry(module)
    assert str(info.value).startswith(f"plugin 'half_done': {message}")


def test_a_complete_tag_with_every_option_registers():
    class Full(BatchingWithoutMerge, AuthWithoutParse):
        name = "full"

        def merge(self, outbounds: list[Outbound]) -> Outbound:
            return outbounds[0]

        def parse_auth(self, status, headers, body, now):
            raise AssertionError("not called at load")

    reg = make_registry(plugin_module("full", register_tag_types=lambda register: register(Full())))
    assert "full" in reg.tags


def test_a_hook_that_raises_names_its_plugin():
    def broken(register):
        raise KeyError("settings")

    with pytest.raises(PluginError, match=r"plugin 'oops': register_tag_types failed: KeyError"):
        make_registry(plugin_module("oops", register_tag_types=broken))


def test_duplicate_type_names_are_refused():
    first = plugin_module("first", register_tag_types=lambda register: register(CountTag()))
    second = plugin_module("second", register_tag_types=lambda register: register(CountTag()))
    with pytest.raises(PluginError, match="tag type 'count' is already registered"):
        make_registry(first, second)


def test_hookimpl_without_spec_fails_at_startup():
    module = types.ModuleType("typo")
    module.register_tag_type = hookspecs.hookimpl(lambda register: None)  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="unknown hook 'register_tag_type'"):
        make_registry(module)


def test_builtins_are_entry_point_plugins():
    reg = registry()
    names = {p.name for p in reg.plugins}
    assert {"ga4", "http_request", "sgtm.variables"} <= names
    assert "ga4" in reg.clients and "http_request" in reg.tags
    assert {"event_data", "constant", "lookup", "regex_table"} <= set(reg.variables)


def test_an_allow_list_keeps_the_core_variable_types(monkeypatch):
    """SGTM_LOAD_PLUGINS names entry points; the core's own types are registered regardless."""
    monkeypatch.setenv("SGTM_LOAD_PLUGINS", "ga4")
    pm = make_manager()
    reg = build_registry(pm, load_entry_points(pm))
    # The ga4 entry point is one package: the GA4 client and the ga4 tag, nothing else.
    assert list(reg.clients) == ["ga4"] and list(reg.tags) == ["ga4"]
    assert {"event_data", "constant", "request_header", "lookup"} <= set(reg.variables)
    core = next(p for p in reg.plugins if p.name == "sgtm.variables")
    assert core.version == sgtm_version and "event_data" in core.variable_types
    spec = load_text(
        "version: 1\n"
        "clients: [{name: ga4, type: ga4}]\n"
        "variables: {email: {type: event_data, key: user_data.email_address}}\n",
        "allow.yaml",
        reg,
    )
    assert spec.variables["email"].type.name == "event_data"


def test_an_old_entry_point_for_a_core_plugin_is_not_registered_twice(tmp_path, monkeypatch):
    dist = tmp_path / "sgtm_old-0.0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sgtm-old\nVersion: 0.0.1\n")
    (dist / "entry_points.txt").write_text("[sgtm]\nvariables = sgtm.variables\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SGTM_LOAD_PLUGINS", "variables")
    pm = make_manager()
    assert load_entry_points(pm) == {}
    assert [name for name, _ in pm.list_name_plugin()] == ["sgtm.variables"]


def test_third_party_plugin_discovered_through_entry_points(tmp_path):
    (tmp_path / "sgtm_thirdparty.py").write_text(
        textwrap.dedent(
            """
            import msgspec
            from sgtm.plugin import Tag, hookimpl

            class Noop(Tag):
                name = "noop_third_party"
                def build(self, event, settings, ctx):
                    return []

            @hookimpl
            def register_tag_types(register):
                register(Noop())
            """
        )
    )
    dist = tmp_path / "sgtm_thirdparty-2.5.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sgtm-thirdparty\nVersion: 2.5.0\n")
    (dist / "entry_points.txt").write_text("[sgtm]\nthirdparty = sgtm_thirdparty\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "sgtm.cli", "plugins", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    listing = json.loads(out.stdout)
    assert listing["contract"] == CONTRACT_VERSION and listing["sgtm"] == sgtm_version
    plugins = {p["name"]: p for p in listing["plugins"]}
    assert plugins["thirdparty"]["version"] == "2.5.0"
    assert plugins["thirdparty"]["tag_types"] == ["noop_third_party"]
    only = subprocess.run(
        [sys.executable, "-m", "sgtm.cli", "plugins", "--json"],
        env={**env, "SGTM_LOAD_PLUGINS": "thirdparty"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert [p["name"] for p in json.loads(only.stdout)["plugins"]] == [
        "sgtm.variables",
        "thirdparty",
    ]


# -- the public module ------------------------------------------------------------------------

# What a plugin needs, by what it does; every name must be importable from sgtm.plugin.
NEEDED = {
    "types": ["Client", "Tag", "Variable", "hookimpl", "CONTRACT_VERSION"],
    "settings": ["NoSettings", "Secret", "Url"],
    "clients": ["HitRequest", "ClientContext", "ClientResponse", "Cookie", "BadRequest"],
    "tags": ["BuildContext", "Outbound", "InvalidEvent", "ContainerInfo"],
    "delivery": ["Batching", "RateLimit", "Verdict", "Outcome", "Credential", "default_classify"],
    "event data": ["EventData", "get_path", "has_path", "set_path", "delete_path", "copy_event"],
    "consent": ["consent_state", "first_denied_consent"],
    "variables": ["Scope"],
}


def test_the_public_module_exports_what_a_plugin_needs():
    import sgtm.plugin as api

    needed = {name for names in NEEDED.values() for name in names}
    assert needed <= set(api.__all__)
    assert all(hasattr(api, name) for name in api.__all__)


def test_event_helpers_walk_the_plain_dict_an_event_is():
    from sgtm.plugin import get_path, has_path, set_path

    event: dict[str, Any] = {"user_data": {"address": {"city": "Recife"}}, "items": [{"id": 1}]}
    assert event.get("user_data.address.city") is None  # a dict has no dotted paths
    assert get_path(event, "user_data.address.city") == "Recife"
    assert get_path(event, "items.0.id") == 1 and not has_path(event, "items.1")
    set_path(event, "user_data.address.country", "BR")
    assert event["user_data"]["address"] == {"city": "Recife", "country": "BR"}


def test_importing_plugin_names_from_sgtm_itself_is_deprecated(monkeypatch):
    import sgtm
    import sgtm.plugin

    monkeypatch.delitem(sgtm.__dict__, "Tag", raising=False)
    with pytest.warns(DeprecationWarning, match=r"import it from sgtm.plugin"):
        from sgtm import Tag as OldTag
    assert OldTag is sgtm.plugin.Tag
    with pytest.raises(ImportError):
        from sgtm import NotAThing  # noqa: F401


def test_types_are_generic_over_their_settings():
    class Typed(Tag[CountSettings]):
        name = "typed"
        Settings = CountSettings

        def build(self, event: dict[str, Any], settings: CountSettings, ctx: Any) -> list[Outbound]:
            return [Outbound(method="GET", url=settings.url)]

    reg = make_registry(
        plugin_module("typed", register_tag_types=lambda register: register(Typed()))
    )
    assert reg.tags["typed"].Settings is CountSettings


def _absolute_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return found


def test_builtin_plugins_import_only_the_public_api_and_the_kit():
    """Built-ins are written as a third party's plugin would be: `sgtm.plugin`, `sgtm.kit`, and
    their own modules by relative import (which is also how mypy follows them)."""
    offending = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in sorted((ROOT / "plugins").rglob("*.py"))
        for module in _absolute_imports(path)
        if module.split(".")[0] in ("sgtm", "sgtm_plugins")
        and not (module == "sgtm.plugin" or module == "sgtm.kit" or module.startswith("sgtm.kit."))
    ]
    assert offending == []


def test_the_kit_names_no_vendor():
    """The kit is core: vendor rules stay in the vendor's plugin."""
    vendors = re.compile(r"\b(meta|facebook|fb[pc]|google|newtail|salesforce|responsys)\b", re.I)
    for path in sorted((ROOT / "sgtm" / "kit").glob("*.py")):
        code = "\n".join(
            line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")
        )
        names = [n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name)]
        names += [n.name for n in ast.walk(ast.parse(code)) if isinstance(n, ast.FunctionDef)]
        assert not [n for n in names if vendors.search(n.replace("_", " "))], path


def test_every_package_in_the_tree_is_installed():
    """A package missing from pyproject's list works in the editable checkout and is absent from
    a real install (the Docker image): every directory with an __init__.py must be listed."""
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    found = set()
    for name, directory in setuptools["package-dir"].items():
        for init in (ROOT / directory).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / directory).parts
            found.add(".".join((name, *parts)))
    assert found == listed


def test_the_contract_version_is_in_the_changelog():
    changelog = (ROOT / "docs" / "plugin-contract-changelog.md").read_text()
    assert f"\n## {CONTRACT_VERSION}\n" in changelog
    assert re.fullmatch(r"\d+\.\d+", CONTRACT_VERSION)
