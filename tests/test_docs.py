"""Docs are part of the feature: their examples are checked here."""

from __future__ import annotations

import ast
import asyncio
import functools
import importlib.util
import inspect
import json
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from sgtm import hookspecs
from sgtm.config import load_text
from sgtm.plugins import Registry, load_registry
from tests.cli import run_cli

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").rglob("*.md")),
    *sorted((ROOT / "examples").rglob("README.md")),
]
FENCE = re.compile(r"```(\w+)\n(.*?)```", re.S)
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def blocks(language: str) -> list[tuple[str, int, str]]:
    found = []
    for path in DOC_FILES:
        text = path.read_text()
        for match in FENCE.finditer(text):
            if match.group(1) == language:
                line = text.count("\n", 0, match.start()) + 1
                found.append((str(path.relative_to(ROOT)), line, match.group(2)))
    return found


CONTAINERS = [b for b in blocks("yaml") if b[2].lstrip().startswith("version: 1")]


EXAMPLE_SOURCE = ROOT / "examples" / "sgtm-slack" / "src" / "sgtm_slack" / "__init__.py"


def example_plugin() -> types.ModuleType:
    """The example plugin package: installed (`make test` installs it), else from its source."""
    try:
        import sgtm_slack
    except ImportError:
        spec = importlib.util.spec_from_file_location("sgtm_slack", EXAMPLE_SOURCE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["sgtm_slack"] = module
        spec.loader.exec_module(module)
        return module
    return sgtm_slack


def slack_registry() -> Registry:
    """The installed plugins plus the example plugin of docs/plugins.md."""
    return load_registry([example_plugin()])


def test_docs_have_container_examples():
    assert len(CONTAINERS) >= 3


@pytest.mark.parametrize(
    ("file", "line", "text"), CONTAINERS, ids=[f"{f}:{n}" for f, n, _ in CONTAINERS]
)
def test_container_examples_validate(file, line, text):
    # Webhook URLs are checked as URLs (alerts.webhook.url): give them one.
    env = {
        name: f"https://hooks.test/{name.lower()}" if "WEBHOOK" in name else f"test-{name.lower()}"
        for name in ENV_REF.findall(text)
    }
    load_text(text, f"{file}:{line}", slack_registry(), environ=env)


def test_the_plugin_guide_shows_the_example_package_as_it_is():
    """docs/plugins.md's complete example is the module examples/sgtm-slack ships and tests."""
    (code,) = [b[2] for b in blocks("python") if "class SlackTag" in b[2]]
    assert code == EXAMPLE_SOURCE.read_text()


# Python examples of the plugin pages run as tests: each page's blocks execute in order in one
# namespace (later blocks use earlier ones), then every `test_*` function they define is called.
RUNNABLE = ["docs/plugins.md", "docs/testing-plugins.md"]
DOC_TESTS = [
    (file, name)
    for file in RUNNABLE
    for path, _, code in blocks("python")
    if path == file
    for name in re.findall(r"^(?:async )?def (test_\w+)", code, re.M)
]


@functools.cache
def doc_namespace(file: str) -> dict[str, Any]:
    example_plugin()  # `import sgtm_slack` works whether or not the package is installed
    # A real module: msgspec and typing resolve annotations through sys.modules.
    module = types.ModuleType(f"docs_{Path(file).stem.replace('-', '_')}")
    sys.modules[module.__name__] = module
    for path, line, code in blocks("python"):
        if path == file:
            exec(compile("\n" * line + code, file, "exec"), module.__dict__)
    return module.__dict__


def test_the_plugin_pages_have_runnable_examples():
    assert {file for file, _ in DOC_TESTS} == set(RUNNABLE)


@pytest.mark.parametrize(("file", "name"), DOC_TESTS, ids=[f"{f}::{n}" for f, n in DOC_TESTS])
def test_doc_example(file: str, name: str) -> None:
    function = doc_namespace(file)[name]
    result = function()
    if inspect.iscoroutine(result):
        asyncio.run(result)


def test_readme_gives_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make run    #" in readme and "make test   #" in readme
    makefile = (ROOT / "Makefile").read_text()
    assert "\nrun: " in makefile and "\ntest: " in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_hook_named_in_plugin_docs_exists():
    documented = set(re.findall(r"^### (\w+)\(", (ROOT / "docs" / "plugins.md").read_text(), re.M))
    assert documented == {n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "sgtm_spec")}


def test_ga4_client_page_shows_what_emulate_prints(tmp_path):
    """docs/clients/ga4.md: its emulate command, run on its container, prints its event data."""
    (line,) = emulate_page_example("docs/clients/ga4.md", tmp_path)
    assert line["events"][0]["data"] == line["expected"]


def test_ga4_tag_page_shows_what_emulate_prints(tmp_path):
    """docs/tags/ga4.md: its emulate command, run on its container, gives its ga4 request."""
    (line,) = emulate_page_example("docs/tags/ga4.md", tmp_path)
    (tag,) = [t for t in line["events"][0]["tags"] if t["type"] == "ga4"]
    assert tag["requests"] == [line["expected"]]


