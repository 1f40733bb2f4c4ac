"""The admin UI in headless Chromium: sign in with the token, start a preview session, put this
browser in it ("Preview this site"), load a shop page on another origin that sends a dataLayer
event through sgtm.js and a GA4 hit, and watch the events, their tags and the vendor's answers
appear. Hostile event data must stay text. The screenshots in docs/img/ come from this test
(SGTM_SCREENSHOTS=1 writes them)."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import TIMEOUT, PageServer
from tests.servers import ROOT, FakeVendor, SgtmServer, wait_until

pytestmark = pytest.mark.e2e

TOKEN = "browser-admin-token-42"
SHOTS = ROOT / "docs" / "img"
HOSTILE = "<img src=x onerror=window.pwned=1><script>window.pwned=2</script>"


@pytest.fixture(scope="module")
def shop(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SgtmServer, FakeVendor, PageServer]]:
    answers = {"/collect": b'{"events_received": 1}', "/g/collect": b""}
    with (
        FakeVendor(reply=lambda got, status: answers.get(got.path, b"")) as vendor,
        PageServer() as pages,
    ):
        config = tmp_path_factory.mktemp("admin-browser") / "shop.yaml"
        config.write_text(
            textwrap.dedent(
                f"""\
                version: 1
                origins: [{pages.unlisted_origin}]
                clients:
                  - {{name: web, type: datalayer}}
                  - {{name: ga4, type: ga4}}
                variables:
                  order: {{type: event_data, key: transaction_id}}
                triggers:
                  everything: {{all: []}}
                  purchase: {{event_name: purchase}}
                tags:
                  - name: collector
                    type: http_request
                    triggers: [everything]
                    settings: {{url: "{vendor.url}/collect"}}
                  - name: orders
                    type: http_request
                    triggers: [purchase]
                    settings: {{url: "{vendor.url}/orders", body: {{order: "{{{{order}}}}"}}}}
                """
            )
        )
        env = {"SGTM_ADMIN_TOKEN": TOKEN, "SGTM_DATA_DIR": str(config.parent / "data")}
        with SgtmServer(config, env) as sgtm:
            yield sgtm, vendor, pages


def shop_page(sgtm_url: str) -> str:
    """A shop page on 127.0.0.1:<other port>: the same site as sgtm (127.0.0.1), another origin,
    as www.shop.example is to sgtm.shop.example. sgtm.js sends the dataLayer event; a GA4 hit
    goes as gtag.js sends it (fetch, credentials included)."""
    hit = (
        f"{sgtm_url}/g/collect?v=2&tid=G-ADMIN01&cid=555.666&en=page_view"
        "&dl=" + "http%3A%2F%2Fshop.example%2Fcheckout&dt=Checkout"
    )
    note = json.dumps(HOSTILE).replace("</", "<\\/")  # a JS string that cannot end the script
    return textwrap.dedent(
        f"""\
        <!doctype html>
        <html><head><title>Shop</title>
        <script>window.dataLayer = window.dataLayer || [];</script>
        <script src="{sgtm_url}/sgtm.js"></script>
        </head><body>
        <script>
          dataLayer.push({{event: "purchase", event_id: "E-browser-1",
            note: {note},
            ecommerce: {{transaction_id: "T-browser-1", currency: "BRL", value: 42.5}}}});
          const options = {{method: "POST", credentials: "include", keepalive: true}};
          fetch("{hit}", {{...options, mode: "no-cors"}}).then(() => {{ window.hitSent = true; }});
        </script>
        </body></html>
        """
    )


def shoot(page: Page, name: str) -> None:
    if os.environ.get("SGTM_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / name), full_page=True)


def test_preview_session_in_a_real_browser(browser: Browser, shop) -> None:
    sgtm, vendor, pages = shop
    # Something for the home page to show: a lane with work done and a dead letter.
    vendor.responses.append(400)
    body = json.dumps({"event": "sign_up", "event_id": "E-refused"})
    assert httpx.post(f"{sgtm.url}/data", content=body).status_code == 200
    bearer = {"authorization": f"Bearer {TOKEN}"}
    wait_until(
        lambda: httpx.get(f"{sgtm.url}/_sgtm/api/dlq", headers=bearer).json()["dead_letters"],
        "a dead letter",
    )
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT * 1000)
    try:
        admin = context.new_page()
        admin.goto(f"{sgtm.url}/_sgtm/")
        admin.fill('input[name="token"]', "wrong")
        admin.click('button[type="submit"]')
        expect(admin.locator(".message")).to_have_text("Wrong token.")
        admin.fill('input[name="token"]', TOKEN)
        admin.click('button[type="submit"]')
        expect(admin.locator("#health table")).to_contain_text("shop/collector")
        expect(admin.locator("#dead-letters")).to_contain_text("vendor answered 400")
        expect(admin.locator("#health")).not_to_contain_text("null")
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["sgtm_admin"]["httpOnly"] and cookies["sgtm_admin"]["sameSite"] == "Strict"
        assert TOKEN not in cookies["sgtm_admin"]["value"]
        admin.fill('input[name="q"]', "E-refused")
        admin.click('text="Find deliveries"')
        expect(admin.locator("#search-result")).to_contain_text("dead")
        shoot(admin, "admin-home.png")

        admin.click("#start-preview")
        admin.wait_for_url(f"{sgtm.url}/_sgtm/preview/*")
        admin.click("#preview-site")
        admin.wait_for_url(f"{sgtm.url}/_sgtm/preview/*")
        assert "sgtm_preview" in {c["name"] for c in context.cookies()}

        shop_tab = context.new_page()
        shop_tab.goto(pages.unlisted_origin + pages.add("/shop", shop_page(sgtm.url)))
        shop_tab.wait_for_function("window.hitSent === true")

        traces = admin.locator("#traces")
        expect(traces).to_contain_text("purchase")
        expect(traces).to_contain_text("page_view")
        expect(traces).to_contain_text("client web")
        expect(traces).to_contain_text("client ga4")
        expect(traces).to_contain_text("orders (http_request) · fired")
        expect(traces).to_contain_text('"T-browser-1"')  # the variable's value
        expect(traces.locator(".delivery.state-delivered")).to_have_count(3)
        expect(traces).to_contain_text("delivered · HTTP 200")
        expect(traces).to_contain_text('{"events_received": 1}')  # the vendor's answer
        # The hostile value is shown as text, and never ran.
        expect(traces).to_contain_text(HOSTILE)
        assert admin.evaluate("window.pwned") is None
        assert admin.locator("#traces img").count() == 0
        shoot(admin, "admin-preview.png")
    finally:
        context.close()
