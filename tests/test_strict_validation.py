"""Strict validation (#13): each kind of mistake is an error (or a warning) at its line, with a
"did you mean" where a known name is close, and every error of a file is reported."""

from __future__ import annotations

import json
import textwrap

import pytest

from sgtm.consent import KNOWN_TYPES
from sgtm.suggest import MAX_CHARS, closest
from tests.cli import run_cli
from tests.test_config_errors import errors, load


def container(body: str) -> str:
    head = """\
        version: 1
        clients:
          - {name: web, type: test}
        variables:
          email: {type: event_data, key: user_data.email_address}
        triggers:
          purchase: {event_name: purchase}
        """
    return textwrap.dedent(head) + textwrap.dedent(body)


def test_an_unknown_consent_type_is_an_error_at_its_line() -> None:
    text = container(
        """\
        tags:
          - name: hook
            type: http_request
            triggers: [purchase]
            consent: [ad_user_data, ad_storag]
            settings: {url: "https://hooks.example/x"}
        """
    )
    known = ", ".join(KNOWN_TYPES)
    assert errors(text) == [
        "shop.yaml:12:29: tags[0].consent[1]: unknown consent type 'ad_storag'"
        f" (did you mean 'ad_storage'?) (known: {known})"
    ]


def test_every_known_consent_type_loads() -> None:
    text = container(
        f"""\
        tags:
          - name: hook
            type: http_request
            triggers: [purchase]
            consent: [{", ".join(KNOWN_TYPES)}]
            settings: {{url: "https://hooks.example/x"}}
        """
    )
    assert load(text).tags[0].consent == KNOWN_TYPES


def test_the_schema_lists_the_consent_types() -> None:
    done = run_cli("schema")
    schema = json.loads(done.stdout)
    variants = schema["properties"]["tags"]["items"]["oneOf"]
    assert variants
    for variant in variants:
        assert variant["properties"]["consent"] == {
            "type": "array",
            "items": {"enum": list(KNOWN_TYPES)},
        }


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        (
            "{name: hook, type: http_request, trigers: [purchase], settings: {url: 'https://x.example'}}",
            "shop.yaml:9:38: tags[0].trigers: unknown key (did you mean 'triggers'?)",
        ),
        (
            "{name: hook, type: http_request, triggers: [purchase], dedupe: {kye: x},"
            " settings: {url: 'https://x.example'}}",
            "shop.yaml:9:69: tags[0].dedupe.kye: unknown key (did you mean 'key'?)",
        ),
        (
            "{name: hook, type: http_request, triggers: [purchase], settings: {urll: 'https://x.example'}}",
            "shop.yaml:9:71: tags[0].settings.urll: unknown key (did you mean 'url'?)",
        ),
        (
            "{name: hook, type: http_requests, triggers: [purchase]}",
            "shop.yaml:9:24: tags[0].type: unknown tag type 'http_requests'"
            " (did you mean 'http_request'?) (known: http_request)",
        ),
        (
            "{name: hook, type: http_request, triggers: [purchse], settings: {url: 'https://x.example'}}",
            "shop.yaml:9:49: tags[0].triggers[0]: unknown trigger 'purchse'"
            " (did you mean 'purchase'?)",
        ),
        (
            "{name: hook, type: http_request, triggers: [purchase],"
            " settings: {url: 'https://x.example', body: {e: '{{emial}}'}}}",
            "shop.yaml:9:107: tags[0].settings.body.e: unknown variable 'emial' in template"
            " (did you mean 'email'?)",
        ),
    ],
    ids=["tag key", "nested key", "settings key", "tag type", "trigger", "template variable"],
)
def test_misspelt_names_get_did_you_mean(tag: str, expected: str) -> None:
    assert errors(container(f"tags:\n  - {tag}\n")) == [expected]


def test_a_misspelt_key_of_a_top_level_section_gets_did_you_mean() -> None:
    assert errors("version: 1\nprivacy: {anonymise_ip: true}\n") == [
        "shop.yaml:2:11: privacy.anonymise_ip: unknown key (did you mean 'anonymize_ip'?)"
    ]


def test_a_misspelt_variable_in_a_condition_gets_did_you_mean() -> None:
    text = container(
        """\
        tags: []
        transformations:
          - {type: exclude, params: [x], when: {var: emial, exists: true}}
        """
    )
    assert errors(text) == [
        "shop.yaml:10:46: transformations[0].when.var: unknown variable 'emial'"
        " (did you mean 'email'?)"
    ]


def test_a_misspelt_variable_type_and_client_type_get_did_you_mean() -> None:
    text = """\
        version: 1
        clients:
          - {name: web, type: tset}
        variables:
          v: {type: event_date, key: x}
        """
    messages = errors(text)
    assert messages[0].startswith(
        "shop.yaml:5:13: variables.v.type: unknown variable type 'event_date'"
        " (did you mean 'event_data'?)"
    )
    assert messages[1] == (
        "shop.yaml:3:23: clients[0].type: unknown client type 'tset' (did you mean 'test'?)"
        " (known: test)"
    )


def test_a_misspelt_tag_name_in_a_transformation_warns_with_did_you_mean() -> None:
    text = container(
        """\
        transformations:
          - {type: exclude, params: [x], tags: [hoko]}
        tags:
          - {name: hook, type: http_request, triggers: [purchase], settings: {url: "https://x.example"}}
        """
    )
    (warning,) = [str(w) for w in load(text).warnings]
    assert warning == (
        "shop.yaml:9:41: transformations[0].tags[0]: no tag named 'hoko'"
        " (did you mean 'hook'?): this transformation affects no tag by it"
    )