def emulate_page_example(page_path, tmp_path):
    """Runs a page's one `sgtm emulate` command on its one container; each output line gets the
    page's one JSON block as `expected`."""
    page = [b for b in blocks("yaml") + blocks("sh") + blocks("json") if b[0] == page_path]
    (config,) = [text for _, _, text in page if text.startswith("version: 1")]
    (command,) = [text for _, _, text in page if text.startswith("sgtm emulate")]
    (expected,) = [json.loads(text) for _, _, text in page if text.startswith("{")]
    (tmp_path / "shop.yaml").write_text(config)
    args = shlex.split(command.replace("\\\n", " "))
    assert args[:4] == ["sgtm", "emulate", "-c", "shop.yaml"]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        result = run_cli(*args[1:])
    assert result.returncode == 0, result.stderr
    return [{**json.loads(line), "expected": expected} for line in result.stdout.splitlines()]


def test_every_kit_name_is_documented_in_the_plugin_guide():
    guide = (ROOT / "docs" / "plugins.md").read_text()
    for path in sorted((ROOT / "sgtm" / "kit").glob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        public = [
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_")
        ]
        assert public, path
        missing = [name for name in public if f"`{name}" not in guide]
        assert missing == [], f"sgtm.kit.{path.stem}: document {missing} in docs/plugins.md"


def test_no_merge_conflict_markers_are_committed():
    """A conflict resolved by keeping both halves left markers in the README once; never again."""
    files = subprocess.run(
        ["git", "ls-files", "*.py", "*.md", "*.yaml", "*.yml", "*.toml", "*.js", "*.lua", "*.sh"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    marker = re.compile(r"^(<{7}|>{7}) ", re.M)
    found = [f for f in files if (ROOT / f).is_file() and marker.search((ROOT / f).read_text())]
    assert found == []


def test_readme_first_emulate_example_shows_its_tags_firing(tmp_path):
    """README: the first `sgtm emulate` command prints the tag decisions the README shows, and
    the `--requests` line it shows gives the same output as that command."""
    readme = [b for b in blocks("sh") + blocks("json") if b[0] == "README.md"]
    readme.sort(key=lambda b: b[1])
    commands = [text for _, _, text in readme if "sgtm emulate" in text]
    args = shlex.split(commands[0].replace("\\\n", " "))
    assert args[:2] == [".venv/bin/sgtm", "emulate"] and "--now" in args
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        result = run_cli(*args[1:])
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    (event,) = json.loads(line)["events"]
    decisions = [{k: t[k] for k in ("name", "fired", "reason")} for t in event["tags"]]
    shown = [json.loads(text) for _, _, text in readme if text.startswith("[")]
    assert decisions == shown[0]
    assert any(d["name"] == "meta" and d["fired"] for d in decisions)

    (request_line,) = [text for _, _, text in readme if text.startswith('{"url"')]
    config_at = args.index("-c") + 1
    now_at = args.index("--now") + 1
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        recorded = run_cli(
            "emulate", "-c", args[config_at], "--now", args[now_at], "--requests", "-",
            stdin=request_line,
        )  # fmt: skip
    assert recorded.returncode == 0, recorded.stderr
    assert recorded.stdout == result.stdout


def test_testing_page_examples_run_as_shown(tmp_path):
    """docs/testing.md: its scenario file passes on its container; without the tag's consent
    it fails as the page shows; its diff prints what the page shows."""
    page = sorted(
        (b for b in blocks("yaml") + blocks("sh") + blocks("text") if b[0] == "docs/testing.md"),
        key=lambda b: b[1],
    )
    (config,) = [text for _, _, text in page if text.startswith("version: 1")]
    (scenario,) = [text for _, _, text in page if text.startswith("container:")]
    failing_output, diff_output = [text for _, _, text in page if text.startswith(("ok", "line"))]
    test_command = next(text for _, _, text in page if text.startswith("sgtm test"))
    diff_command = next(text for _, _, text in page if text.startswith("sgtm diff"))
    env = {"CRM_TOKEN": "crm-token-value-0001", "PATH": "/usr/bin:/bin"}
    (tmp_path / "shop.yaml").write_text(config)
    (tmp_path / "shop.test.yaml").write_text(scenario)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        passed = run_cli(*shlex.split(test_command)[1:], env=env)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert passed.stdout.endswith("3 passed, 0 failed\n")
        assert (tmp_path / "report.xml").exists()

        (tmp_path / "shop.yaml").write_text(config.replace("    consent: [ad_user_data]\n", ""))
        failed = run_cli("test", "shop.test.yaml", env=env)
        assert failed.returncode == 1
        assert failed.stdout == failing_output

        (tmp_path / "live").mkdir()
        (tmp_path / "live" / "shop.yaml").write_text(config)
        (tmp_path / "shop.yaml").write_text(config.replace("[ad_user_data]", "[ad_storage]"))
        first = yaml.safe_load(scenario)["cases"][0]["request"]
        (tmp_path / "recorded.ndjson").write_text(json.dumps(first) + "\n")
        differs = run_cli(*shlex.split(diff_command)[1:], env=env)
        assert differs.returncode == 1
        assert differs.stdout == diff_output
        assert env["CRM_TOKEN"] not in passed.stdout + failed.stdout + differs.stdout
