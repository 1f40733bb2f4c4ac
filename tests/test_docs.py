"""Docs are part of the feature: their examples are checked here."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import pytest

from sgtm import hookspecs
from sgtm.config import load_text
from sgtm.container import Container
from sgtm.dedupe import MemoryDedupe
from sgtm.delivery.recorder import RecorderDelivery
from sgtm.plugins import Registry, build_registry, make_manager, registry

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
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


def slack_registry() -> Registry:
    """The installed plugins plus the example plugin of docs/plugins.md, exactly as written."""
    (code,) = [b[2] for b in blocks("python") if "class SlackTag" in b[2]]
    module = types.ModuleType("docs_slack_plugin")
    exec(compile(code, "docs/plugins.md", "exec"), module.__dict__)
    pm = make_manager()
    pm.register(module, name="docs_slack_plugin")
    extra = build_registry(pm)
    base = registry()
    return Registry(
        clients=base.clients,
        tags={**base.tags, **extra.tags},
        variables=base.variables,
        plugins=base.plugins,
    )


def test_docs_have_container_examples():
    assert len(CONTAINERS) >= 3


@pytest.mark.parametrize(
    ("file", "line", "text"), CONTAINERS, ids=[f"{f}:{n}" for f, n, _ in CONTAINERS]
)
def test_container_examples_validate(file, line, text):
    env = {name: f"test-{name.lower()}" for name in ENV_REF.findall(text)}
    load_text(text, f"{file}:{line}", slack_registry(), environ=env)


def test_plugin_example_runs():
    reg = slack_registry()
    (container_yaml,) = [t for f, _, t in CONTAINERS if f == "docs/plugins.md"]
    spec = load_text(
        container_yaml,
        "plugins.md",
        reg,
        environ={"SLACK_WEBHOOK_URL": "https://hooks.slack.test/x"},
    )
    container = Container(spec, RecorderDelivery(), MemoryDedupe())
    events = [
        {"event_name": "purchase", "value": 42, "currency": "BRL"},
        {"event_name": "purchase"},
    ]
    submissions, traces = asyncio.run(container.run_events(events, None, None, 0.0, trace=True))
    (submission,) = submissions
    assert submission.outbound.url == "https://hooks.slack.test/x"
    assert json.loads(submission.outbound.body) == {"text": "purchase: 42 BRL", "channel": "#sales"}
    assert traces[1].tags[0].reason == "invalid: no value to report"


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
    result = subprocess.run(
        [sys.executable, "-m", "sgtm", *args[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    return [{**json.loads(line), "expected": expected} for line in result.stdout.splitlines()]
