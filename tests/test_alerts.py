"""The `alerts:` section: its checks (hostile values included), the rules as a pure function of
the counters, and a real server posting to a fake webhook on loopback."""

from __future__ import annotations

import json
import logging
import socket
import textwrap
import time
from typing import Any

import httpx
import pytest

from sgtm.alerts import Alerter, AlertRules, Message, Threshold
from sgtm.config import load_text
from sgtm.redact import Redactor
from sgtm.yamlsource import ConfigErrors
from tests.installed import registry
from tests.servers import FakeVendor, Reply, SgtmServer, free_port, wait_until

HOOK = "https://hooks.slack.test/services/T0/B0/s3cr3t-webhook-path"
BASE = """\
version: 1
name: shop
alerts:
"""


def load(section: str, env: dict[str, str] | None = None):
    text = BASE + textwrap.indent(textwrap.dedent(section), "  ")
    return load_text(text, "shop.yaml", registry(), environ={"HOOK": HOOK, **(env or {})})


def errors(section: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        load(section, env)
    return [str(e) for e in caught.value.errors]


def test_a_section_loads_with_its_defaults_and_the_url_is_a_secret():
    spec = load('webhook: {url: "${HOOK}"}\n')
    rules = spec.alerts
    assert rules is not None and rules.container == "shop" and rules.url == HOOK
    assert rules.url_name == "HOOK" and rules.breaker and rules.timeout == 5.0
    assert rules.dead_letters == Threshold(count=1, window=300.0)
    assert rules.invalid == Threshold(count=20, window=300.0, ratio=0.1)
    assert (rules.repeat, rules.max_messages) == (3600.0, 20)
    assert spec.secrets[HOOK] == "HOOK"
    assert rules.redact(f"posting to {HOOK}") == "posting to ${HOOK}"


def test_rules_can_be_tuned_and_turned_off():
    rules = load(
        """\
        webhook: {url: "${HOOK}", timeout: 2s}
        breaker: false
        dead_letters: {count: 10, window: 15m}
        invalid: false
        repeat: 30m
        max_messages: 5
        """
    ).alerts
    assert rules is not None and not rules.breaker and rules.invalid is None
    assert rules.dead_letters == Threshold(count=10, window=900.0)
    assert (rules.timeout, rules.repeat, rules.max_messages) == (2.0, 1800.0, 5)
    assert load('webhook: {url: "${HOOK}"}\ninvalid: true\n').alerts.invalid.ratio == 0.1


@pytest.mark.parametrize(
    ("section", "env", "expected"),
    [
        (
            f'webhook: {{url: "{HOOK}"}}\n',
            {},
            "shop.yaml:4:18: alerts.webhook.url: take the webhook URL from the environment "
            "(`${NAME}`): a secret",
        ),
        (
            'webhook: {url: "${PLAIN}"}\n',
            {"PLAIN": "http://hooks.example.com/in"},
            "shop.yaml:4:18: alerts.webhook.url: must be https:// (http:// only to this "
            "machine's loopback)",
        ),
        (
            'webhook: {url: "${PLAIN}"}\n',
            {"PLAIN": "ftp://hooks.example.com/in"},
            "shop.yaml:4:18: alerts.webhook.url: must be https:// (http:// only to this "
            "machine's loopback)",
        ),
        (
            'webhook: {url: "${PLAIN}"}\n',
            {"PLAIN": "https://hooks.example.com/{{secret.META_TOKEN}}"},
            "shop.yaml:4:18: alerts.webhook.url: templates are not rendered here: give the URL "
            "through `${NAME}`",
        ),
        (
            'webhook: {url: "${PLAIN}"}\n',
            {"PLAIN": "https://hooks.example.com/a\r\nX-Injected: 1"},
            "shop.yaml:4:18: alerts.webhook.url: must not contain spaces or control characters",
        ),
        (
            'webhook: {url: "${PLAIN}"}\n',
            {"PLAIN": "https://hooks.example.com/" + "a" * 5000},
            "shop.yaml:4:18: alerts.webhook.url: longer than 2048 characters",
        ),
        (
            'webhook: {url: "${PLAIN}"}\n',
            {"PLAIN": "https://hooks.example.com:99999999/in"},
            "shop.yaml:4:18: alerts.webhook.url: not a URL",
        ),
        (
            'webhook: {url: "${PLAIN}"}\n',
            {"PLAIN": "https:///no-host"},
            "shop.yaml:4:18: alerts.webhook.url: expected https://host/path",
        ),
        (
            'webhook: {url: "${HOOK}"}\ndead_letters: {count: 1000000000000}\n',
            {},
            "shop.yaml:5:25: alerts.dead_letters.count: Expected `int` <= 1000000000",
        ),
        (
            'webhook: {url: "${HOOK}"}\ninvalid: {ratio: 2}\n',
            {},
            "shop.yaml:5:20: alerts.invalid.ratio: Expected `float` <= 1.0",
        ),
        (
            'webhook: {url: "${HOOK}"}\ninvalid: {window: 10000d}\n',
            {},
            "shop.yaml:5:21: alerts.invalid.window: must be between 10s and 1d",
        ),
        (
            'webhook: {url: "${HOOK}"}\ndead_letters: {window: soon}\n',
            {},
            "shop.yaml:5:26: alerts.dead_letters.window: expected a duration like 500ms, 30s, "
            "15m or 6h, got 'soon'",
        ),
        (
            'webhook: {url: "${HOOK}", timeout: 1h}\n',
            {},
            "shop.yaml:4:38: alerts.webhook.timeout: must be over 0 and at most 30s",
        ),
        (
            'webhook: {url: "${HOOK}"}\nmax_messages: 100000\n',
            {},
            "shop.yaml:5:17: alerts.max_messages: Expected `int` <= 1000",
        ),
        (
            'webhook: {url: "${HOOK}"}\nrepeat: 1s\n',
            {},
            "shop.yaml:5:11: alerts.repeat: must be between 1m and 7d",
        ),
        (
            'webhook: {url: "${HOOK}"}\nchannel: "#ops"\n',
            {},
            "shop.yaml:5:3: alerts.channel: unknown key",
        ),
        ("breaker: true\n", {}, "shop.yaml:4:3: alerts.webhook: required"),
        ("webhook: [1, 2]\n", {}, "shop.yaml:4:12: alerts.webhook: Expected `object`, got `array`"),
    ],
)
def test_bad_sections_are_positioned_errors(section, env, expected):
    found = errors(section, env)
    assert found == [expected]
    for value in env.values():  # the URL is a secret: never in an error
        assert value[:30] not in found[0]


def test_a_url_written_in_the_file_is_masked_in_other_errors_too():
    found = errors(f'webhook: {{url: "{HOOK}", timeout: nope}}\n')
    assert len(found) == 2 and not any("s3cr3t" in line for line in found)


# -- the rules ---------------------------------------------------------------------------------


class Counters:
    """What metrics.samples would read, set by the test."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def set(self, name: str, value: float, **labels: str) -> None:
        self.values[(name, tuple(sorted(labels.items())))] = value

    def __call__(self, names: Any) -> list[tuple[str, dict[str, str], float]]:
        wanted = set(names)
        return [(n, dict(labels), v) for (n, labels), v in self.values.items() if n in wanted]


def rules(**changes: Any) -> AlertRules:
    fields: dict[str, Any] = {
        "container": "shop",
        "url": "http://127.0.0.1:9/hook",
        "url_name": "HOOK",
        "timeout": 2.0,
        "breaker": True,
        "dead_letters": Threshold(count=3, window=300.0),
        "invalid": Threshold(count=10, window=300.0, ratio=0.5),
        "repeat": 3600.0,
        "max_messages": 20,
    }
    fields.update(changes)
    return AlertRules(**fields)


def alerter(counters: Counters, **changes: Any) -> Alerter:
    return Alerter([rules(**changes)], counters, clock=lambda: 1000.0)


def texts(messages: list[Message]) -> list[str]:
    return [m.text for m in messages]


LANE = "shop/meta/https://graph.facebook.com"


def test_a_breaker_alerts_once_while_open_and_once_when_it_closes():
    counters = Counters()
    watch = alerter(counters)
    counters.set("sgtm_delivery_breaker_state", 1, container="shop", tag="meta", lane=LANE)
    (opened,) = watch.check(1000)
    assert opened.key == ("open", LANE) and "circuit breaker is open" in opened.text
    assert watch.check(1005) == [] and watch.check(2000) == []
    counters.set("sgtm_delivery_breaker_state", 0, container="shop", tag="meta", lane=LANE)
    (closed,) = watch.check(2005)
    assert closed.key == ("closed", LANE) and "recovered" in closed.text
    assert watch.check(2010) == []
    # Flapping within `repeat`: neither the opening nor a recovery is sent again.
    counters.set("sgtm_delivery_breaker_state", 1, container="shop", tag="meta", lane=LANE)
    assert watch.check(2020) == []
    counters.set("sgtm_delivery_breaker_state", 0, container="shop", tag="meta", lane=LANE)
    assert watch.check(2030) == []
    # Open again past `repeat`: said again, and so is its recovery.
    counters.set("sgtm_delivery_breaker_state", 1, container="shop", tag="meta", lane=LANE)
    assert [m.key for m in watch.check(5000)] == [("open", LANE)]
    assert watch.check(5000 + 3500) == []
    assert [m.key for m in watch.check(5000 + 3700)] == [("open", LANE)]  # still open: reminder
    counters.set("sgtm_delivery_breaker_state", 0, container="shop", tag="meta", lane=LANE)
    assert [m.key for m in watch.check(9000)] == [("closed", LANE)]


def test_other_containers_and_turned_off_rules_are_not_watched():
    counters = Counters()
    counters.set("sgtm_delivery_breaker_state", 1, container="blog", tag="m", lane="blog/m/x")
    counters.set("sgtm_deliveries_total", 50, container="blog", tag="m", outcome="dead")
    assert alerter(counters).check(1000) == []
    counters.set("sgtm_delivery_breaker_state", 1, container="shop", tag="m", lane="shop/m/x")
    counters.set("sgtm_deliveries_total", 50, container="shop", tag="m", outcome="dead")
    assert alerter(counters, breaker=False, dead_letters=None).check(1000) == []


def test_dead_letters_alert_when_they_grow_by_count_within_the_window():
    counters = Counters()
    watch = alerter(counters)
    dead = {"container": "shop", "tag": "meta", "outcome": "dead"}
    counters.set("sgtm_deliveries_total", 2, **dead)
    assert watch.check(1000) == []
    counters.set("sgtm_deliveries_total", 2, **dead)
    assert watch.check(1400) == []
    counters.set("sgtm_deliveries_total", 4, **dead)  # 2 more within the last 5 minutes
    assert watch.check(1500) == []
    counters.set("sgtm_deliveries_total", 5, **dead)
    (message,) = watch.check(1600)
    assert message.text.startswith("sgtm shop: 3 deliveries of tag meta were dead-lettered in")
    assert "last 5m" in message.text and "sgtm dlq" in message.text
    counters.set("sgtm_deliveries_total", 500, **dead)
    assert watch.check(1700) == []  # the same alert within `repeat`


def test_a_counter_reset_is_not_a_negative_increase():
    counters = Counters()
    watch = alerter(counters)
    dead = {"container": "shop", "tag": "meta", "outcome": "dead"}
    counters.set("sgtm_deliveries_total", 2, **dead)
    assert watch.check(1000) == []
    counters.set("sgtm_deliveries_total", 0, **dead)
    assert watch.check(1010) == []
    counters.set("sgtm_deliveries_total", 3, **dead)
    assert len(watch.check(1020)) == 1


def test_invalid_share_alerts_past_the_ratio_with_enough_events():
    counters = Counters()
    watch = alerter(counters)
    tags = {"container": "shop", "tag": "meta"}
    counters.set("sgtm_tags_total", 4, outcome="invalid", **tags)
    counters.set("sgtm_tags_total", 1, outcome="fired", **tags)
    counters.set("sgtm_tags_total", 900, outcome="trigger", **tags)  # not the tag's events
    assert watch.check(1000) == []  # 5 events: fewer than min_events
    counters.set("sgtm_tags_total", 8, outcome="invalid", **tags)
    counters.set("sgtm_tags_total", 10, outcome="fired", **tags)
    assert watch.check(1010) == []  # 8 of 18: under half
    counters.set("sgtm_tags_total", 20, outcome="invalid", **tags)
    (message,) = watch.check(1020)
    assert message.text.startswith("sgtm shop: tag meta refused 20 of 30 events (67%) in")


def test_a_storm_sends_at_most_max_messages_an_hour_and_says_what_it_held_back():
    counters = Counters()
    watch = alerter(counters, max_messages=3)
    for n in range(50):
        lane = f"shop/t{n}/https://v{n}.test"
        counters.set("sgtm_delivery_breaker_state", 1, container="shop", tag=f"t{n}", lane=lane)
    assert len(watch.check(1000)) == 3
    assert watch.check(1010) == []
    later = watch.check(1000 + 3601)
    assert len(later) == 3  # three of the fifty lanes still open
    assert "(47 more alerts were held back: at most 3 messages an hour.)" in later[-1].text


@pytest.mark.parametrize("reply", [500, Reply(200, delay=3.0), None])
async def test_a_failing_webhook_is_logged_and_never_raises(reply, caplog):
    caplog.set_level(logging.INFO, logger="sgtm.alerts")
    secret = "s3cr3t-path"
    with FakeVendor(default_status=reply if isinstance(reply, int) else 200) as webhook:
        if isinstance(reply, Reply):
            webhook.responses.append(reply)
        url = (
            f"{webhook.url}/{secret}" if reply is not None else f"http://127.0.0.1:{free_port()}/x"
        )
        watch = Alerter([rules(url=url, timeout=0.5, redact=Redactor({url: "HOOK"}))], Counters())
        await watch.transport.start()
        try:
            message = Message(watch.rules[0], ("open", LANE), f"lane down, posted to {url}")
            assert await watch.send(message) is False
        finally:
            await watch.transport.close()
    (line,) = [r for r in caplog.records if r.getMessage().startswith("alert not sent")]
    assert line.__dict__["webhook"] == "${HOOK}"
    assert secret not in caplog.text and "127.0.0.1" not in caplog.text
    if reply == 500:
        assert json.loads(webhook.received[0].body) == {"text": "lane down, posted to ${HOOK}"}


# -- a real server -----------------------------------------------------------------------------


def container(tmp_path, vendor_url: str, extra: str = ""):
    path = tmp_path / "shop.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            name: shop
            clients: [{{name: ga4, type: ga4}}]
            triggers: {{everything: {{all: []}}}}
            alerts:
              webhook: {{url: "${{SGTM_TEST_WEBHOOK}}", timeout: 2s}}
              dead_letters: false
            tags:
              - name: hook
                type: http_request
                triggers: [everything]
                settings: {{url: "{vendor_url}/hook"}}
            """
        )
        + extra
    )
    return path


