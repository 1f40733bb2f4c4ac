"""`sgtm test FILE...`: scenario files pass, fail with each case named, or are refused with
file:line:col errors; `--junit` writes a report CI systems read."""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sgtm import scenarios
from tests.cli import Ran, run_cli

ENV = {"HOOK_TOKEN": "hook-token-value-1234", "PATH": "/usr/bin:/bin"}

CONTAINER = """\
version: 1
hosts: [sgtm.shop.example]
consent: {default: denied}
clients:
  - {name: ga4, type: ga4}
variables:
  email: {type: event_data, key: user_data.email_address}
triggers:
  purchase: {event_name: purchase}
tags:
  - name: hook
    type: http_request
    triggers: [purchase]
    settings:
      url: "https://hooks.example.invalid/x?src=sgtm"
      headers: {authorization: "Bearer ${HOOK_TOKEN}"}
      body: {event: "{{event_name}}", value: "{{event.value}}", email: "{{email}}"}
  - name: crm
    type: http_request
    triggers: [purchase]
    consent: [ad_user_data]
    settings: {url: "https://crm.example.invalid/lead"}
"""

PURCHASE = "/g/collect?v=2&tid=G-ABC123XYZ9&cid=1.2&en=purchase&epn.value=10"

PASSING = f"""\
container: shop.yaml
now: 2026-01-01T00:00:00Z
cases:
  - name: a purchase reaches the hook, not the CRM
    request: {{url: "{PURCHASE}", headers: {{host: sgtm.shop.example}}}}
    expect:
      status: 200
      events: 1
      data: {{event_name: purchase, value: 10}}
      tags:
        hook: {{fired: true}}
        crm: {{fired: false, reason: "consent:"}}
      requests:
        hook:
          body.event: purchase
          value: 10
          url: "https://hooks.example.invalid/x?src=sgtm"
          url.query.src: sgtm
          url.host: hooks.example.invalid
          headers.Authorization: "Bearer ${{HOOK_TOKEN}}"
          method: POST
  - name: an event fed straight in
    event: {{event_name: purchase, value: 3, consent_state: {{ad_user_data: true}}}}
    expect:
      tags:
        crm: {{fired: true}}
      requests:
        crm: [{{url.path: /lead}}]
"""


def write(tmp_path: Path, scenario: str, name: str = "shop.test.yaml") -> Path:
    (tmp_path / "shop.yaml").write_text(CONTAINER)
    path = tmp_path / name
    path.write_text(textwrap.dedent(scenario))
    return path


def sgtm_test(*args: str) -> Ran:
    return run_cli("test", *args, env=ENV)


def test_a_passing_scenario_exits_0(tmp_path):
    path = write(tmp_path, PASSING)
    done = sgtm_test(str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        f"ok    {path}:4: a purchase reaches the hook, not the CRM",
        f"ok    {path}:22: an event fed straight in",
        "2 passed, 0 failed",
    ]


def test_the_container_path_is_relative_to_the_scenario_file(tmp_path, monkeypatch):
    path = write(tmp_path, PASSING)
    monkeypatch.chdir("/")
    assert sgtm_test(str(path)).returncode == 0


FAILING = f"""\
container: shop.yaml
now: 1767225600
cases:
  - name: passes
    event: {{event_name: purchase}}
    expect: {{tags: {{hook: {{fired: true}}}}}}
  - name: everything wrong
    request: {{url: "{PURCHASE}", headers: {{host: sgtm.shop.example}}}}
    expect:
      status: 204
      events: 2
      data: {{value: 11}}
      tags:
        hook: {{fired: false}}
        crm: {{reason: dedupe}}
      requests:
        hook: {{value: "10", headers.authorization: "Bearer hook-token-value-1234", nope: 1}}
        crm: {{url: x}}
"""