def test_nothing_close_suggests_nothing() -> None:
    text = container("tags:\n  - {name: a, type: http_request, triggers: [zzzzzz]}\n")
    assert errors(text)[0] == "shop.yaml:9:46: tags[0].triggers[0]: unknown trigger 'zzzzzz'"


def test_suggestions_are_bounded() -> None:
    assert closest("purchse", ["purchase", "lead"]) == "purchase"
    assert closest("PURCHASE", ["purchase"]) == "purchase"
    assert closest("x" * (MAX_CHARS + 1), ["x" * (MAX_CHARS + 1)]) is None
    assert closest("a" * MAX_CHARS, ["b" * 10_000, "a" * (MAX_CHARS - 1)]) == "a" * (MAX_CHARS - 1)


def test_an_unset_environment_variable_hides_no_other_error() -> None:
    text = container(
        """\
        tags:
          - name: hook
            type: http_request
            triggers: [purchase]
            consent: [ad_storag]
            settings:
              url: "${HOOK_URL}"
              colour: red
          - {name: other, type: nosuch, triggers: [purchase]}
        """
    )
    messages = errors(text, environ={})
    assert (
        messages[0]
        == "shop.yaml:14:12: tags[0].settings.url: environment variable HOOK_URL is not set"
    )
    assert messages[1].startswith("shop.yaml:12:15: tags[0].consent[0]: unknown consent type")
    assert messages[2] == "shop.yaml:15:7: tags[0].settings.colour: unknown key"
    assert messages[3].startswith("shop.yaml:16:25: tags[1].type: unknown tag type 'nosuch'")
    assert len(messages) == 4  # the empty url the unset variable left is not a second error


def test_several_errors_of_one_tag_are_all_reported() -> None:
    text = container(
        "tags:\n"
        "  - {name: a, type: http_request, triggers: [purchse], block: [nope],"
        " consent: [ad_storag], settings: {url: 'https://x.example', colour: red}}\n"
    )
    messages = errors(text)
    assert [m.split(": ")[1] for m in messages] == [
        "tags[0].consent[0]",
        "tags[0].triggers[0]",
        "tags[0].block[0]",
        "tags[0].settings.colour",
    ]


def test_every_bad_key_of_a_tag_and_a_client_is_reported() -> None:
    text = """\
        version: 1
        clients:
          - {name: web, type: test, priorty: 3, trust_hit_ip: maybe}
        triggers:
          purchase: {event_name: purchase}
        tags:
          - name: a
            type: http_request
            trigers: [purchase]
            dry_run: sometimes
            consent: [ad_storag]
            block: [nope]
            settings: {url: "https://x.example", colour: red}
        """
    assert [m.split(": ", 2)[1:] for m in errors(text)] == [
        ["clients[0].priorty", "unknown key (did you mean 'priority'?)"],
        ["clients[0].trust_hit_ip", "Expected `bool`, got `str`"],
        ["tags[0].trigers", "unknown key (did you mean 'triggers'?)"],
        ["tags[0].dry_run", "Expected `bool`, got `str`"],
        ["tags[0].consent[0]", errors(text)[4].split(": ", 2)[2]],
        ["tags[0].block[0]", "unknown trigger 'nope'"],
        ["tags[0].settings.colour", "unknown key"],
    ]
    assert "unknown consent type 'ad_storag'" in errors(text)[4]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "version: 1\ntags:\n  - name: a\n     type: b\n",
            "shop.yaml:4:10: invalid YAML: unexpected ':': this line is indented more than the key"
            " above it (bad indentation), or a value containing ': ' needs quotes",
        ),
        (
            "version: 1\ntags:\n  - name: a\n    type: b\n   dry_run: true\n",
            "shop.yaml:5:4: invalid YAML: bad indentation: this line is indented differently from"
            " the lines of its block (the block starts at line 3)",
        ),
        (
            "version: 1\nname\nhosts: []\n",
            "shop.yaml:3:1: invalid YAML: a line without 'key: value' (a ':' is missing, or bad"
            " indentation)",
        ),
        (
            "version: 1\nname: *x\n",
            "shop.yaml:2:7: invalid YAML: found undefined alias 'x' (an anchor must be defined"
            " with &name before *name)",
        ),
        (
            "tags: [a, b\nname: x\n",
            "shop.yaml:2:5: invalid YAML: expected ',' or ']', but got ':': the [list] or {mapping}"
            " opened at line 1 is not closed",
        ),
    ],
    ids=["indented more", "indented less", "missing colon", "undefined alias", "unclosed list"],
)
def test_yaml_syntax_errors_are_worded_for_people(text: str, expected: str) -> None:
    assert errors(text) == [expected]


def test_no_clients_warns() -> None:
    spec = load("version: 1\n")
    assert [str(w) for w in spec.warnings] == [
        "shop.yaml:1:1: clients: no clients: this container claims no request (only events fed in)"
    ]


def test_a_tag_no_trigger_can_reach_warns_unless_paused() -> None:
    text = container(
        """\
        tags:
          - {name: orphan, type: http_request, settings: {url: "https://x.example"}}
          - {name: parked, type: http_request, paused: true, settings: {url: "https://x.example"}}
        """
    )
    assert [str(w) for w in load(text).warnings] == [
        "shop.yaml:9:12: tags[0].name: tag 'orphan' has no triggers: no event can fire it"
    ]


def test_validate_prints_warnings_and_succeeds(tmp_path) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text("version: 1\n")
    done = run_cli("validate", str(path))
    assert done.returncode == 0
    assert done.stderr == (
        f"warning: {path}:1:1: clients: no clients: this container claims no request"
        " (only events fed in)\n"
    )
    assert done.stdout.startswith(f"ok: {path}: container 'shop'")