FAST = {
    "SGTM_ALERTS_INTERVAL": "50ms",
    "SGTM_DELIVERY_BREAKER_FAILURES": "2",
    "SGTM_DELIVERY_BACKOFF_BASE": "50ms",
    "SGTM_DELIVERY_BACKOFF_CAP": "100ms",
    "SGTM_DELIVERY_BREAKER_OPEN_MAX": "200ms",
}
HIT = "/g/collect?v=2&tid=G-X&cid=1.2&en=purchase"


def posted(webhook: FakeVendor) -> list[str]:
    return [json.loads(r.body)["text"] for r in list(webhook.received)]


@pytest.mark.e2e
def test_a_vendor_outage_posts_one_alert_and_one_recovery(tmp_path):
    with FakeVendor(default_status=503) as vendor, FakeVendor() as webhook:
        env = {**FAST, "SGTM_TEST_WEBHOOK": webhook.url + "/services/s3cr3t"}
        with SgtmServer(container(tmp_path, vendor.url), env) as server:
            for _ in range(20):
                assert httpx.get(server.url + HIT).status_code == 200
            wait_until(lambda: posted(webhook), "the alert")
            vendor.default_status = 200
            wait_until(lambda: len(posted(webhook)) >= 2, "the recovery", 20)
            time.sleep(0.3)  # a few more checks: nothing else is sent
            texts_sent = posted(webhook)
            logs = server.logs()
    assert len(texts_sent) == 2, texts_sent
    lane = f"shop/hook/{vendor.url}"
    assert texts_sent[0].startswith(f"sgtm shop: lane {lane} is failing")
    assert texts_sent[1].startswith(f"sgtm shop: lane {lane} recovered")
    assert webhook.received[0].path == "/services/s3cr3t"
    assert webhook.received[0].headers["content-type"] == "application/json"
    assert "s3cr3t" not in logs and '"alert sent"' in logs