def test_a_failing_case_is_named_with_what_was_expected_and_what_happened(tmp_path):
    path = write(tmp_path, FAILING)
    done = sgtm_test(str(path))
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"ok    {path}:4: passes",
        f"FAIL  {path}:7: everything wrong",
        "        status: expected 204, got 200",
        "        events: expected 2, got 1",
        "        data.value: expected 11, got 10",
        "        tags.hook.fired: expected false, got true",
        '        tags.crm.reason: expected one starting "dedupe", got "consent:ad_user_data"',
        '        requests.hook.value: expected "10", got 10',
        # The secret the scenario wrote is masked too: output never shows one.
        '        requests.hook.headers.authorization: expected "Bearer ${HOOK_TOKEN}",'
        ' got "Bearer ${HOOK_TOKEN}"',
        "        requests.hook.nope: expected 1, got (absent)",
        "        requests.crm: the tag built no request",
        "1 passed, 1 failed",
    ]
    assert ENV["HOOK_TOKEN"] not in done.stdout + done.stderr


def test_junit_report(tmp_path):
    path = write(tmp_path, FAILING)
    report = tmp_path / "junit.xml"
    assert sgtm_test(str(path), "--junit", str(report)).returncode == 1
    root = ET.parse(report).getroot()
    (suite,) = root
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == (str(path), "2", "1")
    passed, failed = suite
    assert (passed.get("name"), passed.get("line"), list(passed)) == ("passes", "4", [])
    (failure,) = failed
    assert failed.get("line") == "7"
    assert failure.get("message") == "status: expected 204, got 200"
    assert "tags.hook.fired: expected false, got true" in (failure.text or "")
    assert ENV["HOOK_TOKEN"] not in report.read_text()


def test_junit_keeps_control_characters_out_of_the_xml(tmp_path):
    path = write(
        tmp_path,
        'container: shop.yaml\nnow: 0\ncases:\n  - name: "bell \\a and \\x1b"\n'
        "    event: {event_name: x}\n    expect: {events: 2}\n",
    )
    report = tmp_path / "junit.xml"
    assert sgtm_test(str(path), "--junit", str(report)).returncode == 1
    (case,) = ET.parse(report).getroot()[0]
    assert case.get("name") == "bell \ufffd and \ufffd"


