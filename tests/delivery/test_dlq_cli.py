"""`sgtm dlq` end to end: a real server dead-letters, the CLI lists, shows, replays, purges.

The server and the command both run in this process, on the same store a server and an
operator's shell would share."""

from __future__ import annotations

import json
import os

from tests.cli import Ran, run_cli
from tests.delivery.test_crash import FAST_ENV, HIT, container, delivered
from tests.servers import FakeVendor, Reply, SgtmServer, wait_until


def dlq(*args: str) -> Ran:
    env = {k: v for k, v in os.environ.items() if k != "SGTM_DATA_DIR"}
    return run_cli("dlq", *args, env=env)


def test_dlq_list_show_replay_purge(tmp_path):
    import httpx

    refused = Reply(422, {"X-Request-Id": "v-1"}, b'{"error": "invalid email"}')
    with FakeVendor(responses=[refused, refused]) as vendor:
        data = tmp_path / "data"
        config = container(tmp_path, vendor.port, f"delivery: {{path: '{data}'}}\n")
        with SgtmServer(config, FAST_ENV) as server:
            for n in (1, 2, 3):
                assert httpx.get(server.url + HIT.format(n=n)).status_code == 200
            vendor.wait_for(3)

            listing = wait_until(
                lambda: (
                    (r := dlq("list", "-c", str(config))).stdout.count("answered 422") == 2 and r
                ),
                "two dead letters",
            )
            assert listing.returncode == 0
            header, *rows = listing.stdout.splitlines()
            assert header.split()[:3] == ["ID", "DIED", "(UTC)"]
            assert all("shop/webhook" in row and "vendor answered 422" in row for row in rows)

            as_json = json.loads(
                dlq("list", "-c", str(config), "--json", "--tag", "webhook").stdout
            )
            assert len(as_json) == 2
            assert {x["status"] for x in as_json} == {422}
            assert dlq("list", "-c", str(config), "--tag", "nope").stdout == "no dead letters\n"
            assert "no dead letters" not in dlq("list", "-c", str(config), "--since", "1h").stdout

            first = as_json[0]["id"]
            shown = dlq("show", first, "-c", str(config))
            assert shown.returncode == 0
            assert f"dead letter {first}" in shown.stdout
            assert "last response: 422" in shown.stdout
            assert "invalid email" in shown.stdout
            assert "/hook" in shown.stdout
            detail = json.loads(dlq("show", first, "-c", str(config), "--json").stdout)
            assert detail["response"]["body"] == {"error": "invalid email"}
            assert detail["request"]["body"]["n"] in (1, 2)
            assert detail["history"][0]["status"] == 422
            assert dlq("show", "424242", "-c", str(config)).returncode == 2

            # The vendor is fixed: replay one; the running server sends it, same key as before.
            replayed = dlq("replay", "--id", first, "-c", str(config))
            assert replayed.stdout == "replayed 1 dead letter(s): back in the outbox\n"
            vendor.wait_for(4)
            keys = delivered(vendor)
            n = detail["request"]["body"]["n"]
            assert len(keys[int(n)]) == 1
            assert len(json.loads(dlq("list", "-c", str(config), "--json").stdout)) == 1

            assert dlq("replay", "-c", str(config)).returncode == 2  # what to replay must be said
            assert (
                dlq("purge", "--before", "1h", "-c", str(config)).stdout
                == "purged 0 dead letter(s)\n"
            )
            purged = dlq("purge", "--before", "2999-01-01", "-c", str(config), "--json")
            assert json.loads(purged.stdout) == {"purged": 1}
            assert dlq("list", "-c", str(config)).stdout == "no dead letters\n"


def test_dlq_without_a_store_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = dlq("list")
    assert result.returncode == 2
    assert f"no store at {tmp_path / 'var'}" in result.stderr


