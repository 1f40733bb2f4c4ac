"""Loading containers: every error names file:line:column: path: message, and all are reported.

Line and column numbers are asserted exactly: they are what a user reads in `sgtm validate`.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sgtm.config import ContainerSpec, load_containers, load_text
from sgtm.plugin import Client, ClientResponse
from sgtm.plugins import Registry
from sgtm.yamlsource import ConfigErrors
from tests.installed import registry


class TestClientSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    path: str = "/collect"


class EchoClient(Client):
    name = "test"
    Settings = TestClientSettings

    def claim(self, request: Any, settings: Any) -> bool:
        return bool(request.path == settings.path)

    def parse(self, request: Any, settings: Any, ctx: Any) -> list[dict[str, Any]]:
        return [{"event_name": "test"}]

    def respond(self, request: Any, events: Any, settings: Any, ctx: Any) -> ClientResponse:
        return ClientResponse(status=204)


VARIABLE_TYPES = (
    "constant",
    "cookie",
    "event_data",
    "lookup",
    "query_param",
    "regex_table",
    "request_header",
)
KNOWN_VARIABLE_TYPES = ", ".join(VARIABLE_TYPES)
RE2 = "(RE2 syntax: https://github.com/google/re2/wiki/Syntax)"


def test_registry() -> Registry:
    """Fixed types, so the `(known: ...)` lists do not change as plugins are added."""
    installed = registry()
    return Registry(
        clients={"test": EchoClient()},
        tags={"http_request": installed.tags["http_request"]},
        variables={name: installed.variables[name] for name in VARIABLE_TYPES},
    )


test_registry.__test__ = False  # type: ignore[attr-defined]


def load(text: str, environ: dict[str, str] | None = None) -> ContainerSpec:
    return load_text(textwrap.dedent(text), "shop.yaml", test_registry(), environ=environ or {})


def errors(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load(text, environ)
    messages = [str(e) for e in info.value.errors]
    assert str(info.value) == "\n".join(messages)
    return messages


VALID = """\
    version: 1
    hosts: [sgtm.shop.example]
    origins: [https://www.shop.example]
    privacy: {anonymize_ip: true, trusted_proxies: [10.0.0.0/8]}
    consent: {default: denied}
    clients:
      - {name: web, type: test, priority: 10}
    variables:
      email: {type: event_data, key: user_data.email_address}
    triggers:
      purchase: {event_name: purchase}
    transformations:
      - {type: exclude, params: [user_data.phone_number], tags: [hook]}
    tags:
      - name: hook
        type: http_request
        triggers: [purchase]
        consent: [ad_user_data]
        settings:
          url: https://hooks.example/x
          body: {email: "{{email}}"}
    """


def test_a_valid_container_loads() -> None:
    spec = load(VALID)
    assert spec.name == "shop"
    assert spec.hosts == ("sgtm.shop.example",)
    assert spec.origins == ("https://www.shop.example",)
    assert spec.consent_default_granted is False
    assert [c.name for c in spec.clients] == ["web"]
    assert [t.name for t in spec.tags] == ["hook"]
    assert spec.tags[0].consent == ("ad_user_data",)
    assert len(spec.tags[0].transformations) == 1


# (name, YAML text, the errors, exactly)
CASES = [
    (
        "syntax: unclosed flow sequence",
        """\
        version: 1
        tags: [
        """,
        ["shop.yaml:3:1: invalid YAML: expected the node content, but found '<stream end>'"],
    ),
    (
        "syntax: bad indentation",
        """\
        version: 1
        tags:
          - name: a
           type: http_request
        """,
        [
            "shop.yaml:4:4: invalid YAML: bad indentation: this line is indented differently"
            " from the lines of its block (the block starts at line 3)"
        ],
    ),
    (
        "syntax: tab",
        "version: 1\ntags:\n\t- a\n",
        ["shop.yaml:3:1: invalid YAML: a tab character: YAML indents with spaces only"],
    ),
    (
        "syntax: unclosed quote",
        'version: 1\nname: "shop\n',
        ["shop.yaml:3:1: invalid YAML: a quoted string is never closed (it opens at line 2)"],
    ),
    (
        "syntax: two documents",
        "version: 1\n---\nversion: 1\n",
        ["shop.yaml:2:1: invalid YAML: but found another document"],
    ),
    ("empty file", "", ["shop.yaml:1:1: the file is empty"]),
    ("only comments", "# nothing here\n\n", ["shop.yaml:1:1: the file is empty"]),
    (
        "a list",
        "- version: 1\n",
        ["shop.yaml:1:1: a container must be a mapping (version: 1, clients: ..., tags: ...)"],
    ),
    (
        "a scalar",
        "hello\n",
        ["shop.yaml:1:1: a container must be a mapping (version: 1, clients: ..., tags: ...)"],
    ),
    (
        "wrong version",
        "version: 2\n",
        ["shop.yaml:1:10: version: unsupported version 2: this sgtm reads version 1"],
    ),
    (
        "missing version",
        "hosts: []\n",
        ["shop.yaml:1:1: version: required (this sgtm reads `version: 1`)"],
    ),
    (
        "unknown top-level key",
        """\
        version: 1
        tagz: []
        """,
        ["shop.yaml:2:1: tagz: unknown key (did you mean 'tags'?)"],
    ),
    (
        "unknown key in a tag",
        """\
        version: 1
        tags:
          - name: a
            type: http_request
            colour: red
            settings: {url: "https://hooks.example/x"}
        """,
        ["shop.yaml:5:5: tags[0].colour: unknown key"],
    ),
    (
        "unknown key in a tag type's settings",
        """\
        version: 1
        tags:
          - name: a
            type: http_request
            settings: {url: "https://hooks.example/x", retries: 3}
        """,
        ["shop.yaml:5:48: tags[0].settings.retries: unknown key"],
    ),
    (
        "unknown key in privacy",
        """\
        version: 1
        privacy:
          anonymise_ip: true
        """,
        ["shop.yaml:3:3: privacy.anonymise_ip: unknown key (did you mean 'anonymize_ip'?)"],
    ),
    (
        "wrong type: priority",
        """\
        version: 1
        clients:
          - name: web
            type: test
            priority: abc
        """,
        ["shop.yaml:5:15: clients[0].priority: Expected `int`, got `str`"],
    ),
    (
        "wrong type: dry_run",
        """\
        version: 1
        tags:
          - name: a
            type: http_request
            dry_run: maybe
            settings: {url: "https://hooks.example/x"}
        """,
        ["shop.yaml:5:14: tags[0].dry_run: Expected `bool`, got `str`"],
    ),
    (
        "wrong type: hosts",
        """\
        version: 1
        hosts: sgtm.shop.example
        """,
        ["shop.yaml:2:8: hosts: Expected `array`, got `str`"],
    ),
    (
        "wrong value: consent default",
        """\
        version: 1
        consent: {default: maybe}
        """,
        ["shop.yaml:2:20: consent.default: Invalid enum value 'maybe'"],
    ),
    (
        "wrong type: client settings",
        """\
        version: 1
        clients:
          - name: web
            type: test
            settings: {path: [1]}
        """,
        ["shop.yaml:5:22: clients[0].settings.path: Expected `str`, got `array`"],
    ),
    (
        "missing required: tag name",
        """\
        version: 1
        tags:
          - type: http_request
            settings: {url: "https://hooks.example/x"}
        """,
        ["shop.yaml:3:5: tags[0].name: required"],
    ),
    (
        "missing required: tag type's settings",
        """\
        version: 1
        tags:
          - name: a
            type: http_request
            settings: {method: GET}
        """,
        ["shop.yaml:5:15: tags[0].settings.url: required"],
    ),
    (
        "missing required: variable settings",
        """\
        version: 1
        variables:
          email: {type: event_data}
        """,
        ["shop.yaml:3:10: variables.email.key: required"],
    ),
    (
        "unknown client type",
        """\
        version: 1
        clients:
          - {name: c, type: nope}
        """,
        ["shop.yaml:3:21: clients[0].type: unknown client type 'nope' (known: test)"],
    ),
    (
        "unknown tag type",
        """\
        version: 1
        tags:
          - {name: a, type: meta_capy}
        """,
        ["shop.yaml:3:21: tags[0].type: unknown tag type 'meta_capy' (known: http_request)"],
    ),
    (
        "unknown variable type",
        """\
        version: 1
        variables:
          x: {type: nope}
          y: {value: 1}
          z: 5
        """,
        [
            f"shop.yaml:3:13: variables.x.type: unknown variable type 'nope' "
            f"(known: {KNOWN_VARIABLE_TYPES})",
            "shop.yaml:4:6: variables.y: a variable needs a `type` "
            f"(one of: {KNOWN_VARIABLE_TYPES})",
            "shop.yaml:5:6: variables.z: a variable must be a mapping with a `type`",
        ],
    ),
    (
        "unknown trigger in triggers and in block",
        """\
        version: 1
        triggers:
          purchase: {event_name: purchase}
        tags:
          - name: a
            type: http_request
            triggers: [purchase, nope]
            block: [also_nope]
            settings: {url: "https://hooks.example/x"}
        """,
        [
            "shop.yaml:7:26: tags[0].triggers[1]: unknown trigger 'nope'",
            "shop.yaml:8:13: tags[0].block[0]: unknown trigger 'also_nope'",
        ],
    ),
    (
        "unknown trigger (block list)",
        """\
        version: 1
        tags:
          - name: a
            type: http_request
            triggers:
              - nope
            settings: {url: "https://hooks.example/x"}
        """,
        ["shop.yaml:6:9: tags[0].triggers[0]: unknown trigger 'nope'"],
    ),
    (
        "unknown variable in a condition",
        """\
        version: 1
        triggers:
          t:
            any:
              - {event_name: purchase}
              - {var: nope, equals: x}
        """,
        ["shop.yaml:6:15: triggers.t.any[1].var: unknown variable 'nope'"],
    ),
    (
        "unknown variable in a transformation's when",
        """\
        version: 1
        transformations:
          - type: exclude
            params: [value]
            when: {var: nope, exists: true}
        """,
        ["shop.yaml:5:17: transformations[0].when.var: unknown variable 'nope'"],
    ),
    (
        "unknown operator (points at the key)",
        """\
        version: 1
        triggers:
          t: {var: page_path, bogus: x}
        """,
        [
            "shop.yaml:3:23: triggers.t.bogus: unknown operator 'bogus' (expected one of "
            "equals, contains, starts_with, ends_with, matches, in, gt, gte, lt, lte, exists "
            "or not_<op>)"
        ],
    ),
    (
        "condition errors",
        """\
        version: 1
        triggers:
          a: {var: page_path, in: /checkout}
          b: {key: value, gt: lots}
          c: {key: value, exists: "yes"}
          d: {}
          e: purchase
          f: {event_name: [purchase, refund]}
          g: {key: value, equals: 1, contains: 1}
        """,
        [
            "shop.yaml:3:27: triggers.a.in: `in` needs a list",
            "shop.yaml:4:23: triggers.b.gt: `gt` needs a number",
            "shop.yaml:5:27: triggers.c.exists: `exists` takes true or false",
            "shop.yaml:6:6: triggers.d: empty condition (use `all: []` for one that always "
            "matches)",
            "shop.yaml:7:6: triggers.e: a condition must be a mapping, got str",
            "shop.yaml:8:19: triggers.f.event_name: `equals` needs a string, number or boolean",
            "shop.yaml:9:6: triggers.g: a condition needs exactly one operator",
        ],
    ),
    (
        "unknown variable in a template in tag settings",
        """\
        version: 1
        tags:
          - name: a
            type: http_request
            settings:
              url: "https://hooks.example/{{event.path}}/{{nope}}"
              body:
                email: "{{email}}"
                value: "{{event.value}}"
                page: "{{page_path}}"
        """,
        [
            "shop.yaml:6:12: tags[0].settings.url: unknown variable 'nope' in template",
            "shop.yaml:8:16: tags[0].settings.body.email: unknown variable 'email' in template",
        ],
    ),
    (
        "unknown variable in a template elsewhere",
        """\
        version: 1
        variables:
          tier: {type: lookup, input: event_name, map: {a: "{{nope1}}"}, default: "{{nope2}}"}
        transformations:
          - {type: augment, set: {x: "{{nope3}}"}}
        tags:
          - name: a
            type: http_request
            dedupe: {key: "{{nope4}}"}
            settings: {url: "https://hooks.example/x"}
        """,
        [
            "shop.yaml:3:52: variables.tier.map.a: unknown variable 'nope1' in template",
            "shop.yaml:3:75: variables.tier.default: unknown variable 'nope2' in template",
            "shop.yaml:9:19: tags[0].dedupe.key: unknown variable 'nope4' in template",
            "shop.yaml:5:30: transformations[0].set.x: unknown variable 'nope3' in template",
        ],
    ),
    (
        "unknown variable as lookup / regex_table input",
        """\
        version: 1
        variables:
          tier:
            type: lookup
            input: level
            map: {"1": gold}
          section:
            type: regex_table
            input: path_name
            patterns: []
        """,
        [
            "shop.yaml:5:12: variables.tier.input: unknown variable 'level'",
            "shop.yaml:9:12: variables.section.input: unknown variable 'path_name'"
            " (did you mean 'page_hostname'?)",
        ],
    ),
    (
        "bad regex in a trigger",
        """\
        version: 1
        triggers:
          t: {var: page_path, matches: "("}
          u: {var: page_path, not_matches: "[a-"}
        """,
        [
            f"shop.yaml:3:32: triggers.t.matches: invalid regular expression: missing ): ( {RE2}",
            f"shop.yaml:4:36: triggers.u.not_matches: invalid regular expression: missing ]: [a- "
            f"{RE2}",
        ],
    ),
    (
        "bad regex in a regex_table row",
        """\
        version: 1
        variables:
          section:
            type: regex_table
            input: page_path
            patterns:
              - {match: "^/ok", value: ok}
              - {match: "(", value: bad}
        """,
        [
            "shop.yaml:8:17: variables.section.patterns[1].match: invalid regular expression: "
            f"missing ): ( {RE2}"
        ],
    ),
    (
        "duplicate YAML key at the top",
        """\
        version: 1
        tags: []
        tags: []
        """,
        ["shop.yaml:3:1: tags: duplicate key 'tags'"],
    ),
    (
        "duplicate YAML key in a tag and in a flow mapping",
        """\
        version: 1
        tags:
          - name: a
            type: http_request
            name: b
            settings: {url: "https://hooks.example/x", url: "https://hooks.example/y"}
        """,
        [
            "shop.yaml:5:5: tags[0].name: duplicate key 'name'",
            "shop.yaml:6:48: tags[0].settings.url: duplicate key 'url'",
        ],
    ),
    (
        "non-string key",
        """\
        version: 1
        variables:
          tier: {type: lookup, input: event_name, map: {1: gold}}
        """,
        ["shop.yaml:3:49: variables.tier.map: mapping keys must be strings"],
    ),
    (
        "duplicate tag name",
        """\
        version: 1
        tags:
          - {name: hook, type: http_request, settings: {url: "https://hooks.example/a"}}
          - {name: hook, type: http_request, settings: {url: "https://hooks.example/b"}}
        """,
        ["shop.yaml:4:12: tags[1].name: duplicate tag name 'hook'"],
    ),
    (
        "duplicate client name",
        """\
        version: 1
        clients:
          - {name: web, type: test}
          - {name: web, type: test, priority: 5}
        """,
        ["shop.yaml:4:12: clients[1].name: duplicate client name 'web'"],
    ),
    (
        "invalid origins",
        """\
        version: 1
        origins:
          - https://www.shop.example
          - https://www.shop.example/path
          - "*"
          - www.shop.example
          - ftp://shop.example
        """,
        [
            "shop.yaml:4:5: origins[1]: 'https://www.shop.example/path' is not an origin "
            "(expected scheme://host[:port], no path or '*')",
            "shop.yaml:5:5: origins[2]: '*' is not an origin "
            "(expected scheme://host[:port], no path or '*')",
            "shop.yaml:6:5: origins[3]: 'www.shop.example' is not an origin "
            "(expected scheme://host[:port], no path or '*')",
            "shop.yaml:7:5: origins[4]: 'ftp://shop.example' is not an origin "
            "(expected scheme://host[:port], no path or '*')",
        ],
    ),
    (
        "invalid hosts",
        """\
        version: 1
        hosts: [sgtm.shop.example, "sgtm.shop.example/x", "", "a b"]
        """,
        [
            "shop.yaml:2:28: hosts[1]: 'sgtm.shop.example/x' is not a host name",
            "shop.yaml:2:51: hosts[2]: '' is not a host name",
            "shop.yaml:2:55: hosts[3]: 'a b' is not a host name",
        ],
    ),
    (
        "invalid trusted proxy",
        """\
        version: 1
        privacy:
          trusted_proxies: [10.0.0.0/8, 10.0.0.300/32]
        """,
        [
            "shop.yaml:3:20: privacy.trusted_proxies: invalid network '10.0.0.300/32': "
            "'10.0.0.300/32' does not appear to be an IPv4 or IPv6 network"
        ],
    ),
    (
        "built-in variable redefined, bad variable name",
        """\
        version: 1
        variables:
          page_path: {type: constant, value: /x}
          "my var": {type: constant, value: 1}
        """,
        [
            "shop.yaml:3:3: variables.page_path: 'page_path' is a built-in variable and "
            "cannot be redefined",
            "shop.yaml:4:3: variables.my var: 'my var' is not a valid variable name",
        ],
    ),
    (
        "http_request: templated host",
        """\
        version: 1
        variables:
          host: {type: constant, value: evil.example}
        tags:
          - name: a
            type: http_request
            settings:
              url: "https://{{host}}/x"
        """,
        [
            "shop.yaml:8:12: tags[0].settings.url: {{host}} is in the URL's scheme or host: "
            "templates may fill the path and query only, an event must never choose where a"
            " request goes"
        ],
    ),
    (
        "http_request: templated whole url",
        """\
        version: 1
        tags:
          - name: a
            type: http_request
            settings:
              url: "{{event.page_location}}"
        """,
        [
            "shop.yaml:6:12: tags[0].settings.url: {{event.page_location}} is in the URL's scheme"
            " or host: templates may fill the path and query only, an event must never choose"
            " where a request goes"
        ],
    ),
    (
        "transformation errors",
        """\
        version: 1
        transformations:
          - {type: exclude}
          - {type: augment, set: {}}
          - {type: rename, params: [a]}
          - {type: allow, params: [a], tag_types: [nope]}
        """,
        [
            "shop.yaml:3:5: transformations[0].params: `exclude` needs a list of params",
            "shop.yaml:4:26: transformations[1].set: `augment` needs `set: {param: value}`",
            "shop.yaml:5:12: transformations[2].type: Invalid enum value 'rename'",
            "shop.yaml:6:44: transformations[3].tag_types[0]: unknown tag type 'nope'",
        ],
    ),
    (
        "custom YAML tags are refused, never constructed",
        """\
        version: 1
        name: !!python/object/apply:os.system ["echo pwned"]
        hosts: [!!python/name:os.system x]
        clients:
          - {name: web, type: test, priority: !!int abc}
        """,
        [
            "shop.yaml:3:9: hosts[0]: invalid YAML value: could not determine a constructor "
            "for the tag 'tag:yaml.org,2002:python/name:os.system'",
            "shop.yaml:5:39: clients[0].priority: invalid YAML value: 'abc' is not a valid "
            "tag:yaml.org,2002:int",
            "shop.yaml:2:7: name: Expected `str | null`, got `array`",
        ],
    ),
    (
        "a local tag on a scalar",
        """\
        version: 1
        name: !shop x
        """,
        [
            "shop.yaml:2:7: name: invalid YAML value: could not determine a constructor for "
            "the tag '!shop'"
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_errors(text: str, expected: list[str]) -> None:
    assert errors(text) == expected


def test_several_errors_in_one_file_are_all_reported() -> None:
    text = """\
        version: 1
        origins: [nope]
        variables:
          page_path: {type: constant, value: x}
          tier: {type: lookup, input: level, map: {}}
        triggers:
          bad_re: {var: page_path, matches: "("}
          unknown_var: {var: nope, exists: true}
        tags:
          - name: a
            type: http_request
            triggers: [missing]
            settings: {url: "https://hooks.example/{{nope}}"}
          - name: a
            type: nope
          - type: http_request
        """
    assert errors(text) == [
        "shop.yaml:2:11: origins[0]: 'nope' is not an origin (expected scheme://host[:port], "
        "no path or '*')",
        "shop.yaml:4:3: variables.page_path: 'page_path' is a built-in variable and cannot be "
        "redefined",
        "shop.yaml:5:31: variables.tier.input: unknown variable 'level'",
        f"shop.yaml:7:37: triggers.bad_re.matches: invalid regular expression: missing ): ( {RE2}",
        "shop.yaml:8:22: triggers.unknown_var.var: unknown variable 'nope'",
        "shop.yaml:12:16: tags[0].triggers[0]: unknown trigger 'missing'",
        "shop.yaml:13:21: tags[0].settings.url: unknown variable 'nope' in template",
        "shop.yaml:14:11: tags[1].name: duplicate tag name 'a'",
        "shop.yaml:15:11: tags[1].type: unknown tag type 'nope' (known: http_request)",
        "shop.yaml:16:5: tags[2].name: required",
    ]


def test_yaml_level_errors_are_all_reported_too() -> None:
    text = """\
        version: 1
        tags: []
        tags: []
        name: "${NAME_ONE}"
        hosts: ["${HOST_ONE}"]
        """
    assert errors(text) == [
        "shop.yaml:3:1: tags: duplicate key 'tags'",
        "shop.yaml:4:7: name: environment variable NAME_ONE is not set",
        "shop.yaml:5:9: hosts[0]: environment variable HOST_ONE is not set",
    ]


ENV_TEXT = """\
    version: 1
    clients:
      - {name: web, type: test, priority: "${PRIORITY:-3}"}
    tags:
      - name: a
        type: http_request
        settings:
          url: "https://hooks.example/${HOOK_PATH}"
          hmac_secret: "${HOOK_SECRET}"
          headers:
            X-Region: "${REGION:-sa-east-1}"
            X-Empty: "${EMPTY:-}"
            X-Literal: "$${NOT_EXPANDED} costs $$5 and $5"
            X-Tenant: "${TENANT}-${TENANT}"
    """


def test_environment_substitution() -> None:
    environ = {
        "HOOK_PATH": "p/${TENANT}",  # substituted text is not substituted again
        "HOOK_SECRET": "s3cr3t-value",
        "TENANT": "t1",
        "PRIORITY": "7",
    }
    spec = load(ENV_TEXT, environ)
    settings = spec.tags[0].settings
    assert settings.url == "https://hooks.example/p/${TENANT}"
    assert settings.hmac_secret == "s3cr3t-value"
    assert settings.headers == {
        "X-Region": "sa-east-1",
        "X-Empty": "",
        "X-Literal": "${NOT_EXPANDED} costs $5 and $5",
        "X-Tenant": "t1-t1",
    }
    assert spec.clients[0].priority == 7
    # values of secret-looking variables are remembered, to be redacted from output
    assert spec.secrets == {"s3cr3t-value": "HOOK_SECRET"}


def test_environment_defaults_apply_when_unset_or_empty() -> None:
    environ = {"HOOK_PATH": "p", "HOOK_SECRET": "x" * 8, "TENANT": "t", "REGION": "", "EMPTY": "e"}
    spec = load(ENV_TEXT, environ)
    assert spec.tags[0].settings.headers["X-Region"] == "sa-east-1"
    assert spec.tags[0].settings.headers["X-Empty"] == "e"
    assert spec.clients[0].priority == 3
    environ["REGION"] = "us-east-1"
    assert load(ENV_TEXT, environ).tags[0].settings.headers["X-Region"] == "us-east-1"


def test_missing_environment_variables_are_all_reported() -> None:
    assert errors(ENV_TEXT, {"HOOK_PATH": ""}) == [
        "shop.yaml:8:12: tags[0].settings.url: environment variable HOOK_PATH is not set",
        "shop.yaml:9:20: tags[0].settings.hmac_secret: environment variable HOOK_SECRET is not set",
        # reported once, though the value names it twice
        "shop.yaml:14:19: tags[0].settings.headers.X-Tenant: environment variable TENANT is not "
        "set",
    ]


def test_merge_keys_override_instead_of_reporting_duplicates() -> None:
    spec = load(
        """\
        version: 1
        tags:
          - &hook
            name: a
            type: http_request
            dry_run: true
            settings: {url: "https://hooks.example/a"}
          - <<: *hook
            name: b
            settings: {url: "https://hooks.example/b"}
        """
    )
    assert [(t.name, t.dry_run, t.settings.url) for t in spec.tags] == [
        ("a", True, "https://hooks.example/a"),
        ("b", True, "https://hooks.example/b"),
    ]


def test_merge_keys_earlier_source_wins() -> None:
    spec = load(
        """\
        version: 1
        variables:
          a: &a {type: constant, value: from_a}
          b: &b {type: constant, value: from_b}
          c:
            <<: [*a, *b]
        """
    )
    assert spec.variables["c"].settings.value == "from_a"


def test_merge_key_that_is_not_a_mapping_is_a_positioned_error() -> None:
    assert errors(
        """\
        version: 1
        variables:
          a: {<<: 3, type: constant, value: x}
          b: {<<: [{type: constant}, oops], value: y}
        """
    ) == [
        "shop.yaml:3:11: variables.a: a merge key (<<) takes a mapping or a list of mappings",
        "shop.yaml:4:30: variables.b: a merge key (<<) takes a mapping or a list of mappings",
    ]


def test_merge_keys_still_report_duplicates_written_twice() -> None:
    assert errors(
        """\
        version: 1
        tags:
          - &hook
            name: a
            type: http_request
            settings: {url: "https://hooks.example/a"}
          - <<: *hook
            name: b
            name: c
        """
    ) == ["shop.yaml:9:5: tags[1].name: duplicate key 'name'"]


BILLION_LAUGHS = """\
version: 1
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_alias_bomb_is_rejected_quickly() -> None:
    started = time.monotonic()
    found = errors(BILLION_LAUGHS)
    assert time.monotonic() - started < 10
    assert len(found) == 1
    assert found[0].startswith("shop.yaml:")
    assert found[0].endswith(": document too large (more than 200000 values)")


@pytest.mark.parametrize("depth", [1000, 20000])
def test_deep_nesting_is_an_error_not_a_crash(depth: int) -> None:
    text = "version: 1\nname: " + "[" * depth + "]" * depth + "\n"
    assert errors(text) == ["shop.yaml:1:1: invalid YAML: nested too deeply"]


def test_secret_in_an_error_message_is_redacted() -> None:
    text = """\
        version: 1
        tags:
          - name: a
            type: http_request
            settings:
              url: "${SLACK_WEBHOOK_SECRET}"
        """
    secret = "hooks.slack.example/services/T0/B0/XXXX"
    found = errors(text, {"SLACK_WEBHOOK_SECRET": secret})
    assert all(secret not in message for message in found), found
    assert found == [
        "shop.yaml:6:12: tags[0].settings.url: expected an http(s) URL, "
        "got '${SLACK_WEBHOOK_SECRET}'"
    ]


def test_a_top_level_error_does_not_hide_the_others() -> None:
    text = """\
        version: 1
        tagz: []
        tags:
          - {name: a, type: nope}
        """
    assert errors(text) == [
        "shop.yaml:2:1: tagz: unknown key (did you mean 'tags'?)",
        "shop.yaml:4:21: tags[0].type: unknown tag type 'nope' (known: http_request)",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            """\
            version: 1
            variables:
              sec: {type: regex_table, input: page_path, patterns: [{match: "(", value: x}]}
            triggers:
              t: {var: sec, equals: x}
            """,
            [
                "shop.yaml:3:65: variables.sec.patterns[0].match: invalid regular expression: "
                f"missing ): ( {RE2}"
            ],
        ),
        (
            """\
            version: 1
            triggers:
              t: {var: page_path, matches: "("}
            tags:
              - {name: a, type: http_request, triggers: [t], settings: {url: "https://h.example/"}}
            """,
            [f"shop.yaml:3:32: triggers.t.matches: invalid regular expression: missing ): ( {RE2}"],
        ),
    ],
    ids=["variable", "trigger"],
)
def test_no_cascading_errors_for_broken_definitions(text: str, expected: list[str]) -> None:
    assert errors(text) == expected


