"""Values from a hit are encoded for where they land (issue #8, item 5): URL templates encode per
component and never let an event choose the host; header values lose CR and LF; http_request
bodies are built, never spliced; events without an id keep distinct idempotency keys (item 10)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from sgtm.config import load_text
from sgtm.testing import Harness
from sgtm.yamlsource import ConfigErrors
from tests.installed import registry

HOOK = """\
version: 1
triggers: {all: {all: []}}
tags:
  - name: hook
    type: http_request
    triggers: [all]
    settings:
%s
"""


def hook(settings: str, env: dict[str, str] | None = None) -> Harness:
    return Harness(HOOK % settings, environ=env or {})


async def built(settings: str, event: dict, env: dict[str, str] | None = None):
    result = await hook(settings, env).events(event)
    (request,) = result.requests("hook")
    return request


async def test_a_value_stays_inside_its_path_segment_and_query_value():
    request = await built(
        '      url: "https://vendor.test/sec/{{event.utm}}/x?utm={{event.utm}}&token=${T}#{{event.utm}}"',
        {"utm": "../../admin?delete=1#&token=evil"},
        {"T": "t0ken-from-env"},
    )
    parts = urlsplit(request.url)
    assert parts.netloc == "vendor.test"
    assert parts.path == "/sec/..%2F..%2Fadmin%3Fdelete%3D1%23%26token%3Devil/x"
    assert parse_qs(parts.query) == {
        "utm": ["../../admin?delete=1#&token=evil"],
        "token": ["t0ken-from-env"],
    }
    assert parts.fragment == "..%2F..%2Fadmin%3Fdelete%3D1%23%26token%3Devil"


@pytest.mark.parametrize("dots", [".", ".."])
async def test_a_segment_of_dots_cannot_walk_up_the_path(dots):
    request = await built('      url: "https://vendor.test/a/{{event.x}}/b"', {"x": dots})
    assert request.url == "https://vendor.test/a/" + "%2E" * len(dots) + "/b"


@pytest.mark.parametrize(
    "url",
    [
        "https://{{event.host}}/x",
        "https://shop.{{event.host}}/x",
        "https://vendor.test{{event.host}}/x",
        "https://vendor.test:{{event.port}}/x",
        "{{event.page_location}}",
        "http{{event.s}}://vendor.test/x",
    ],
)
def test_an_event_never_chooses_scheme_host_or_port(url):
    with pytest.raises(ConfigErrors) as caught:
        load_text(HOOK % f'      url: "{url}"', "shop.yaml", registry(), environ={})
    assert "is in the URL's scheme or host" in str(caught.value)
    assert "shop.yaml:8:12: tags[0].settings.url:" in str(caught.value)


async def test_header_values_from_a_hit_cannot_start_another_header():
    request = await built(
        '      headers: {X-Source: "{{event.src}}"}\n      url: "https://vendor.test/in"',
        {"src": "a\r\nAuthorization: Bearer stolen\n\0b"},
    )
    assert request.headers["X-Source"] == "aAuthorization: Bearer stolenb"


async def test_form_bodies_encode_their_values():
    request = await built(
        "      url: https://vendor.test/in\n"
        "      content_type: application/x-www-form-urlencoded\n"
        '      body: {name: "{{event.name}}", n: "{{event.n}}"}',
        {"name": "x&admin=true", "n": 3},
    )
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.body.decode()) == {"name": ["x&admin=true"], "n": ["3"]}


def test_a_templated_json_string_body_is_refused_at_load():
    settings = (
        "      url: https://vendor.test/in\n"
        "      content_type: application/json\n"
        '      body: \'{"name": "{{event.name}}"}\''
    )
    with pytest.raises(ConfigErrors) as caught:
        load_text(HOOK % settings, "shop.yaml", registry(), environ={})
    assert "body with templates must be a mapping" in str(caught.value)


async def test_two_identical_events_without_an_id_keep_two_idempotency_keys():
    harness = hook("      url: https://vendor.test/in")
    result = await harness.events({"event_name": "lead"}, {"event_name": "lead"})
    first, second = result.requests("hook")
    assert first.body == second.body
    assert first.idempotency_key != second.idempotency_key
    assert first.headers["Idempotency-Key"] == first.idempotency_key


async def test_an_event_id_is_the_idempotency_key():
    result = await hook("      url: https://vendor.test/in").events({"event_id": "e-1"})
    (request,) = result.requests("hook")
    assert request.idempotency_key == "e-1"
