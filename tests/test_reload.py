"""Hot reload of `sgtm serve` (docs/operations.md, "Reloading"): hits keep being answered, each by
one version whole; an invalid version is logged and the old one keeps serving; SIGHUP reloads a
process and every worker of `--workers 2`; `--watch` reloads when a file changes.

Two versions of one container answer differently, in their response and in their tag's request:
version A allows the origin the hits send (CORS headers in the answer) and its tag sends
`{"v": "A"}`; version B allows another origin and sends `{"v": "B"}`. An answer names its version
by its CORS header, and the vendor must receive the same version's body for that hit.
"""

from __future__ import annotations

import json
import os
import re
import signal
import textwrap
import threading
from pathlib import Path

import httpx
import pytest

from sgtm.reload import files_version
from tests.servers import FakeVendor, SgtmProcess, SgtmServer, wait_until

ORIGIN = "https://a.example"
TOKEN = "reload-test-admin-token"
SECRET = "reload-hook-secret-5309"


def container(vendor_url: str, version: str) -> str:
    origin = ORIGIN if version == "A" else "https://b.example"
    return textwrap.dedent(
        f"""\
        version: 1
        name: shop
        origins: [{origin}]
        clients:
          - {{name: dl, type: datalayer}}
        triggers:
          all: {{all: []}}
        tags:
          - name: hook
            type: http_request
            triggers: [all]
            settings:
              url: {vendor_url}/hook
              body: {{v: "{version}", hit: "{{{{event.hit_id}}}}"}}
        """
    )


def write(path: Path, text: str | bytes) -> None:
    """Replace the file in one step, as a deploy (or an editor's atomic save) does."""
    temporary = path.with_suffix(".tmp")
    if isinstance(text, bytes):
        temporary.write_bytes(text)
    else:
        temporary.write_text(text)
    os.replace(temporary, path)


def hit(client: httpx.Client, url: str, hit_id: str) -> httpx.Response:
    return client.post(
        url + "/data",
        content=json.dumps({"event": "page_view", "hit_id": hit_id}),
        headers={"content-type": "text/plain", "origin": ORIGIN},
    )


def version_of(response: httpx.Response) -> str:
    return "A" if response.headers.get("access-control-allow-origin") == ORIGIN else "B"


def delivered(vendor: FakeVendor) -> dict[str, str]:
    """hit id -> the version whose tag sent it."""
    bodies = [json.loads(r.body) for r in vendor.received]
    return {body["hit"]: body["v"] for body in bodies}


@pytest.fixture
def vendor():
    with FakeVendor() as fake:
        yield fake


@pytest.mark.e2e
def test_hits_during_repeated_reloads_are_each_answered_by_one_version(tmp_path, vendor):
    config = tmp_path / "shop.yaml"
    config.write_text(container(vendor.url, "A"))
    answers: dict[str, str] = {}  # hit id -> version of the answer
    failures: list[str] = []
    not_ready: list[int] = []
    stop = threading.Event()

    def send(worker: int) -> None:
        with httpx.Client(timeout=30) as client:
            n = 0
            while not stop.is_set():
                hit_id = f"{worker}-{n}"
                n += 1
                try:
                    response = hit(client, server.url, hit_id)
                except httpx.HTTPError as exc:
                    failures.append(f"{hit_id}: {exc!r}")
                    continue
                if response.status_code != 200:
                    failures.append(f"{hit_id}: {response.status_code}")
                    continue
                answers[hit_id] = version_of(response)

    def ready() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                status = client.get(server.url + "/readyz").status_code
                if status != 200:
                    not_ready.append(status)

    with SgtmServer(config) as server:
        threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
        threads.append(threading.Thread(target=ready))
        for thread in threads:
            thread.start()
        try:
            for round_ in range(20):
                version = "B" if round_ % 2 == 0 else "A"
                write(config, container(vendor.url, version))
                assert server.reload()
                # The new version answers, and hits keep coming, before the next reload.
                seen = len(answers)
                wait_until(
                    lambda v=version, s=seen: (
                        len(answers) >= s + 20
                        and any(answer == v for answer in list(answers.values())[s:])
                    ),
                    f"answers of version {version}",
                    timeout=30,
                )
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
        assert failures == []
        assert not_ready == []
        assert set(answers.values()) == {"A", "B"}
        got = wait_until(
            lambda: (sent := delivered(vendor)).keys() >= answers.keys() and sent,
            "every hit delivered",
            timeout=60,
        )
        # The tag that ran for a hit is of the version that answered it: never a mix.
        mixed = {hit_id: (v, got[hit_id]) for hit_id, v in answers.items() if got[hit_id] != v}
        assert mixed == {}
        assert len(vendor.received) == len(got)  # each hit sent once
        assert server.metrics.value("sgtm_config_reload_total", result="success") == 20


