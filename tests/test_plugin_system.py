"""The plugin system: hooks documented and tested, register validation, entry-point discovery."""

from __future__ import annotations

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

from sgtm import hookspecs
from sgtm.audit import audit
from sgtm.config import load_text
from sgtm.container import Container
from sgtm.dedupe import MemoryDedupe
from sgtm.delivery.recorder import RecorderDelivery
from sgtm.plugin import Client, ClientResponse, Outbound, PersonalData, Tag, Variable
from sgtm.plugins import PluginError, build_registry, make_manager, registry
from sgtm.request import HitRequest

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
    assert {"ga4", "http_request", "variables"} <= names
    assert "ga4" in reg.clients and "http_request" in reg.tags
    assert {"event_data", "constant", "lookup", "regex_table"} <= set(reg.variables)


def test_third_party_plugin_discovered_through_entry_points(tmp_path):
    (tmp_path / "sgtm_thirdparty.py").write_text(
        textwrap.dedent(
            """
            import msgspec
            from sgtm import Tag, hookimpl

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
    plugins = {p["name"]: p for p in json.loads(out.stdout)}
    assert plugins["thirdparty"]["version"] == "2.5.0"
    assert plugins["thirdparty"]["tag_types"] == ["noop_third_party"]
    only = subprocess.run(
        [sys.executable, "-m", "sgtm.cli", "plugins", "--json"],
        env={**env, "SGTM_LOAD_PLUGINS": "thirdparty"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert [p["name"] for p in json.loads(only.stdout)] == ["thirdparty"]
