"""Property tests over the browser-facing client endpoints (ga4, datalayer, beacon; the
server-to-server ones are in test_fuzz_s2s.py): adversarial hits never get a 5xx, the server still
answers a normal hit afterwards, and no secret reaches a request or a log line except where the
config puts it for its own vendor.

Deterministic (derandomize) and bounded, so CI always runs the same examples in a few seconds.
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.harness import (
    FUZZ,
    NORMAL_HIT,
    SECRETS,
    SPECIAL,
    Server,
    answered,
    escape,
    json_values,
    names,
    query,
    values,
)

ga4_params = st.lists(st.tuples(names, values), max_size=12)
BASE = [("v", "2"), ("tid", "G-FUZZ0001"), ("cid", "1.2")]


@FUZZ
@given(params=ga4_params)
def test_ga4_get(server: Server, params: list[tuple[str, str]]) -> None:
    response = server.request("GET", f"/g/collect?{query(BASE + params)}")
    answered(server, response.status_code)


@FUZZ
@given(params=ga4_params, lines=st.lists(ga4_params, max_size=5), raw=st.binary(max_size=64))
def test_ga4_post(
    server: Server, params: list[tuple[str, str]], lines: list[list[tuple[str, str]]], raw: bytes
) -> None:
    body = "\n".join(query(line) for line in lines).encode("utf-8", "surrogatepass") + raw
    response = server.request("POST", f"/g/collect?{query(BASE + params)}", content=body)
    answered(server, response.status_code)


@FUZZ
@given(
    value=st.one_of(json_values, st.lists(json_values, max_size=4)),
    content_type=st.sampled_from(["text/plain;charset=UTF-8", "application/json", "", "x/y"]),
    mangle=st.sampled_from(["", "truncate", "nan"]),
)
def test_datalayer_post(server: Server, value: object, content_type: str, mangle: str) -> None:
    text = json.dumps(value, allow_nan=True)
    if mangle == "truncate":
        text = text[: len(text) // 2]
    body = text.encode("utf-8", "surrogatepass")
    headers = {"content-type": content_type} if content_type else {}
    response = server.request("POST", "/data", content=body, headers=headers)
    answered(server, response.status_code)


@FUZZ
@given(
    params=st.lists(
        st.tuples(st.one_of(st.sampled_from(["event", "dtdc", "dtcd", "v"]), names), values),
        max_size=8,
    )
)
def test_datalayer_data_tag_get(server: Server, params: list[tuple[str, str]]) -> None:
    response = server.request("GET", f"/data?v=2&{query(params)}")
    answered(server, response.status_code)


@FUZZ
@given(
    kind=st.sampled_from(["impression", "view", "click", "conversion", "nope", ""]),
    value=json_values,
)
def test_beacon(server: Server, kind: str, value: object) -> None:
    body = json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")
    response = server.request("POST", f"/beacon/{kind}", content=body)
    answered(server, response.status_code)


@FUZZ
@given(cookie=values, user_agent=values, sec_ch_ua=values, utm=values)
def test_headers_and_cookies(
    server: Server, cookie: str, user_agent: str, sec_ch_ua: str, utm: str
) -> None:
    headers = {
        "cookie": f"session={cookie}; _ga=GA1.1.1.2; FPID={cookie}",
        "user-agent": user_agent,
        "sec-ch-ua": sec_ch_ua,
    }
    # As a client can send them: any bytes but CR and LF (HTTP/1.1 framing removes those).
    raw = {
        k: v.encode("utf-8", "surrogatepass").replace(b"\r", b"").replace(b"\n", b"")
        for k, v in headers.items()
    }
    target = (
        f"/g/collect?{query([*BASE, ('en', 'page_view'), ('dl', 'https://www.shop.example/p/1')])}"
    )
    response = server.request("GET", f"{target}&utm_source={escape(utm)}", headers=raw)
    answered(server, response.status_code)


def test_no_secret_leaves_except_where_the_config_puts_it_on_normal_hits(server: Server) -> None:
    since = server.mark()
    server.assert_answers_a_normal_hit()
    sent = server.sent(since[0])
    assert {tag for tag, _ in sent} == {"hook", "crm", "meta"}
    # The check can see a secret: each one the config sends is where it should be.
    (crm,) = [o for tag, o in sent if tag == "crm"]
    assert crm.headers["Authorization"] == "Bearer " + SECRETS["API_TOKEN"]
    (meta,) = [o for tag, o in sent if tag == "meta"]
    assert "access_token=" + SECRETS["META_ACCESS_TOKEN"] in meta.url
    assert server.leaks(since) == []


@FUZZ
@given(params=st.lists(st.tuples(names, values), max_size=12), value=json_values)
def test_fuzzed_hits_leak_no_secret(
    server: Server, params: list[tuple[str, str]], value: object
) -> None:
    since = server.mark()
    server.request("GET", f"/g/collect?{query(BASE + params)}")
    body = json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")
    server.request("POST", "/data", content=body)
    server.request("GET", NORMAL_HIT, headers={"cookie": f"session={escape(str(value))[:200]}"})
    assert server.leaks(since) == []


@FUZZ
@given(
    value=st.sampled_from([s for s in SPECIAL if s.startswith(("{{secret", "{{credential", "$"))]),
    where=st.sampled_from(["ep.uid", "uid", "dl", "ep.user_data.email"]),
)
def test_placeholder_text_in_a_hit_never_becomes_a_secret(
    server: Server, where: str, value: str
) -> None:
    since = server.mark()
    hit = query([*BASE, ("en", "purchase"), ("dl", "https://www.shop.example/p/1"), (where, value)])
    assert server.request("GET", f"/g/collect?{hit}").status_code == 200
    push = {"event": "purchase", "user_data": {"email_address": value}, "page_location": value}
    assert server.request("POST", "/data", content=json.dumps(push)).status_code == 200
    assert server.leaks(since) == []