@pytest.mark.parametrize(
    ("name", "text", "error"),
    [
        (
            "unknown trigger",
            "version: 1\nname: shop\ntags:\n  - {name: hook, type: http_request,"
            " triggers: [nope], settings: {url: 'https://x.example'}}\n",
            r"shop\.yaml:4:\d+: tags\[0\]\.triggers\[0\]: unknown trigger 'nope'",
        ),
        ("YAML syntax", "version: 1\nclients: [\n", r"shop\.yaml:\d+:\d+: "),
        ("not UTF-8", b"version: 1\nname: \xff\xfe\n", r"shop\.yaml:1:1: .*cannot read file"),
        (
            "missing environment variable",
            "version: 1\nname: shop\nclients:\n  - {name: dl, type: datalayer}\n"
            "tags:\n  - {name: hook, type: http_request,"
            " settings: {url: 'https://x.example', hmac_secret: '${RELOAD_NOT_SET}'}}\n",
            r"shop\.yaml:\d+:\d+: .*RELOAD_NOT_SET",
        ),
        ("no container", None, r"no \*\.yaml container files found"),
        (
            "a secret in a bad value",
            "version: 1\nname: shop\nclients:\n  - {name: dl, type: datalayer}\n"
            "tags:\n  - {name: hook, type: http_request, settings:"
            " {url: 'ftp://h/${HOOK_SECRET}', hmac_secret: '${HOOK_SECRET}'}}\n",
            r"shop\.yaml:6:\d+: .*got 'ftp://h/\$\{HOOK_SECRET\}'",
        ),
    ],
)
def test_an_invalid_version_is_logged_and_the_old_one_keeps_serving(
    tmp_path, vendor, name, text, error
):
    config = tmp_path / "site"
    config.mkdir()
    path = config / "shop.yaml"
    path.write_text(container(vendor.url, "A"))
    old = files_version([config])
    env = {"SGTM_ADMIN_TOKEN": TOKEN, "HOOK_SECRET": SECRET}
    with SgtmServer(config, env) as server, httpx.Client() as client:
        if text is None:
            path.unlink()
        else:
            write(path, text)
        assert not server.reload()
        record = server.wait_for_log(lambda r: r["msg"].startswith("config reload failed"), name)
        assert record["level"] == "error" and record["version"] == old
        assert any(re.search(error, line) for line in record["errors"]), record
        response = hit(client, server.url, "after")
        assert response.status_code == 200 and version_of(response) == "A"
        assert client.get(server.url + "/readyz").status_code == 200
        shown = client.get(server.url + "/metrics", headers={"authorization": f"Bearer {TOKEN}"})
        assert f'sgtm_config_version_info{{version="{old}"}} 1' in shown.text
        assert 'sgtm_config_reload_total{result="failure"} 1' in shown.text
        assert "sgtm_config_last_reload_failure_timestamp_seconds " in shown.text
        # Fixed, the next reload serves it.
        write(path, container(vendor.url, "B"))
        assert server.reload()
        assert version_of(hit(client, server.url, "fixed")) == "B"
        assert (
            server.metrics.value("sgtm_config_version_info", version=files_version([config])) == 1
        )
        assert server.metrics.value("sgtm_config_version_info", version=old) == 0  # one series
        wait_until(lambda: len(vendor.received) == 2, "deliveries")
        assert delivered(vendor) == {"after": "A", "fixed": "B"}
        assert SECRET not in server.logs()


def test_a_reload_of_unchanged_files_keeps_the_version(tmp_path, vendor):
    config = tmp_path / "shop.yaml"
    config.write_text(container(vendor.url, "A"))
    with SgtmServer(config) as server:
        assert server.reload()
        assert server.metrics.value("sgtm_config_reload_total", result="unchanged") == 1
        assert server.metrics.value("sgtm_config_reload_total", result="success") == 0


