"""`sgtm diff OLD NEW`: what a new container version changes on the same recorded input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sgtm import emulate
from tests.cli import Ran, run_cli

ENV = {"TOKEN_A": "token-a-value-0001", "TOKEN_B": "token-b-value-0002", "PATH": "/usr/bin:/bin"}

OLD = """\
version: 1
clients:
  - {name: ga4, type: ga4}
triggers:
  purchase: {event_name: purchase}
  all_events: {all: []}
tags:
  - name: hook
    type: http_request
    triggers: [purchase]
    consent: [ad_user_data]
    settings:
      url: "https://hooks.example.invalid/x?src=sgtm&v=1"
      headers: {authorization: "Bearer ${TOKEN_A}"}
      body: {event: "{{event_name}}", value: "{{event.value}}", items: [a, b]}
  - name: log
    type: http_request
    triggers: [all_events]
    settings: {url: "https://log.example.invalid/e"}
"""

REQUESTS = [
    {"url": "/g/collect?v=2&tid=G-ABC123XYZ9&cid=1.2&en=purchase&epn.value=10"},
    {"url": "/g/collect?v=2&tid=G-ABC123XYZ9&cid=1.2&en=page_view"},
]


def diff(tmp_path: Path, new: str, *args: str, lines: list | None = None) -> Ran:
    (tmp_path / "old.yaml").write_text(OLD)
    (tmp_path / "new.yaml").write_text(new)
    recorded = tmp_path / "recorded.ndjson"
    recorded.write_text("".join(json.dumps(r) + "\n" for r in lines or REQUESTS))
    return run_cli(
        "diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"),
        "--requests", str(recorded), "--now", "1767225600", *args, env=ENV,
    )  # fmt: skip


def test_the_same_container_differs_in_nothing(tmp_path):
    done = diff(tmp_path, OLD)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "0 difference(s)\n")


def test_each_changed_tag_is_printed_field_by_field(tmp_path):
    new = (
        OLD.replace("src=sgtm&v=1", "src=sgtm&v=2")
        .replace("items: [a, b]", "items: [a], currency: BRL")
        .replace("${TOKEN_A}", "${TOKEN_B}")
        .replace("https://log.example.invalid/e", "https://log.example.invalid/events")
    )
    done = diff(tmp_path, new)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "line 1 (GET /g/collect): event 0: tag hook (http_request): changed",
        '    requests[0].body.currency: (absent) -> "BRL"',
        '    requests[0].body.items[1]: "b" -> (absent)',
        '    requests[0].headers.authorization: "Bearer ${TOKEN_A}" -> "Bearer ${TOKEN_B}"',
        '    requests[0].url.query.v: "1" -> "2"',
        "line 1 (GET /g/collect): event 0: tag log (http_request): changed",
        '    requests[0].url.path: "/e" -> "/events"',
        "line 2 (GET /g/collect): event 0: tag log (http_request): changed",
        '    requests[0].url.path: "/e" -> "/events"',
    ]
    assert done.stderr == "3 difference(s)\n"
    assert ENV["TOKEN_A"] not in done.stdout and ENV["TOKEN_B"] not in done.stdout


def test_a_decision_that_changes_and_tags_added_or_removed(tmp_path):
    new = OLD.replace("consent: [ad_user_data]", "consent: [ad_storage]").replace(
        "  - name: log\n", "  - name: log2\n"
    )
    # Consent for ad_user_data only: the old hook fires, the new one (ad_storage) does not.
    lines = [{"url": REQUESTS[0]["url"] + "&gcd=13q3r2r2r5l1"}]
    done = diff(tmp_path, new, lines=lines)
    assert done.returncode == 1
    out = done.stdout.splitlines()
    assert out[:4] == [
        "line 1 (GET /g/collect): event 0: tag hook (http_request): changed",
        "    fired: true -> false",
        '    reason: null -> "consent:ad_storage"',
        '    requests[0]: "POST https://hooks.example.invalid/x?src=sgtm&v=1" -> (absent)',
    ]
    assert "line 1 (GET /g/collect): event 0: tag log (http_request): removed" in out
    assert "line 1 (GET /g/collect): event 0: tag log2 (http_request): added" in out


def test_json_output(tmp_path):
    new = OLD.replace("src=sgtm&v=1", "src=sgtm&v=2")
    done = diff(tmp_path, new, "--json")
    assert done.returncode == 1
    (only,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert only == {
        "line": 1,
        "input": "GET /g/collect",
        "event": 0,
        "subject": "tag hook (http_request)",
        "kind": "changed",
        "changes": [{"path": "requests[0].url.query.v", "old": "1", "new": "2"}],
    }


def test_events_input(tmp_path):
    (tmp_path / "old.yaml").write_text(OLD)
    (tmp_path / "new.yaml").write_text(OLD.replace("triggers: [purchase]", "triggers: []", 1))
    events = tmp_path / "events.ndjson"
    events.write_text('{"event_name": "purchase", "value": 1}\n')
    done = run_cli(
        "diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"), "--events", str(events),
        env=ENV,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stdout.splitlines()[:3] == [
        "line 1 (event): event 0: tag hook (http_request): changed",
        "    fired: true -> false",
        '    reason: null -> "trigger"',
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json\n", "sgtm diff: line 1: invalid JSON"),
        ('["a list"]\n', "sgtm diff: line 1: Expected `object`, got `array`"),
        ('{"url": 5}\n', "sgtm diff: line 1: Expected `str`, got `int` - at `$.url`"),
        ('{"url": "/", "verb": "GET"}\n', "sgtm diff: line 1: Object contains unknown field"),
        ('{"url": "/", "headers": {"a": 1}}\n', "sgtm diff: line 1: Expected `str`, got `int`"),
    ],
    ids=["malformed", "wrong type", "wrong field type", "unknown key", "header type"],
)
def test_hostile_input_lines_are_refused_with_their_line(tmp_path, content, message):
    (tmp_path / "old.yaml").write_text(OLD)
    recorded = tmp_path / "recorded.ndjson"
    recorded.write_text(content)
    done = run_cli(
        "diff", str(tmp_path / "old.yaml"), str(tmp_path / "old.yaml"), "--requests",
        str(recorded), env=ENV,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith(message), done.stderr


def test_an_oversized_line_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(emulate, "MAX_LINE_CHARS", 100)
    line = {"url": "/g/collect?v=2&en=x&" + "a" * 200}
    done = diff(tmp_path, OLD, lines=[line])
    assert (done.returncode, done.stderr) == (2, "sgtm diff: line 1: longer than 100 characters\n")


def test_template_syntax_in_recorded_input_is_data(tmp_path):
    """A recorded hit that carries `{{...}}` is passed on as text: it never reads a secret."""
    line = {"url": REQUESTS[0]["url"] + "&ep.x=%7B%7Bsecret.TOKEN_A%7D%7D&epn.value=%7B%7Bx%7D%7D"}
    done = diff(tmp_path, OLD.replace("Bearer ${TOKEN_A}", "Bearer ${TOKEN_B}"), lines=[line])
    assert done.returncode == 1
    assert ENV["TOKEN_A"] not in done.stdout and ENV["TOKEN_B"] not in done.stdout


def test_a_broken_new_version_is_reported_with_positions(tmp_path):
    done = diff(tmp_path, OLD.replace("[ad_user_data]", "[ad_user_dat]"))
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"new: {tmp_path / 'new.yaml'}:11:15: tags[0].consent[0]: unknown consent type"
    )


def test_a_host_only_one_version_serves_is_a_difference(tmp_path):
    new = OLD.replace("version: 1\n", "version: 1\nhosts: [sgtm.shop.example]\n")
    old = OLD.replace("version: 1\n", "version: 1\nhosts: [sgtm.shop.example, other.example]\n")
    (tmp_path / "old.yaml").write_text(old)
    (tmp_path / "new.yaml").write_text(new)
    recorded = tmp_path / "recorded.ndjson"
    recorded.write_text(json.dumps({**REQUESTS[1], "host": "other.example"}) + "\n")
    done = run_cli(
        "diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"), "--requests",
        str(recorded), env=ENV,
    )  # fmt: skip
    assert done.returncode == 1
    assert "line 1 (GET /g/collect): response: changed" in done.stdout
    assert "    error: null -> \"no container serves host 'other.example'\"" in done.stdout