def test_several_files_and_each_result(tmp_path):
    good = write(tmp_path, PASSING, "a.test.yaml")
    bad = write(tmp_path, FAILING, "b.test.yaml")
    done = sgtm_test(str(good), str(bad))
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == "3 passed, 1 failed"


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        (
            "container: shop.yaml\nnow: 0\ncases:\n  - name: x\n    event: {}\n    expct: {}\n",
            ["{f}:6:5: cases[0].expct: unknown key (did you mean 'expect'?)"],
        ),
        (
            "container: shop.yaml\nnow: 0\ncasess: []\n",
            [
                "{f}:3:1: casess: unknown key (did you mean 'cases'?)",
                "{f}:1:1: cases: required: a list of cases",
            ],
        ),
        (
            "container: shop.yaml\ncases: []\n",
            ["{f}:1:1: now: required"],
        ),
        (
            "container: shop.yaml\nnow: yesterday\ncases: []\n",
            [
                "{f}:2:6: now: not a time (Invalid isoformat string: 'yesterday'): epoch seconds"
                " or ISO 8601"
            ],
        ),
        (
            "container: shop.yaml\nnow: 0\ncases: x\n",
            ["{f}:3:8: cases: expected a list of cases"],
        ),
        (
            "container: shop.yaml\nnow: 0\ncases:\n  - name: x\n    expect: {status: abc}\n"
            "    event: {}\n",
            ["{f}:5:22: cases[0].expect.status: Expected `int | null`, got `str`"],
        ),
        (
            "container: shop.yaml\nnow: 0\ncases:\n  - {name: x, event: {}, request: {url: /}}\n",
            ["{f}:4:5: cases[0]: a case has either `request` or `event`"],
        ),
        (
            "container: shop.yaml\nnow: 0\ncases:\n"
            "  - {name: x, event: {}, expect: {status: 200}}\n",
            ["{f}:4:43: cases[0].expect.status: an event case has no response status"],
        ),
        (
            "container: shop.yaml\nnow: 0\ncases:\n"
            "  - {name: x, event: {}, expect: {tags: {hok: {fired: true}}}}\n",
            [
                "{f}:4:42: cases[0].expect.tags.hok: no tag named 'hok' in the container"
                " (did you mean 'hook'?)"
            ],
        ),
        (
            "container: shop.yaml\nnow: 0\ncases:\n"
            "  - {name: x, event: {}, expect: {requests: {hook: {'a..b': 1}}}}\n",
            ["{f}:4:61: cases[0].expect.requests.hook.a..b: not a path: 'a..b'"],
        ),
        (
            "container: missing.yaml\nnow: 0\ncases: []\n",
            [
                "{d}/missing.yaml:1:1: cannot read file: [Errno 2] No such file or directory:"
                " '{d}/missing.yaml'"
            ],
        ),
        (
            "- just\n- a list\n",
            ["{f}:1:1: a scenario file is a mapping (container, now, cases)"],
        ),
        (
            "container: shop.yaml\nnow: 0\ncases:\n  - name: x\n   event: {}\n",
            [
                "{f}:5:4: invalid YAML: bad indentation: this line is indented differently from"
                " the lines of its block (the block starts at line 4)"
            ],
        ),
        (
            "container: [shop.yaml]\nnow: 0\ncases:\n  - {name: x, request: {url: 5, verb: GET}}\n",
            ["{f}:4:30: cases[0].request.url: Expected `str`, got `int`"],
        ),
    ],
    ids=[
        "unknown case key",
        "unknown top key",
        "missing now",
        "bad now",
        "cases not a list",
        "wrong type",
        "request and event",
        "status of an event",
        "unknown tag",
        "not a path",
        "missing container",
        "not a mapping",
        "bad indentation",
        "request field type",
    ],
)
def test_a_malformed_scenario_file_is_refused_with_positions(tmp_path, scenario, expected):
    path = write(tmp_path, scenario)
    done = sgtm_test(str(path))
    assert done.returncode == 2, done.stdout
    assert done.stdout == ""
    assert done.stderr.splitlines() == [e.format(f=path, d=tmp_path) for e in expected]


def test_an_oversized_scenario_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(scenarios, "MAX_FILE_BYTES", 1000)
    path = write(tmp_path, PASSING + "#" * 1000 + "\n")
    done = sgtm_test(str(path))
    assert (done.returncode, done.stderr) == (2, f"{path}:1:1: larger than 1000 bytes\n")


def test_template_syntax_in_a_scenario_is_data_never_rendered(tmp_path):
    """`{{...}}` and `${...}` in a scenario are compared as written: never rendered, never
    substituted from the environment."""
    scenario = """\
    container: shop.yaml
    now: 0
    cases:
      - name: hostile values
        event:
          event_name: purchase
          value: "{{secret.HOOK_TOKEN}}"
          user_data: {email_address: "${HOOK_TOKEN}"}
        expect:
          requests:
            hook: {value: "{{secret.HOOK_TOKEN}}", email: "${HOOK_TOKEN}"}
    """
    path = write(tmp_path, scenario)
    done = sgtm_test(str(path))
    assert done.returncode == 0, done.stdout
    assert ENV["HOOK_TOKEN"] not in done.stdout


def test_a_container_error_is_reported_as_validate_does(tmp_path):
    path = write(tmp_path, PASSING)
    (tmp_path / "shop.yaml").write_text(CONTAINER.replace("[ad_user_data]", "[ad_user_dta]"))
    done = sgtm_test(str(path))
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"{tmp_path / 'shop.yaml'}:21:15: tags[1].consent[0]: unknown consent type 'ad_user_dta'"
        " (did you mean 'ad_user_data'?)"
    )