def test_a_new_delivery_store_is_reported_as_needing_a_restart(tmp_path, vendor):
    config = tmp_path / "shop.yaml"
    config.write_text(container(vendor.url, "A"))
    with SgtmServer(config) as server, httpx.Client() as client:
        moved = tmp_path / "elsewhere"
        text = container(vendor.url, "B") + f"delivery: {{store: sqlite, path: '{moved}'}}\n"
        write(config, text)
        assert server.reload()
        record = server.wait_for_log(
            lambda r: r["msg"].startswith("delivery store settings changed"), "store warning"
        )
        assert str(moved) in record["configured"] and record["level"] == "warning"
        assert version_of(hit(client, server.url, "b")) == "B"
        # The running store keeps working: the hit is delivered, nothing went to the new path.
        wait_until(lambda: delivered(vendor) == {"b": "B"}, "delivered")
        assert not moved.exists()


@pytest.mark.e2e
def test_sighup_reloads_the_process(tmp_path, vendor):
    config = tmp_path / "shop.yaml"
    config.write_text(container(vendor.url, "A"))
    with SgtmProcess(config) as proc, httpx.Client() as client:
        assert version_of(hit(client, proc.url, "1")) == "A"
        write(config, container(vendor.url, "B"))
        proc.proc.send_signal(signal.SIGHUP)
        proc.wait_for_log(lambda r: r["msg"] == "config reloaded", "reloaded")
        assert version_of(hit(client, proc.url, "2")) == "B"
        # An invalid version is logged, and B keeps serving.
        write(config, "version: 1\nclients: [\n")
        proc.proc.send_signal(signal.SIGHUP)
        proc.wait_for_log(lambda r: r["msg"].startswith("config reload failed"), "failed")
        assert version_of(hit(client, proc.url, "3")) == "B"
        assert proc.proc.poll() is None
        wait_until(lambda: len(vendor.received) == 3, "deliveries")
        assert delivered(vendor) == {"1": "A", "2": "B", "3": "B"}


@pytest.mark.e2e
def test_sighup_to_the_master_reloads_every_worker(tmp_path, vendor):
    config = tmp_path / "shop.yaml"
    config.write_text(container(vendor.url, "A"))
    with SgtmProcess(config, {}, "--workers", "2") as proc:
        wait_until(
            lambda: proc.logs().count("Application startup complete") == 2, "both workers started"
        )
        write(config, container(vendor.url, "B"))
        proc.proc.send_signal(signal.SIGHUP)  # the master: uvicorn's own would restart workers
        wait_until(
            lambda: sum(r["msg"] == "config reloaded" for r in proc.log_records()) == 2,
            "both workers reloaded",
            timeout=30,  # two processes loading on a busy machine
        )
        # New connections go to either worker: every answer is B.
        for n in range(10):
            with httpx.Client() as client:
                assert version_of(hit(client, proc.url, str(n))) == "B"
        assert proc.proc.poll() is None
        assert proc.logs().count("Application startup complete") == 2  # reloaded, not restarted


@pytest.mark.e2e
def test_watch_reloads_when_a_file_changes(tmp_path, vendor):
    config = tmp_path / "site"
    config.mkdir()
    (config / "shop.yaml").write_text(container(vendor.url, "A"))
    with (
        SgtmProcess(config, {}, "--watch", "--watch-interval", "100ms") as proc,
        httpx.Client() as client,
    ):
        assert version_of(hit(client, proc.url, "1")) == "A"
        (config / "shop.yaml").write_text(container(vendor.url, "B"))  # in place, not replaced
        wait_until(lambda: version_of(hit(client, proc.url, "x")) == "B", "B served")
        record = proc.wait_for_log(lambda r: r["msg"] == "config reloaded", "reloaded")
        assert record["trigger"] == "watch"
        # A second container file added to the directory is a change too.
        other = container(vendor.url, "A").replace("name: shop", "name: other")
        other = other.replace("version: 1\n", "version: 1\nhosts: [other.example]\n")
        (config / "other.yaml").write_text(other)
        wait_until(
            lambda: sum(r["msg"] == "config reloaded" for r in proc.log_records()) == 2,
            "the new file loaded",
        )
        response = client.post(
            proc.url + "/data",
            content=json.dumps({"event": "page_view", "hit_id": "o"}),
            headers={"content-type": "text/plain", "origin": ORIGIN, "host": "other.example"},
        )
        assert response.status_code == 200 and version_of(response) == "A"


