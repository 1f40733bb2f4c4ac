"""The admin UI's server side on a real server: the login form, the session cookie, CSRF,
security headers, the preview-this-site cookie, hostile cookies and forms. (Wrong tokens'
throttling, shared with the API and /metrics: tests/test_admin_throttle.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.servers import FakeVendor, SgtmServer
from tests.test_admin import TOKEN, write_container


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[SgtmServer]:
    tmp_path = tmp_path_factory.mktemp("admin-ui")
    with FakeVendor() as vendor:
        config = write_container(tmp_path, vendor.url)
        env = {"SGTM_ADMIN_TOKEN": TOKEN, "SGTM_DATA_DIR": str(tmp_path / "data")}
        with SgtmServer(config, env) as running:
            yield running


def login(server: SgtmServer) -> httpx.Client:
    client = httpx.Client(base_url=server.url)
    answer = client.post("/_sgtm/login", data={"token": TOKEN})
    assert answer.status_code == 303 and answer.headers["location"] == "/_sgtm/"
    return client


def csrf_of(page: str) -> str:
    found = re.search(r'<meta name="sgtm-csrf" content="([0-9a-f]{32})">', page)
    assert found, page
    return found.group(1)


def test_login_form_and_strict_headers(server):
    page = httpx.get(f"{server.url}/_sgtm/")
    assert page.status_code == 200
    assert '<input id="token" name="token"' in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "http://" not in page.text.replace(server.url, "") and "https://" not in page.text
    for name, kind in (("admin.js", "text/javascript"), ("admin.css", "text/css")):
        asset = httpx.get(f"{server.url}/_sgtm/static/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)
        assert "http://" not in asset.text and "https://" not in asset.text  # no CDN
    assert "innerHTML" not in httpx.get(f"{server.url}/_sgtm/static/admin.js").text
    for name in ("page.html", "../__init__.py", "..%2F__init__.py", "%00"):
        assert httpx.get(f"{server.url}/_sgtm/static/{name}").status_code == 404


def test_login_sets_an_httponly_strict_cookie_without_the_token(server):
    client = login(server)
    header = client.cookies.jar  # httpx keeps the cookie; check its attributes from the header
    answer = httpx.post(f"{server.url}/_sgtm/login", data={"token": TOKEN})
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("sgtm_admin=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/_sgtm" in cookie
    assert TOKEN not in cookie
    assert header
    home = client.get("/_sgtm/")
    assert '<main id="app">' in home.text
    csrf_of(home.text)
    # The cookie authenticates the API's reads.
    assert client.get("/_sgtm/api/health").status_code == 200


@pytest.mark.parametrize(
    "token",
    ["", "wrong", TOKEN + "x", TOKEN[:-1], " ", "{{secret.SGTM_ADMIN_TOKEN}}", "a" * 100000],
)
def test_wrong_tokens_are_refused(server, token):
    answer = httpx.post(f"{server.url}/_sgtm/login", data={"token": token})
    assert answer.status_code in (401, 413, 429)
    assert "set-cookie" not in answer.headers


@pytest.mark.parametrize(
    "cookie",
    [
        "sgtm_admin=" + TOKEN,
        "sgtm_admin=0.abc.def",
        "sgtm_admin=" + "a." * 5000,
        'sgtm_admin="\\x00"',
        "sgtm_admin=ffffffffffff.n.0000000000000000000000000000000000000000000000000000000000000000",
    ],
)
def test_forged_session_cookies_are_refused(server, cookie):
    assert (
        httpx.get(f"{server.url}/_sgtm/api/health", headers={"cookie": cookie}).status_code == 401
    )
    page = httpx.get(f"{server.url}/_sgtm/", headers={"cookie": cookie})
    assert 'name="token"' in page.text


def test_changes_with_the_cookie_need_the_csrf_token_and_this_origin(server):
    client = login(server)
    csrf = csrf_of(client.get("/_sgtm/").text)
    assert client.post("/_sgtm/api/preview").status_code == 403
    assert client.post("/_sgtm/api/preview", headers={"x-sgtm-csrf": "0" * 32}).status_code == 403
    evil = {"x-sgtm-csrf": csrf, "origin": "https://evil.example"}
    assert client.post("/_sgtm/api/preview", headers=evil).status_code == 403
    same = {"x-sgtm-csrf": csrf, "origin": server.url}
    assert client.post("/_sgtm/api/preview", headers=same).status_code == 201
    assert client.post("/_sgtm/api/preview", headers={"x-sgtm-csrf": csrf}).status_code == 201
    # Another login is another session, with its own CSRF token.
    other = login(server)
    assert csrf_of(other.get("/_sgtm/").text) != csrf


def test_preview_this_site_sets_the_preview_cookie_on_the_tagging_domain(server):
    client = login(server)
    csrf = csrf_of(client.get("/_sgtm/").text)
    id = client.post("/_sgtm/api/preview", headers={"x-sgtm-csrf": csrf}).json()["id"]
    page = client.get(f"/_sgtm/preview/{id}")
    assert f'<meta name="sgtm-preview" content="{id}">' in page.text
    assert client.post(f"/_sgtm/preview/{id}/site", data={}).status_code == 403
    assert client.post(f"/_sgtm/preview/{id}/site", data={"csrf": "x"}).status_code == 403
    answer = client.post(f"/_sgtm/preview/{id}/site", data={"csrf": csrf})
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"sgtm_preview={id};")
    assert "Path=/" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    stop = client.post(f"/_sgtm/preview/{id}/site", data={"csrf": csrf, "stop": "1"})
    assert (
        'sgtm_preview="";' in stop.headers["set-cookie"]
        or "Max-Age=0" in stop.headers["set-cookie"]
    )
    gone = client.post(f"/_sgtm/preview/{'a' * 32}/site", data={"csrf": csrf})
    assert gone.status_code == 404
    assert client.get("/_sgtm/preview/%3Cscript%3E").status_code == 404


def test_pages_escape_what_they_echo(server):
    client = login(server)
    page = client.get('/_sgtm/preview/"><script>alert(1)</script>')
    assert "<script>alert" not in page.text
    answer = httpx.post(f"{server.url}/_sgtm/login", data={"token": "<script>x</script>"})
    assert "<script>x" not in answer.text


def test_logout_needs_the_csrf_token(server):
    client = login(server)
    csrf = csrf_of(client.get("/_sgtm/").text)
    assert client.post("/_sgtm/logout", data={"csrf": "nope"}).status_code == 403
    out = client.post("/_sgtm/logout", data={"csrf": csrf})
    assert out.status_code == 303 and "sgtm_admin=" in out.headers["set-cookie"]


FORM = "application/x-www-form-urlencoded"
MANY_FIELDS = "a=1&b=2&c=3&d=4&e=5&token=x&csrf=y"


@pytest.mark.parametrize("path", ["/_sgtm/login", "/_sgtm/logout", "/_sgtm/preview/0/site"])
def test_forms_of_too_many_fields_are_refused_not_a_500(server, path):
    """parse_qs raises past max_num_fields: a form of more fields than the admin's forms have
    is a 400 (login) or a 403 (no session proven), never a traceback."""
    client = login(server)
    headers = {"content-type": FORM, "origin": server.url}
    for body in (MANY_FIELDS, "&".join(f"f{i}=v" for i in range(10_000))):
        answer = client.post(path, content=body, headers=headers)
        assert answer.status_code in (400, 403), (path, answer.status_code)
    assert not [r for r in server.log_records() if r.get("level") == "error" or "exc_info" in r]
    assert client.get("/_sgtm/api/health").status_code == 200  # still logged in, still served