def write(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def test_load_containers_two_files_claiming_the_same_host(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "version: 1\nhosts: [sgtm.shop.example]\n")
    b = write(tmp_path, "b.yaml", "version: 1\nhosts: [other.example, SGTM.Shop.Example:443]\n")
    with pytest.raises(ConfigErrors) as info:
        load_containers([tmp_path], test_registry(), environ={})
    assert [str(e) for e in info.value.errors] == [
        f"{b}:2:24: hosts[1]: host 'sgtm.shop.example' is also claimed by {a}"
    ]


def test_load_containers_two_default_containers(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "version: 1\n")
    b = write(tmp_path, "b.yml", "# default too\nversion: 1\n")
    write(tmp_path, "c.yaml", "version: 1\nhosts: [c.example]\n")
    write(tmp_path, "notes.txt", "not a container")
    with pytest.raises(ConfigErrors) as info:
        load_containers([tmp_path], test_registry(), environ={})
    assert [str(e) for e in info.value.errors] == [
        f"{b}:2:10: version: a second default container (no hosts); {a} is one"
    ]


def test_load_containers_same_container_name(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "version: 1\nname: shop\nhosts: [a.example]\n")
    b = write(tmp_path, "b.yaml", "version: 1\nname: shop\nhosts: [b.example]\n")
    with pytest.raises(ConfigErrors) as info:
        load_containers([tmp_path], test_registry(), environ={})
    assert [str(e) for e in info.value.errors] == [
        f"{b}:2:7: name: container name 'shop' also used by {a}"
    ]


def test_load_containers_reports_errors_of_every_file(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "version: 1\ntags: [\n")
    b = write(tmp_path, "b.yaml", "version: 1\nhosts: [b.example]\nbogus: 1\n")
    c = write(tmp_path, "c.yaml", "version: 1\nhosts: [c.example]\n")
    with pytest.raises(ConfigErrors) as info:
        load_containers([a, b, c], test_registry(), environ={})
    assert [str(e) for e in info.value.errors] == [
        f"{a}:3:1: invalid YAML: expected the node content, but found '<stream end>'",
        f"{b}:3:1: bogus: unknown key",
    ]


def test_load_containers_loads_a_directory_in_name_order(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", "version: 1\nhosts: [b.example]\n")
    write(tmp_path, "a.yml", "version: 1\n")
    specs = load_containers([tmp_path], test_registry(), environ={})
    assert [(s.name, s.hosts) for s in specs] == [("a", ()), ("b", ("b.example",))]


def test_load_containers_without_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as info:
        load_containers([tmp_path], test_registry(), environ={})
    assert [str(e) for e in info.value.errors] == [
        f"{tmp_path}:1:1: no *.yaml container files found"
    ]


def test_load_containers_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"version: 1\nname: caf\xe9\n")
    with pytest.raises(ConfigErrors) as info:
        load_containers([missing, bad], test_registry(), environ={})
    found = [str(e) for e in info.value.errors]
    assert len(found) == 2
    assert found[0].startswith(f"{missing}:1:1: cannot read file: ")
    assert found[1].startswith(f"{bad}:1:1: cannot read file: ")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("eu/hook", "must not contain '/'"),
        ("", "must not be empty"),
        (" hook", "spaces at either end"),
        ("ho\\tok", "control characters"),
    ],
)
def test_names_that_cannot_name_a_lane_are_positioned_errors(name: str, problem: str) -> None:
    # The lane of a job is stored as container/tag/destination: a slash in a name would send
    # the job to another tag's lane (or to none, where it waits and dead-letters).
    text = f"""\
        version: 1
        name: "{name}"
        tags:
          - name: "{name}"
            type: http_request
            settings: {{url: https://hooks.example/x}}
        """
    found = errors(text)
    assert len(found) == 2
    assert found[0].startswith("shop.yaml:2:7: name: container name ")
    assert found[1].startswith("shop.yaml:4:11: tags[0].name: tag name ")
    assert all(problem in message for message in found)


def test_names_with_dots_dashes_and_inner_spaces_still_load() -> None:
    spec = load(
        """\
        version: 1
        name: shop.prod-eu
        tags:
          - {name: "GA4 - purchase", type: http_request, settings: {url: https://x.example}}
        """
    )
    assert (spec.name, spec.tags[0].name) == ("shop.prod-eu", "GA4 - purchase")
