"""Property tests over the config loader: adversarial YAML either loads or fails with positioned
ConfigErrors (never another exception), and no error message shows a secret's value.

The texts are a real container with generated values put where users write values (tag and
variable settings, conditions, names, hosts), plus whole-text damage (cut short, deep nesting,
sizes at the loader's limits).
"""

from __future__ import annotations

import textwrap

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sgtm.config import ContainerSpec, load_text
from sgtm.yamlsource import ConfigErrors
from tests.fuzz.harness import SECRETS, json_values, values
from tests.installed import registry

FUZZ = settings(max_examples=40, derandomize=True, deadline=None)
ENV = {**SECRETS, "PIXEL": "1234567890123456", "EMPTY": ""}

# Text the loader itself interprets inside values.
LOADER_SYNTAX = [
    "${API_TOKEN}",
    "${META_ACCESS_TOKEN}",
    "${HOOK_SECRET:-x}",
    "${MISSING}",
    "${MISSING:-fallback}",
    "${EMPTY}",
    "$${API_TOKEN}",
    "${",
    "{{secret.API_TOKEN}}",
    "{{credential}}",
    "{{ nope }}",
    "{{event.a.b}}",
    "{{",
    "}}",
    "&anchor",
    "*alias",
    "!!python/object:os.system",
    "\ufeff",
    "\x85",
]
scalars = st.one_of(
    st.sampled_from(LOADER_SYNTAX),
    values,
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(),
    st.booleans(),
    st.none(),
)
anything = st.one_of(scalars, json_values)


def container(tag_settings: object, variable: object, condition: object, name: object) -> str:
    """A container with the generated values in user-written places, dumped as YAML."""
    doc = {
        "version": 1,
        "hosts": [name] if isinstance(name, str) else [],
        "clients": [{"name": "ga4", "type": "ga4", "settings": {"max_events": variable}}],
        "variables": {
            "fuzzed": {"type": "constant", "value": variable},
            "table": {
                "type": "regex_table",
                "input": "page_path",
                "patterns": [
                    {"match": name if isinstance(name, str) else "^/p", "value": variable}
                ],
            },
        },
        "triggers": {"t": condition, "u": {"var": "page_path", "matches": name}},
        "tags": [
            {"name": "crm", "type": "http_request", "triggers": ["t"], "settings": tag_settings},
            {
                "name": "meta",
                "type": "meta_capi",
                "settings": {
                    "pixel_id": "${PIXEL}",
                    "access_token": "${META_ACCESS_TOKEN}",
                    "test_event_code": variable,
                },
            },
            {
                "name": "hook",
                "type": "http_request",
                "settings": {
                    "url": "https://h.example/x",
                    "hmac_secret": "${HOOK_SECRET}",
                    "headers": {"X-Secret-Hint": name, "Authorization": "${API_TOKEN}"},
                    "timeout": variable,
                },
            },
        ],
    }
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def check(text: str) -> None:
    try:
        spec = load_text(text, "fuzz.yaml", registry(), ENV)
    except ConfigErrors as exc:
        assert exc.errors
        for error in exc.errors:
            assert error.file == "fuzz.yaml"
            assert error.line >= 1 and error.column >= 1
            for name, secret in SECRETS.items():
                assert secret not in str(error), f"{name} shown in: {error}"
        return
    assert isinstance(spec, ContainerSpec)


tag_settings = st.one_of(
    anything,
    st.fixed_dictionaries(
        {"url": st.one_of(st.just("https://crm.example/hooks"), values), "body": anything},
        optional={"headers": st.dictionaries(values, anything, max_size=3), "method": values},
    ),
)
conditions = st.one_of(
    anything,
    st.fixed_dictionaries({"var": st.sampled_from(["page_path", "fuzzed", "nope"])}).flatmap(
        lambda leaf: st.tuples(
            st.sampled_from(["equals", "matches", "not_matches", "in", "gt", "exists", "bogus"]),
            anything,
        ).map(lambda op: {**leaf, op[0]: op[1]})
    ),
)


@FUZZ
@given(tag_settings, anything, conditions, scalars)
def test_generated_values_load_or_fail_cleanly(
    tag_settings: object, variable: object, condition: object, name: object
) -> None:
    check(container(tag_settings, variable, condition, name))


@FUZZ
@given(tag_settings, anything, conditions, scalars, st.integers(min_value=0, max_value=2000))
def test_a_text_cut_anywhere_fails_cleanly(
    tag_settings: object, variable: object, condition: object, name: object, cut: int
) -> None:
    text = container(tag_settings, variable, condition, name)
    check(text[: cut % (len(text) + 1)])


@FUZZ
@given(st.text(max_size=300), st.binary(max_size=50))
def test_arbitrary_text_fails_cleanly(text: str, raw: bytes) -> None:
    check(text + raw.decode("latin-1"))


def test_limits_of_the_loader_fail_cleanly() -> None:
    # Deeper than Python's recursion limit (the loader composes nodes recursively), a long
    # value, numbers past every range. MAX_NODES itself: test_config_errors' billion laughs.
    depth = 600
    nested = "[" * depth + "]" * depth
    check("version: 1\nvariables:\n  v: {type: constant, value: " + nested + "}\n")
    check(f"version: 1\nvariables:\n  v: {{type: constant, value: '{'x' * 200_000}'}}\n")
    numbers = textwrap.dedent(
        f"""\
        version: 1
        clients: [{{name: ga4, type: ga4, settings: {{max_events: {"9" * 5000}}}}}]
        tags:
          - {{name: a, type: http_request, settings: {{url: "https://h.example/", timeout: 1e999}}}}
          - {{name: b, type: http_request, settings: {{url: "https://h.example/", timeout: .nan}}}}
        """
    )
    check(numbers)