@pytest.mark.parametrize("interval", ["soon", "0", "-1s", "", "1e400s"])
def test_watch_interval_must_be_a_positive_duration(interval):
    from tests.cli import run_cli

    done = run_cli("serve", "-c", "config", "--watch", "--watch-interval", interval)
    assert done.returncode == 2 and "--watch-interval" in done.stderr


def test_a_reload_gives_the_alerter_the_new_rules_and_keeps_what_it_said():
    from tests.test_alerts import LANE, Counters, alerter, rules

    counters = Counters()
    watch = alerter(counters)
    counters.set("sgtm_delivery_breaker_state", 1, container="shop", tag="meta", lane=LANE)
    assert [m.key for m in watch.check(1000)] == [("open", LANE)]
    counters.set("sgtm_delivery_breaker_state", 1, container="blog", tag="m", lane="blog/m/x")
    watch.replace_rules([rules(), rules(container="blog")])  # the reload added blog's section
    # shop's open breaker was said already: not again; blog's is new.
    assert [m.key for m in watch.check(1005)] == [("open", "blog/m/x")]
    watch.replace_rules([rules(container="blog")])  # shop's section removed
    counters.set("sgtm_delivery_breaker_state", 0, container="shop", tag="meta", lane=LANE)
    assert watch.check(1010) == []


@pytest.mark.e2e
def test_with_workers_and_watch_every_worker_watches(tmp_path, vendor):
    config = tmp_path / "shop.yaml"
    config.write_text(container(vendor.url, "A"))
    argv = ("--workers", "2", "--watch", "--watch-interval", "100ms")
    with SgtmProcess(config, {}, *argv) as proc:
        wait_until(
            lambda: proc.logs().count("Application startup complete") == 2, "both workers started"
        )
        write(config, container(vendor.url, "B"))
        wait_until(
            lambda: sum(r["msg"] == "config reloaded" for r in proc.log_records()) == 2,
            "both workers reloaded",
            timeout=30,  # two processes loading on a busy machine
        )
        for n in range(10):
            with httpx.Client() as client:
                assert version_of(hit(client, proc.url, str(n))) == "B"


async def test_watch_loads_a_change_made_while_the_server_was_starting(tmp_path, vendor):
    from sgtm.config import load_containers
    from sgtm.dedupe import MemoryDedupe
    from sgtm.delivery.recorder import RecorderDelivery
    from sgtm.metrics import Metrics
    from sgtm.reload import LiveContainers, Reloader, ReloadOptions, container_set
    from tests.installed import registry
    from tests.servers import eventually

    config = tmp_path / "shop.yaml"
    config.write_text(container(vendor.url, "A"))
    version = files_version([config])  # hashed before loading, as `sgtm serve` does
    specs = load_containers([config], registry())
    write(config, container(vendor.url, "B"))  # before the watcher's first look
    delivery, dedupe, metrics = RecorderDelivery(), MemoryDedupe(), Metrics()
    live = LiveContainers(container_set(specs, version, delivery, dedupe, metrics))
    options = ReloadOptions((config,), watch=3600, sighup=False, registry=registry())
    reloader = Reloader(live, options, delivery, dedupe, metrics)
    async with reloader.running():  # the next poll is an hour away: only the first look can see B
        await eventually(lambda: live.current.version == files_version([config]), "B loaded")
    assert metrics.value("sgtm_config_reload_total", result="success") == 1


def test_a_new_version_keeps_the_senders_rates_and_the_traced_requests(tmp_path, vendor):
    from sgtm.config import load_containers
    from sgtm.dedupe import MemoryDedupe
    from sgtm.delivery.recorder import RecorderDelivery
    from sgtm.metrics import Metrics
    from sgtm.reload import container_set
    from tests.installed import registry

    config = tmp_path / "shop.yaml"
    config.write_text(container(vendor.url, "A"))
    delivery, dedupe, metrics = RecorderDelivery(), MemoryDedupe(), Metrics()
    old = container_set(load_containers([config], registry()), "a", delivery, dedupe, metrics)
    (shop,) = old.containers
    config.write_text(container(vendor.url, "B"))
    specs = load_containers([config], registry())
    new = container_set(specs, "b", delivery, dedupe, metrics, old)
    (renewed,) = new.containers
    assert renewed is not shop and renewed.spec is not shop.spec
    assert renewed.limiter is shop.limiter