@pytest.mark.e2e
def test_a_hanging_webhook_never_holds_a_hit(tmp_path):
    # A webhook that takes the alert and never answers: a listening socket the test reads from.
    with socket.create_server(("127.0.0.1", 0)) as listener, FakeVendor(503) as vendor:
        hook = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
        path = container(tmp_path, vendor.url)
        path.write_text(path.read_text().replace("timeout: 2s", "timeout: 30s"))
        with SgtmServer(path, {**FAST, "SGTM_TEST_WEBHOOK": hook}) as server:
            for _ in range(5):
                httpx.get(server.url + HIT)
            listener.settimeout(20)
            connection, _ = listener.accept()
            with connection:
                connection.settimeout(20)
                assert connection.recv(65536).startswith(b"POST /hook HTTP/1.1")
                # The alert is posted and unanswered: hits are answered all the same.
                for _ in range(20):
                    assert httpx.get(server.url + HIT, timeout=20).status_code == 200
                assert '"alert sent"' not in server.logs()


@pytest.mark.e2e
def test_an_alerts_section_added_by_a_reload_takes_effect(tmp_path):
    with FakeVendor(default_status=503) as vendor, FakeVendor() as webhook:
        path = container(tmp_path, vendor.url)
        with_alerts = path.read_text()
        start, end = with_alerts.index("alerts:"), with_alerts.index("tags:")
        path.write_text(with_alerts[:start] + with_alerts[end:])  # no alerts yet
        env = {**FAST, "SGTM_TEST_WEBHOOK": webhook.url + "/hook"}
        with SgtmServer(path, env) as server:
            path.write_text(with_alerts)
            assert server.reload()
            for _ in range(5):
                assert httpx.get(server.url + HIT).status_code == 200
            wait_until(lambda: posted(webhook), "the alert of the reloaded section")
    assert posted(webhook)[0].startswith("sgtm shop: lane shop/hook/")
