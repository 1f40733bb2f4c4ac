"""deploy/: the Grafana dashboard and the Prometheus rules reference only metrics a running
server exposes on /metrics, and have the shapes Grafana and Prometheus load."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.servers import ROOT, FakeVendor, SgtmServer, wait_until

DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"
RULES = ROOT / "deploy" / "prometheus-alerts.yaml"
TOKEN = "admin-token-123"

# PromQL words that are not metric names (functions and aggregations are followed by `(`).
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2", "group_left"}
KEYWORDS |= {"group_right", "by", "without", "on", "ignoring"}
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: strings, label matchers, ranges and
    grouping clauses removed, then every identifier not followed by `(` and not a keyword."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = GROUPING.sub(" ", text)
    names = set()
    for match in re.finditer(r"(?<![A-Za-z0-9_.$])[A-Za-z_:][A-Za-z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("(") or match.group(0) in KEYWORDS:
            continue
        names.add(match.group(0))
    return names


def balanced(text: str) -> bool:
    depth = {"(": 0, "{": 0, "[": 0}
    closing = {")": "(", "}": "{", "]": "["}
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', text):
        if char in depth:
            depth[char] += 1
        elif char in closing:
            depth[closing[char]] -= 1
            if depth[closing[char]] < 0:
                return False
    return not any(depth.values())


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found = re.match(r"label_values\((\w+),\s*\w+\)$", variable["query"]["query"])
            assert found, variable["query"]
            exprs.append(found.group(1))
    return exprs


def rules_exprs(rules: dict[str, Any]) -> list[str]:
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_promql_metric_names_are_found():
    expr = (
        'sum by (container, tag) (increase(sgtm_a_total{outcome="dead", x=~"a|b"}[10m]))'
        " / on (tag) group_left max(sgtm_b) > 0.5 and bool sgtm_c offset 5m"
    )
    assert metric_names(expr) == {"sgtm_a_total", "sgtm_b", "sgtm_c"}
    assert balanced(expr) and not balanced("sum(x{a=1)")


def test_the_dashboard_has_grafanas_shape():
    dashboard = json.loads(DASHBOARD.read_text())
    assert isinstance(dashboard["title"], str) and dashboard["title"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"])
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    assert set(dashboard["time"]) == {"from", "to"}
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    occupied: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        assert panel["type"] in {"row", "timeseries", "stat", "gauge", "table"}, panel
        assert isinstance(panel["title"], str) and panel["title"]
        grid = panel["gridPos"]
        assert set(grid) == {"x", "y", "w", "h"} and all(isinstance(v, int) for v in grid.values())
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"panel {panel['title']} overlaps another"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert ref_ids and len(ref_ids) == len(set(ref_ids))
        for target in panel["targets"]:
            assert balanced(target["expr"]), target["expr"]
            for name in re.findall(r"\$(?!__)(\w+)", target["expr"]):
                assert name in variables, f"{panel['title']}: ${name} is not a variable"


def test_the_rules_have_prometheus_shape():
    rules = yaml.safe_load(RULES.read_text())
    assert set(rules) == {"groups"} and rules["groups"]
    group_names = [group["name"] for group in rules["groups"]]
    assert len(group_names) == len(set(group_names))
    alerts = []
    for group in rules["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit"} and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
            alerts.append(rule["alert"])
            assert isinstance(rule["expr"], str) and balanced(rule["expr"]), rule["alert"]
            assert "for" not in rule or DURATION.match(rule["for"]), rule["alert"]
            assert all(isinstance(v, str) for v in rule["labels"].values())
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
            assert {"summary", "description"} <= set(rule["annotations"])
            for text in rule["annotations"].values():
                assert text.count("{{") == text.count("}}"), rule["alert"]
    assert len(alerts) == len(set(alerts))


def container(tmp_path: Path, good: str, failing: str) -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            name: shop
            clients: [{{name: ga4, type: ga4}}]
            triggers:
              everything: {{all: []}}
              purchase: {{event_name: purchase}}
            tags:
              - name: good
                type: http_request
                triggers: [everything]
                settings: {{url: "{good}/hook"}}
              - name: failing
                type: http_request
                triggers: [purchase]
                settings: {{url: "{failing}/hook"}}
              - name: ga4
                type: ga4
                triggers: [everything]
                settings: {{endpoint: "{good}/g/collect"}}
                delivery: {{max_lanes: 1}}  # a second stream's events are refused at the cap
            """
        )
    )
    return path


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The metric names of a server that took hits, delivered, saw a vendor fail (its breaker
    opened) and dropped a bad hit: what /metrics shows in operation."""
    tmp_path = tmp_path_factory.mktemp("deploy")
    env = {
        "SGTM_ADMIN_TOKEN": TOKEN,
        "SGTM_DELIVERY_BREAKER_FAILURES": "2",
        "SGTM_DELIVERY_BACKOFF_BASE": "50ms",
        "SGTM_DELIVERY_BACKOFF_CAP": "100ms",
    }
    with (
        FakeVendor() as good,
        FakeVendor(default_status=503) as failing,
        SgtmServer(container(tmp_path, good.url, failing.url), env) as server,
    ):
        for _ in range(3):
            hit = server.url + "/g/collect?v=2&tid=G-X&cid=1.2&en=purchase"
            assert httpx.get(hit).status_code == 200
        httpx.get(server.url + "/g/collect?v=2&tid=G-X&cid=1.2")  # no event name: dropped
        for stream in ("G-FIRST001", "G-SECOND02"):  # the ga4 tag's cap is one destination
            assert (
                httpx.get(f"{server.url}/g/collect?v=2&tid={stream}&cid=1.2&en=x").status_code
                == 200
            )
        auth = {"authorization": f"Bearer {TOKEN}"}

        def scraped() -> str | None:
            text = httpx.get(server.url + "/metrics", headers=auth).text
            return text if "sgtm_delivery_breaker_state{" in text else None

        text = wait_until(scraped, "a breaker opened", 20)
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}


def test_every_metric_the_dashboard_and_rules_use_is_exposed(exposed):
    exprs = dashboard_exprs(json.loads(DASHBOARD.read_text()))
    exprs += rules_exprs(yaml.safe_load(RULES.read_text()))
    used = set().union(*(metric_names(expr) for expr in exprs))
    assert used, "no metric found: the parser is broken"
    assert used <= exposed, f"not on /metrics: {sorted(used - exposed)}"
    for expected in (
        "sgtm_delivery_queue_depth",
        "sgtm_delivery_breaker_state",
        "sgtm_delivery_refused_total",
    ):
        assert expected in used


def promtool_check(path: Path) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (.ci/run does it)"
    return subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )


def test_promtool_accepts_the_rules_and_refuses_a_broken_one(tmp_path):
    """Prometheus's own checker, on the file and on a copy with one expression broken."""
    done = promtool_check(RULES)
    count = len(rules_exprs(yaml.safe_load(RULES.read_text())))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {count} rules found" in done.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(RULES.read_text().replace("[10m]))", "[10m])", 1))
    refused = promtool_check(broken)
    assert refused.returncode != 0 and "parse error" in refused.stdout + refused.stderr
