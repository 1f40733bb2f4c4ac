"""The `sgtm` CLI: validate, emulate (docs/design.md's output format), schema, plugins."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sgtm import __version__
from sgtm.plugin import CONTRACT_VERSION

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "example.yaml"
NOW = "1700000000"
PURCHASE = (
    "/g/collect?v=2&tid=G-EXAMPLE01&cid=555.1700000000&uid=u-42&sid=1700000500&sct=7&en=purchase"
    "&cu=EUR&ep.transaction_id=T-1001&epn.value=59.8&pr1=idSKU-1~nmRunning%20Sock~pr9.9~qt2"
    "&dl=https%3A%2F%2Fwww.shop.example%2Fcheckout%2Fdone&gcs=G111"
)


def sgtm(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sgtm.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
    )


def emulate(*args: str, stdin: str | None = None) -> list[dict]:
    done = sgtm("emulate", "-c", str(EXAMPLE), "--now", NOW, *args, stdin=stdin)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_validate_ok():
    done = sgtm("validate", str(EXAMPLE))
    assert done.returncode == 0
    assert done.stdout.startswith(f"ok: {EXAMPLE}: container 'example'")


def test_validate_prints_every_error(tmp_path):
    bad = tmp_path / "shop.yaml"
    bad.write_text(
        "version: 1\n"
        "triggers:\n"
        "  t: {var: nope, equals: x}\n"
        "tags:\n"
        "  - name: a\n"
        "    type: nosuch\n"
        "  - name: b\n"
        "    type: http_request\n"
        "    triggers: [missing]\n"
        "    settings: {url: 'https://x.example', colour: red}\n"
    )
    done = sgtm("validate", str(bad))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 4
    assert lines[0] == f"{bad}:3:12: triggers.t.var: unknown variable 'nope'"
    assert lines[1].startswith(f"{bad}:6:11: tags[0].type: unknown tag type 'nosuch' (known: ")
    assert "http_request" in lines[1]
    assert lines[2] == f"{bad}:9:16: tags[1].triggers[0]: unknown trigger 'missing'"
    assert lines[3] == f"{bad}:10:42: tags[1].settings.colour: unknown key"


def test_emulate_single_request_matches_design_format():
    (out,) = emulate("--url", PURCHASE, "--header", "User-Agent: pytest/1", "--ip", "203.0.113.9")
    assert set(out) == {"client", "response", "events", "error"}
    assert out["client"] == "ga4" and out["error"] is None
    assert out["response"] == {"status": 200, "headers": {"vary": "Origin"}, "body": ""}
    (event,) = out["events"]
    assert set(event) == {"data", "tags"}
    data = event["data"]
    assert data["event_name"] == "purchase"
    assert data["ip_override"] == "203.0.113.0"  # example.yaml anonymizes
    assert data["items"] == [
        {"item_id": "SKU-1", "item_name": "Running Sock", "price": 9.9, "quantity": 2}
    ]
    crm, log_all, *vendors = event["tags"]
    assert set(crm) == {"name", "type", "fired", "reason", "requests"}
    assert crm["fired"] is True and crm["reason"] is None
    (request,) = crm["requests"]
    assert set(request) == {"method", "url", "headers", "body"}
    assert request["body"] == {
        "event": "purchase",
        "email": None,
        "value": 59.8,
        "currency": "EUR",
        "channel": "web",
        "order_id": "T-1001",
    }
    assert log_all["fired"] is True
    # The vendor tags build their real requests (dry_run: logged, never sent).
    assert [(t["name"], t["fired"]) for t in vendors] == [
        ("meta", True),
        ("ga4", True),
        ("ga4_server", False),
    ]
    (meta,) = vendors[0]["requests"]
    assert meta["url"].startswith("https://graph.facebook.com/")
    assert meta["body"]["data"][0]["event_name"] == "Purchase"
    assert meta["body"]["data"][0]["custom_data"]["value"] == 59.8
    # gtag's hit goes back to Google in its own protocol; the Measurement Protocol tag is for
    # events gtag never saw.
    (ga4,) = vendors[1]["requests"]
    assert ga4["url"].startswith("https://region1.google-analytics.com/g/collect?v=2&tid=G-")
    assert "epn.value=59.8" in ga4["body"] and "&_uip=203.0.113.0" in ga4["url"]
    assert vendors[2]["reason"] == "trigger"


def test_emulate_requests_file_and_reasons(tmp_path):
    lines = [
        {
            "url": PURCHASE.replace("en=purchase", "en=page_view").replace(
                "%2Fcheckout%2Fdone", "%2Fhome"
            )
        },
        {"url": PURCHASE.replace("www.shop.example", "x.internal")},
        {"url": PURCHASE.replace("gcs=G111", "gcs=G100&gcd=13q3q3q2q5l1")},
        {"url": "/nothing-here"},
        {"method": "POST", "url": "/g/collect?v=2&tid=G-1", "body": "en=a\nen=b"},
    ]
    file = tmp_path / "requests.ndjson"
    file.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    out = emulate("--requests", str(file))
    assert len(out) == 5
    assert out[0]["events"][0]["tags"][0]["reason"] == "trigger"
    assert out[1]["events"][0]["tags"][0]["reason"] == "blocked"
    assert out[2]["events"][0]["tags"][0]["reason"] == "consent:ad_user_data"
    assert out[3] == {
        "client": None,
        "response": {
            "status": 404,
            "headers": {"vary": "Origin"},
            "body": "no client claimed this request\n",
        },
        "events": [],
        "error": None,
    }
    assert [e["data"]["event_name"] for e in out[4]["events"]] == ["a", "b"]


def test_emulate_events_stdin():
    events = "\n".join(
        json.dumps(e)
        for e in (
            {"event_name": "sign_up", "page_location": "https://www.shop.example/welcome"},
            {"event_name": "page_view"},
        )
    )
    first, second = emulate("--events", "-", stdin=events)
    assert first["client"] is None and first["response"] is None
    assert first["events"][0]["tags"][0]["fired"] is True
    assert second["events"][0]["tags"][0]["reason"] == "trigger"


def test_emulate_is_deterministic():
    assert emulate("--url", PURCHASE) == emulate("--url", PURCHASE)


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ('{"url": "/g/collect"}\nnot json\n', "line 2: invalid JSON"),
        ('{"method": "GET"}\n', "line 1: Object missing required field `url`"),
        ('{"url": 5}\n', "line 1: Expected `str`, got `int`"),
    ],
)
def test_emulate_bad_input_names_the_line(stdin, message):
    done = sgtm("emulate", "-c", str(EXAMPLE), "--requests", "-", stdin=stdin)
    assert done.returncode == 2
    assert message in done.stderr


def test_emulate_redacts_secrets(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "version: 1\ntriggers: {all: {all: []}}\ntags:\n"
        "  - name: t\n    type: http_request\n    triggers: [all]\n"
        "    settings:\n"
        "      url: 'https://x.example/h?key=${API_TOKEN}'\n"
        "      headers: {Authorization: 'Bearer ${API_TOKEN}'}\n"
    )
    env = {"PATH": "", "API_TOKEN": "tok/with+chars"}
    done = sgtm("emulate", "-c", str(config), "--events", "-", stdin='{"event_name": "x"}', env=env)
    assert done.returncode == 0, done.stderr
    assert "tok/with+chars" not in done.stdout
    (request,) = json.loads(done.stdout)["events"][0]["tags"][0]["requests"]
    assert request["url"] == "https://x.example/h?key=${API_TOKEN}"
    assert request["headers"]["Authorization"] == "Bearer ${API_TOKEN}"


def test_schema_includes_plugin_settings():
    done = sgtm("schema")
    assert done.returncode == 0
    schema = json.loads(done.stdout)
    tag_variants = schema["properties"]["tags"]["items"]["oneOf"]
    http = next(v for v in tag_variants if v["properties"]["type"]["const"] == "http_request")
    settings = schema["$defs"][http["properties"]["settings"]["$ref"].rsplit("/", 1)[1]]
    assert {"url", "method", "hmac_secret", "body"} <= set(settings["properties"])
    assert "ga4" in [
        v["properties"]["type"]["const"] for v in schema["properties"]["clients"]["items"]["oneOf"]
    ]
    variables = schema["properties"]["variables"]["additionalProperties"]["oneOf"]
    assert {v["properties"]["type"]["const"] for v in variables} >= {
        "lookup",
        "regex_table",
        "cookie",
    }


def test_schema_accepts_example_config():
    import jsonschema
    import yaml

    schema = json.loads(sgtm("schema").stdout)
    jsonschema.validate(yaml.safe_load(EXAMPLE.read_text()), schema)


def test_plugins_lists_types():
    done = sgtm("plugins")
    assert done.returncode == 0
    assert done.stdout.startswith(f"sgtm {__version__}, plugin contract {CONTRACT_VERSION}\n")
    assert "ga4 0.1.0\n  clients: ga4\n" in done.stdout
    assert "http_request 0.1.0\n  tags: http_request\n" in done.stdout


@pytest.mark.parametrize("store", ["redis", "sqlite"])
def test_serve_refuses_to_start_without_its_store(tmp_path, store):
    from tests.servers import free_port

    if store == "redis":
        delivery = f"delivery: {{store: redis, url: 'redis://:s3cret@127.0.0.1:{free_port()}/0'}}\n"
    else:
        (tmp_path / "not-a-dir").write_text("a file where the data directory should be")
        delivery = f"delivery: {{store: sqlite, path: '{tmp_path / 'not-a-dir'}'}}\n"
    config = tmp_path / "shop.yaml"
    config.write_text("version: 1\n" + delivery + "clients: [{name: ga4, type: ga4}]\n")
    done = sgtm("serve", "-c", str(config), "--port", str(free_port()))
    assert done.returncode == 1
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("sgtm serve:")]
    assert "delivery store unavailable" in line
    assert "s3cret" not in done.stderr
    assert "Traceback" not in done.stderr