def test_dlq_reads_the_delivery_section_as_the_loader_does(tmp_path, monkeypatch):
    """Only `delivery:` is read (a vendor secret need not be set), with the loader's own
    substitution, checks and positions."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "outbox"
    shop = tmp_path / "shop.yaml"
    shop.write_text(
        "version: 1\n"
        "delivery: {path: '${OUTBOX_DIR}'}\n"
        "tags:\n"
        "  - {name: t, type: http_request, settings: {url: 'https://x.example/${VENDOR_TOKEN}'}}\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("SGTM_DATA_DIR", "VENDOR_TOKEN")}
    found = run_cli("dlq", "list", "-c", str(shop), env={**env, "OUTBOX_DIR": str(data)})
    assert (found.returncode, found.stderr) == (
        2,
        f"sgtm dlq: no store at {data} (set -c or SGTM_DATA_DIR)\n",
    )

    unset = run_cli("dlq", "list", "-c", str(shop), env=env)
    assert unset.returncode == 2
    assert unset.stderr == (
        f"sgtm dlq: {shop}:2:18: delivery.path: environment variable OUTBOX_DIR is not set\n"
    )

    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("version: 1\ndelivery: {store: redis, prefix: [1]}\n")
    refused = run_cli("dlq", "list", "-c", str(wrong), env=env)
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"sgtm dlq: {wrong}:2:")
    assert "delivery.prefix" in refused.stderr

    other = tmp_path / "other.yaml"
    other.write_text(f"version: 1\ndelivery: {{path: '{tmp_path / 'elsewhere'}'}}\n")
    both = run_cli("dlq", "list", "-c", str(tmp_path), env={**env, "OUTBOX_DIR": str(data)})
    assert both.returncode == 2
    assert "differs from" in both.stderr and "one process uses one store" in both.stderr


SECRET_CONTAINER = """\
version: 1
delivery: {{path: '{data}'}}
secrets: [HOOK_BEARER]
clients:
  - {{name: ga4, type: ga4}}
triggers:
  purchase: {{event_name: purchase}}
tags:
  - name: meta
    type: meta_capi
    triggers: [purchase]
    settings:
      pixel_id: "1234567890123456"
      access_token: "${{META_TOKEN}}"
      endpoint: http://127.0.0.1:{port}
  - name: hook
    type: http_request
    triggers: [purchase]
    settings:
      url: http://127.0.0.1:{port}/hook
      headers: {{Authorization: "Bearer ${{HOOK_BEARER}}"}}
      body: {{key: "${{HOOK_BEARER}}", n: "{{{{event.n}}}}"}}
"""


def test_dead_letters_show_secrets_masked_through_the_api_and_the_cli(tmp_path):
    """A dead letter's request holds its secrets as placeholders bound to the job's nonce; the
    admin API and `sgtm dlq show` print them without the nonce, never the secret."""
    import httpx

    secrets = {"META_TOKEN": "EAAB-meta-token-s3cret", "HOOK_BEARER": "hook-bearer-s3cret"}
    admin = "admin-token-0123456789"
    with FakeVendor(responses=[Reply(400), Reply(400)]) as vendor:
        data = tmp_path / "data"
        config = tmp_path / "shop.yaml"
        config.write_text(SECRET_CONTAINER.format(data=data, port=vendor.port))
        env = {**FAST_ENV, **secrets, "SGTM_ADMIN_TOKEN": admin}
        with SgtmServer(config, env) as server:
            # What Meta needs of a purchase: a currency, a value, the page.
            page = "&cu=BRL&epn.value=9&dl=https%3A%2F%2Fwww.shop.example%2Fp%2F1"
            assert httpx.get(server.url + HIT.format(n=1) + page).status_code == 200
            auth = {"authorization": f"Bearer {admin}"}
            letters = wait_until(
                lambda: (
                    len(
                        found := httpx.get(f"{server.url}/_sgtm/api/dlq", headers=auth).json()[
                            "dead_letters"
                        ]
                    )
                    == 2
                    and found
                ),
                "two dead letters",
            )
            by_tag = {x["tag"]: x["id"] for x in letters}
            shown = {
                tag: httpx.get(f"{server.url}/_sgtm/api/dlq/{id}", headers=auth).text
                for tag, id in by_tag.items()
            }
            cli = {tag: dlq("show", id, "-c", str(config)).stdout for tag, id in by_tag.items()}
            cli_json = {
                tag: json.loads(dlq("show", id, "-c", str(config), "--json").stdout)
                for tag, id in by_tag.items()
            }
    for text in [*shown.values(), *cli.values()]:
        assert not any(value in text for value in secrets.values()), text
        assert "@" not in text.replace("@example", ""), text  # no nonce
    assert "access_token={{secret.META_TOKEN}}" in shown["meta"]
    assert "access_token={{secret.META_TOKEN}}" in cli["meta"]
    hook = cli_json["hook"]["request"]
    assert hook["headers"]["Authorization"] == "Bearer {{secret.HOOK_BEARER}}"
    assert hook["body"]["key"] == "{{secret.HOOK_BEARER}}"
    assert "Authorization: Bearer {{secret.HOOK_BEARER}}" in cli["hook"]
    assert json.loads(shown["hook"])["request"] == hook
