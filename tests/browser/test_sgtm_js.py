"""sgtm.js in headless Chromium, cross-origin, against a real `sgtm serve` and a fake vendor:
every event arrives exactly once with a stable event_id, whatever the page does."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import BrowserContext, Page

from tests.browser.conftest import Site

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
QUEUE = "JSON.parse(localStorage.getItem('sgtm:queue:' + sgtm.endpoint) || '[]')"


def queued(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate(QUEUE)
    return found


def test_pushes_before_and_after_the_script_loads_arrive_once(site: Site, page: Page) -> None:
    before = """
      window.pushCalls = 0;
      const prior = dataLayer.push;  // another library wrapped push before sgtm.js loaded
      dataLayer.push = function (...entries) {
        window.pushCalls += entries.length;
        return prior.apply(this, entries);
      };
      dataLayer.push({event: 'gtm.js', 'gtm.start': Date.now()});
      dataLayer.push({event: 't1_pre_a', plan: 'gold', 'gtm.uniqueEventId': 3});
      dataLayer.push({event: 't1_pre_b', event_id: 'fixed-id-1'});
      dataLayer.push({user_type: 'member'});
    """
    after = """
      window.pushResult = dataLayer.push({event: 't1_post_a'}, {event: 't1_post_b'});
    """
    url = site.pages.origin + site.pages.add("/t1", site.page_html(before, after))
    page.goto(url)
    site.wait_for("t1_pre_a", "t1_pre_b", "t1_post_a", "t1_post_b")
    site.settle()
    assert site.names("t1_") == {"t1_pre_a": 1, "t1_pre_b": 1, "t1_post_a": 1, "t1_post_b": 1}
    assert site.names("gtm.") == {}

    # The page's dataLayer behaves as before: every entry kept, push returns the length and
    # goes through the earlier wrapper.
    state = page.evaluate(
        "({length: dataLayer.length, result: window.pushResult, calls: window.pushCalls,"
        " ids: Object.fromEntries(dataLayer.filter(e => e.event).map(e => [e.event, e.event_id])),"
        " screen: screen.width + 'x' + screen.height, ua: navigator.userAgent})"
    )
    assert (state["length"], state["result"], state["calls"]) == (6, 6, 6)

    events = site.by_name("t1_")
    ids = {name: event["event_id"] for name, event in events.items()}
    assert ids["t1_pre_b"] == "fixed-id-1"
    generated = [ids[n] for n in ("t1_pre_a", "t1_post_a", "t1_post_b")]
    assert all(UUID4.fullmatch(i) for i in generated) and len(set(generated)) == 3
    # the id went into the pushed object too, for the page's own pixel to send
    assert {n: state["ids"][n] for n in ids} == ids

    first = events["t1_pre_a"]
    assert first["plan"] == "gold" and not any(k.startswith("gtm.") for k in first)
    assert first["page_location"] == url
    assert first["page_title"] == "Shop page"
    assert first["language"] == "en-us"
    assert first["screen_resolution"] == state["screen"]
    assert first["user_agent"] == state["ua"]
    assert "page_referrer" not in first and "_dcid_temp" not in first
    # one page view: the page's temporary id is the client id of all its events
    assert len({e["client_id"] for e in events.values()}) == 1

    # One request per task (pushes made before load, then the two pushed together), each a
    # text/plain beacon: no CORS preflight was needed.
    sent = [r for r in site.requests_seen if r["url"] == f"{site.sgtm.url}/data"]
    assert [(r["method"], r["headers"].get("content-type")) for r in sent] == [
        ("POST", "text/plain;charset=UTF-8")
    ] * 2
    assert "OPTIONS" not in site.logged_methods("/data")


def test_async_script_tag_forwards_each_push_once(site: Site, page: Page) -> None:
    html = f"""<!doctype html><html><head><title>Async</title>
      <script>window.dataLayer = window.dataLayer || []; dataLayer.push({{event: 't2_a'}});</script>
      <script async src="{site.sgtm.url}/sgtm.js"></script>
      <script>dataLayer.push({{event: 't2_b'}});</script></head>
      <body><script>dataLayer.push({{event: 't2_c'}});</script></body></html>"""
    page.goto(site.pages.origin + site.pages.add("/t2", html))
    page.wait_for_function("window.sgtm && window.sgtm.version")
    page.evaluate("dataLayer.push({event: 't2_d'}, Object.freeze({event: 't2_frozen'}))")
    site.wait_for("t2_a", "t2_b", "t2_c", "t2_d", "t2_frozen")
    site.settle()
    assert site.names("t2_") == {"t2_a": 1, "t2_b": 1, "t2_c": 1, "t2_d": 1, "t2_frozen": 1}
    ids = {e["event_id"] for e in site.by_name("t2_").values()}
    assert len(ids) == 5 and all(UUID4.fullmatch(i) for i in ids)


def test_purchase_pushed_right_before_leaving_the_page_arrives(site: Site, page: Page) -> None:
    after = """
      document.getElementById('buy').addEventListener('click', (e) => {
        e.preventDefault();
        dataLayer.push({
          event: 't3_purchase',
          ecommerce: {
            transaction_id: 'T-3', value: 59.7, currency: 'BRL',
            items: [{item_id: 'SKU-1', price: 19.9, quantity: 3}],
          },
          user_data: {email_address: 'ana@example.com'},
        });
        location.href = '/t3-thanks';
      });
    """
    site.pages.add("/t3-thanks", "<!doctype html><title>Thanks</title><p>No tags here.</p>")
    page.goto(site.pages.origin + site.pages.add("/t3", site.page_html(after=after)))
    with page.expect_navigation():
        page.click("#buy")
    assert page.url.endswith("/t3-thanks")
    site.wait_for("t3_purchase")
    site.settle()
    assert site.names("t3_") == {"t3_purchase": 1}
    event = site.by_name("t3_")["t3_purchase"]
    assert (event["transaction_id"], event["value"], event["currency"]) == ("T-3", 59.7, "BRL")
    assert event["items"] == [{"item_id": "SKU-1", "price": 19.9, "quantity": 3}]
    assert event["user_data"] == {"email_address": "ana@example.com"}
    assert "ecommerce" not in event


def test_offline_events_wait_in_the_queue_and_go_once_back_online(
    site: Site, page: Page, context: BrowserContext
) -> None:
    page.goto(site.pages.origin + site.pages.add("/t4", site.page_html()))
    page.wait_for_function("window.sgtm && window.sgtm.version")
    context.set_offline(True)
    page.evaluate("dataLayer.push({event: 't4_a'}); dataLayer.push({event: 't4_b', value: 5})")
    page.wait_for_function(f"{QUEUE}.length === 2")
    waiting = queued(page)
    assert [(x["e"]["event"], x["n"]) for x in waiting] == [("t4_a", 0), ("t4_b", 0)]
    site.settle()  # the server is reachable from here: nothing of t4 reached it
    assert site.names("t4_") == {}

    context.set_offline(False)  # the page's `online` listener sends the queue
    site.wait_for("t4_a", "t4_b")
    page.wait_for_function(f"{QUEUE}.length === 0")
    site.settle()
    assert site.names("t4_") == {"t4_a": 1, "t4_b": 1}
    delivered = site.by_name("t4_")
    assert {n: e["event_id"] for n, e in delivered.items()} == {
        x["e"]["event"]: x["e"]["event_id"] for x in waiting
    }
    assert delivered["t4_b"]["value"] == 5


def test_queued_events_are_sent_by_the_next_page(
    site: Site, context: BrowserContext, page: Page
) -> None:
    url = site.pages.origin + site.pages.add("/t5", site.page_html())
    page.goto(url)
    page.wait_for_function("window.sgtm && window.sgtm.version")
    context.set_offline(True)
    page.evaluate("dataLayer.push({event: 't5_a'})")
    page.wait_for_function(f"{QUEUE}.length === 1")
    (entry,) = queued(page)
    page.close()  # left while offline: no `online` event on this page
    context.set_offline(False)

    next_page = context.new_page()
    next_page.goto(url)
    site.wait_for("t5_a")
    next_page.wait_for_function(f"{QUEUE}.length === 0")
    site.settle()
    assert site.names("t5_") == {"t5_a": 1}
    assert site.by_name("t5_")["t5_a"]["event_id"] == entry["e"]["event_id"]
    assert site.by_name("t5_")["t5_a"]["page_location"] == url


def test_queue_keeps_50_entries_and_3_attempts(site: Site, page: Page) -> None:
    before = "navigator.sendBeacon = undefined;"  # every send goes through fetch
    attrs = f'data-endpoint="{site.dead_endpoint}"'  # nothing listens there
    page.goto(site.pages.origin + site.pages.add("/t6", site.page_html(before, attrs=attrs)))
    page.evaluate("for (let i = 0; i < 55; i++) dataLayer.push({event: 't6_' + i});")
    page.wait_for_function(f"{QUEUE}.length === 50 && {QUEUE}.every(x => x.n === 1)")
    names = [x["e"]["event"] for x in queued(page)]
    assert names == [f"t6_{i}" for i in range(5, 55)]  # the oldest five were dropped
    page.evaluate("sgtm.flush()")  # the second attempt
    assert [x["n"] for x in queued(page)] == [2] * 50
    page.evaluate("sgtm.flush()")  # the third and last
    assert queued(page) == []


def test_a_refused_request_is_not_retried(site: Site, page: Page) -> None:
    before = "navigator.sendBeacon = undefined;"
    attrs = f'data-endpoint="{site.sgtm.url}/not-a-client-path"'  # answered 404
    page.goto(site.pages.origin + site.pages.add("/t6b", site.page_html(before, attrs=attrs)))
    with page.expect_response(lambda r: r.url.endswith("/not-a-client-path")) as response:
        page.evaluate("dataLayer.push({event: 't6b_a'})")
    assert response.value.status == 404
    page.wait_for_function(f"{QUEUE}.length === 0")


def test_consent_commands_set_the_consent_state_of_later_events(site: Site, page: Page) -> None:
    after = """
      gtag('consent', 'default', {ad_storage: 'denied', analytics_storage: 'granted'});
      gtag('consent', 'default', {ad_storage: 'granted', region: ['US']});  // not for sure here
      dataLayer.push({event: 't7_a'});
      gtag('consent', 'update', {ad_storage: 'granted'});
      dataLayer.push({event: 't7_b'});
      gtag('consent', 'update', {ad_storage: 'denied'});
      dataLayer.push({event: 't7_c'});
      gtag('consent', 'default', {ad_storage: 'granted'});  // a default never beats an update
      dataLayer.push({event: 't7_d'});
    """
    page.goto(site.pages.origin + site.pages.add("/t7", site.page_html(after=after)))
    site.wait_for("t7_a", "t7_b", "t7_c", "t7_d")
    site.settle()  # t7_* were decided before the marker: the ads tag saw them all
    assert site.names("t7_") == {"t7_a": 1, "t7_b": 1, "t7_c": 1, "t7_d": 1}
    assert site.names("t7_", path="/ads") == {"t7_b": 1}
    states = {n: e["consent_state"] for n, e in site.by_name("t7_").items()}
    denied = {"ad_storage": False, "analytics_storage": True}
    assert states == {
        "t7_a": denied,
        "t7_b": {"ad_storage": True, "analytics_storage": True},
        "t7_c": denied,
        "t7_d": denied,
    }


def test_the_pages_user_id_goes_with_later_events(site: Site, page: Page) -> None:
    after = """
      dataLayer.push({event: 'uid_a'});
      gtag('config', 'G-TEST', {user_id: 'u-5'});
      dataLayer.push({event: 'uid_b'});
      dataLayer.push({event: 'uid_c', user_id: 'own'});  // an event's own wins, and is kept
      dataLayer.push({event: 'uid_d'});
      gtag('set', 'user_id', 42);
      dataLayer.push({event: 'uid_e'});
      dataLayer.push({user_id: null});  // a logout forgets it
      dataLayer.push({event: 'uid_f'});
    """
    page.goto(site.pages.origin + site.pages.add("/uid", site.page_html(after=after)))
    site.wait_for("uid_a", "uid_b", "uid_c", "uid_d", "uid_e", "uid_f")
    user_ids = {n: e.get("user_id") for n, e in site.by_name("uid_").items()}
    assert user_ids == {
        "uid_a": None,
        "uid_b": "u-5",
        "uid_c": "own",
        "uid_d": "own",
        "uid_e": "42",
        "uid_f": None,
    }


def test_allow_list_and_uuid_fallback_from_an_origin_sgtm_does_not_list(
    site: Site, page: Page
) -> None:
    # 127.0.0.1:PORT is not in the container's origins: the server answers no preflight and
    # sends no CORS headers, yet text/plain beacons need neither.
    before = "crypto.randomUUID = undefined;"
    attrs = 'data-events="t8_keep, t8_also,gtm.t8"'
    html = site.page_html(before, attrs=attrs)
    page.goto(site.pages.unlisted_origin + site.pages.add("/t8", html))
    page.evaluate(
        "['t8_drop', 't8_keep', 'gtm.t8', 't8_also', 't8_drop2']"
        ".forEach(name => dataLayer.push({event: name}))"
    )
    site.wait_for("t8_keep", "t8_also", "gtm.t8")
    site.settle()
    assert site.names("t8_") == {"t8_keep": 1, "t8_also": 1}
    assert site.names("gtm.t8") == {"gtm.t8": 1}
    ids = [e["event_id"] for e in site.by_name("t8_").values()]
    assert all(UUID4.fullmatch(i) for i in ids) and len(set(ids)) == 2
