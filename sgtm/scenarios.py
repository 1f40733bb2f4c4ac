"""`sgtm test FILE...`: scenario files that say what a container must do, checked in CI.

A scenario file names a container (relative to itself), a fixed clock and cases; each case is a
request or an event run through sgtm/emulate.py's runner (a fresh one per case, so cases do not
share dedupe state), and its `expect` is compared with what the runner printed:

    container: shop.yaml
    now: 2026-01-01T00:00:00Z
    cases:
      - name: a purchase reaches Meta
        request: {url: "/g/collect?v=2&en=purchase&...", headers: {user-agent: ...}}
        expect:
          status: 200
          tags:
            meta: {fired: true}
            crm: {fired: false, reason: "consent:ad_user_data"}   # reason: a prefix
          requests:
            meta: {"data[0].event_name": Purchase, "url.query.access_token": "${META_TOKEN}"}

Scenario files are loaded as containers are (sgtm/yamlsource.py): every error with its file,
line and column. Values are compared as the runner shows them: secrets as `${NAME}` (a scenario
file takes nothing from the environment: `${NAME}` in it is literal).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from sgtm.config import ContainerSpec, load_containers, validation_message
from sgtm.emulate import (
    MISSING,
    Emulator,
    InputError,
    RequestLine,
    parse_now,
    path_get,
    path_steps,
    request_view,
)
from sgtm.plugins import Registry, load_registry
from sgtm.redact import Redactor
from sgtm.suggest import hint
from sgtm.yamlsource import ConfigError, ConfigErrors, Source, join_path, load

MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_CASES = 10_000


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class TagExpect(_Strict):
    fired: bool | None = None
    reason: str | None = None  # a prefix of the reason (`consent:` matches any consent type)


class Expect(_Strict):
    status: int | None = None
    events: int | None = None  # how many events the request made
    event: int = 0  # which of them `tags`, `requests` and `data` look at
    data: dict[str, Any] = {}  # event data paths -> values
    tags: dict[str, TagExpect] = {}
    # tag -> {path: value} for its first request, or a list of those, one per request in order
    requests: dict[str, dict[str, Any] | list[dict[str, Any]]] = {}


class Case(_Strict):
    name: str
    request: RequestLine | None = None
    event: dict[str, Any] | None = None
    host: str | None = None  # for `event`: which container (a request says it in its URL/Host)
    expect: Expect = msgspec.field(default_factory=Expect)


class ScenarioFile(_Strict):
    container: str | list[str]
    now: str | float
    cases: list[Case]
    seed: int = 0


@dataclass
class Scenario:
    file: str
    source: Source
    specs: list[ContainerSpec]
    now: float
    seed: int
    cases: list[Case]


@dataclass
class CaseResult:
    file: str
    line: int
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def load_scenario(
    path: Path, specs_cache: dict[tuple[str, ...], list[ContainerSpec]], registry: Registry
) -> Scenario:
    """A scenario file and its container(s), checked; ConfigErrors lists every problem."""
    file = str(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigErrors([ConfigError(file, 1, 1, "", f"larger than {MAX_FILE_BYTES} bytes")])
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigErrors([ConfigError(file, 1, 1, "", f"cannot read file: {exc}")]) from None
    source = load(text, file, substitute=False)
    errors = list(source.errors)
    data = source.data
    if not isinstance(data, dict):
        errors.append(source.error("", "a scenario file is a mapping (container, now, cases)"))
        raise ConfigErrors(errors)
    for key in data:
        if key not in ScenarioFile.__struct_fields__:
            message = "unknown key" + hint(key, ScenarioFile.__struct_fields__)
            errors.append(source.error(key, message, at_key=True))
    top = {k: v for k, v in data.items() if k in ScenarioFile.__struct_fields__ and k != "cases"}
    top["cases"] = []
    header = _convert(top, ScenarioFile, "", source, errors)
    raw_cases = data.get("cases")
    if "cases" not in data:
        errors.append(source.error("cases", "required: a list of cases", at_key=True))
        raw_cases = []
    elif not isinstance(raw_cases, list):
        errors.append(source.error("cases", "expected a list of cases"))
        raw_cases = []
    elif len(raw_cases) > MAX_CASES:
        errors.append(source.error("cases", f"more than {MAX_CASES} cases"))
        raw_cases = []
    cases: list[Case] = []
    for i, raw in enumerate(raw_cases):
        case = _convert(raw, Case, join_path("cases", i), source, errors)
        if case is not None and _check_case(case, join_path("cases", i), source, errors):
            cases.append(case)
    now = 0.0
    if header is not None:
        try:
            now = parse_now(header.now)
        except ValueError as exc:
            errors.append(source.error("now", f"not a time ({exc}): epoch seconds or ISO 8601"))
    specs: list[ContainerSpec] = []
    if header is not None:
        names = [header.container] if isinstance(header.container, str) else header.container
        paths = tuple(str((path.parent / name).resolve()) for name in names)
        if not names:
            errors.append(source.error("container", "names no container file"))
        elif paths in specs_cache:
            specs = specs_cache[paths]
        else:
            try:
                specs = load_containers(list(paths), registry)
            except ConfigErrors as exc:
                errors.extend(exc.errors)
            else:
                specs_cache[paths] = specs
    if specs:
        _check_names(cases, specs, source, errors)
    if errors:
        raise ConfigErrors(errors)
    assert header is not None
    return Scenario(file, source, specs, now, header.seed, cases)


def _convert(raw: Any, typ: type[Any], path: str, source: Source, errors: list[ConfigError]) -> Any:
    try:
        return msgspec.convert(raw, typ, strict=False)
    except msgspec.ValidationError as exc:
        rel, message, at_key = validation_message(exc)
        where = f"{path}.{rel}" if path and rel and not rel.startswith("[") else path + rel
        if at_key and message == "unknown key":
            message += hint(rel.rpartition(".")[2], _KNOWN_KEYS)
        errors.append(source.error(where, message, at_key=at_key))
        return None


# Every key a scenario may use, for "did you mean" (the loader's error says where it is).
_KNOWN_KEYS = sorted(
    {
        *ScenarioFile.__struct_fields__,
        *Case.__struct_fields__,
        *Expect.__struct_fields__,
        *TagExpect.__struct_fields__,
        *RequestLine.__struct_fields__,
    }
)


def _check_case(case: Case, path: str, source: Source, errors: list[ConfigError]) -> bool:
    if (case.request is None) == (case.event is None):
        errors.append(source.error(path, "a case has either `request` or `event`"))
        return False
    if case.event is not None and case.expect.status is not None:
        errors.append(
            source.error(join_path(path, "expect.status"), "an event case has no response status")
        )
        return False
    for tag, wanted in case.expect.requests.items():
        items = wanted if isinstance(wanted, list) else [wanted]
        for i, fields in enumerate(items):
            for key in fields:
                if path_steps(key) is None:
                    where = join_path(join_path(path, "expect.requests"), tag)
                    if isinstance(wanted, list):
                        where = join_path(where, i)
                    errors.append(source.error(join_path(where, key), f"not a path: {key!r}"))
                    return False
    for key in case.expect.data:
        if path_steps(key) is None:
            where = join_path(join_path(path, "expect.data"), key)
            errors.append(source.error(where, f"not a path: {key!r}"))
            return False
    return True


def _check_names(
    cases: list[Case], specs: list[ContainerSpec], source: Source, errors: list[ConfigError]
) -> None:
    """Tags an expectation names must exist in some container (a typo would never fail)."""
    names = sorted({t.name for spec in specs for t in spec.tags})
    for i, case in enumerate(cases):
        path = join_path("cases", i)
        for section in ("tags", "requests"):
            for tag in getattr(case.expect, section):
                if tag not in names:
                    where = join_path(join_path(path, f"expect.{section}"), tag)
                    message = f"no tag named '{tag}' in the container{hint(tag, names)}"
                    errors.append(source.error(where, message, at_key=True))


async def run_scenario(scenario: Scenario) -> list[CaseResult]:
    results = []
    for i, case in enumerate(scenario.cases):
        line, _ = scenario.source.position(join_path("cases", i))
        result = CaseResult(scenario.file, line, case.name)
        emulator = Emulator(scenario.specs, scenario.now, scenario.seed)
        redact = Redactor({k: v for spec in scenario.specs for k, v in spec.secrets.items()})
        try:
            if case.request is not None:
                output = await emulator.request(case.request)
            else:
                assert case.event is not None
                output = await emulator.events([case.event], case.host)
        except InputError as exc:
            result.failures.append(f"cannot run: {exc}")
        else:
            result.failures = [redact(f) for f in check(case.expect, output)]
        results.append(result)
    return results


def _show(value: Any) -> str:
    if value is MISSING:
        return "(absent)"
    return msgspec.json.encode(value).decode()


def check(expect: Expect, output: dict[str, Any]) -> list[str]:
    """What differs between `expect` and the runner's output, one line each."""
    failures = []
    response = output.get("response")
    if expect.status is not None and response is not None and response["status"] != expect.status:
        failures.append(f"status: expected {expect.status}, got {response['status']}")
    events = output["events"]
    if expect.events is not None and len(events) != expect.events:
        failures.append(f"events: expected {expect.events}, got {len(events)}")
    wants_event = expect.data or expect.tags or expect.requests
    if not wants_event:
        return failures
    if expect.event >= len(events):
        error = f" ({output['error']})" if output.get("error") else ""
        failures.append(f"event {expect.event}: the request made {len(events)} event(s){error}")
        return failures
    event = events[expect.event]
    for key, wanted in expect.data.items():
        got = path_get(event["data"], path_steps(key) or [])
        if got is MISSING or not _equal(got, wanted):
            failures.append(f"data.{key}: expected {_show(wanted)}, got {_show(got)}")
    tags = {t["name"]: t for t in event["tags"]}
    for name, tag_expect in expect.tags.items():
        tag = tags.get(name)
        if tag is None:
            failures.append(f"tags.{name}: not run for this event")
            continue
        why = f" (reason: {tag['reason']})" if tag["reason"] else ""
        if tag_expect.fired is not None and tag["fired"] != tag_expect.fired:
            failures.append(
                f"tags.{name}.fired: expected {_show(tag_expect.fired)}, got"
                f" {_show(tag['fired'])}{why}"
            )
        if tag_expect.reason is not None and not (tag["reason"] or "").startswith(
            tag_expect.reason
        ):
            failures.append(
                f"tags.{name}.reason: expected one starting {_show(tag_expect.reason)},"
                f" got {_show(tag['reason'])}"
            )
    for name, wanted_requests in expect.requests.items():
        tag = tags.get(name)
        built = tag["requests"] if tag is not None else []
        items = wanted_requests if isinstance(wanted_requests, list) else [wanted_requests]
        if isinstance(wanted_requests, list) and len(built) != len(items):
            failures.append(f"requests.{name}: expected {len(items)} request(s), got {len(built)}")
        for index, wanted in enumerate(items):
            label = f"requests.{name}" + (f"[{index}]" if isinstance(wanted_requests, list) else "")
            if index >= len(built):
                if not isinstance(wanted_requests, list):
                    failures.append(f"{label}: the tag built no request")
                continue
            failures.extend(_check_request(label, wanted, built[index]))
    return failures


def _check_request(label: str, wanted: dict[str, Any], built: dict[str, Any]) -> list[str]:
    view = request_view(built)
    failures = []
    for key, value in wanted.items():
        steps = path_steps(key) or []
        head = steps[0]
        if key == "url":
            got: Any = built["url"]
        elif head in ("method", "url", "headers", "body"):
            if head == "headers" and len(steps) == 2 and isinstance(steps[1], str):
                steps = ["headers", steps[1].lower()]
            got = path_get(view, steps)
        else:  # a path into the body
            got = path_get(view["body"], steps)
        if got is MISSING or not _equal(got, value):
            failures.append(f"{label}.{key}: expected {_show(value)}, got {_show(got)}")
    return failures


def _equal(got: Any, wanted: Any) -> bool:
    """JSON equality: 10 equals 10.0, but not "10" nor true."""
    if isinstance(got, bool) or isinstance(wanted, bool):
        return type(got) is type(wanted) and got == wanted
    return bool(got == wanted)


# -- the command -------------------------------------------------------------------------


def add_parser(commands: Any) -> None:
    test = commands.add_parser("test", help="check scenario files: what containers must do")
    test.add_argument("files", nargs="+", help="scenario files (YAML)")
    test.add_argument("--junit", default=None, help="also write a JUnit XML report to FILE")


def run(args: argparse.Namespace) -> int:
    cache: dict[tuple[str, ...], list[ContainerSpec]] = {}
    registry = load_registry()
    scenarios = []
    broken = False
    for name in args.files:
        try:
            scenarios.append(load_scenario(Path(name), cache, registry))
        except ConfigErrors as exc:
            broken = True
            for error in exc.errors:
                print(error, file=sys.stderr)
    if broken:
        return 2
    results: list[CaseResult] = []
    for scenario in scenarios:
        results.extend(asyncio.run(run_scenario(scenario)))
    for result in results:
        where = f"{result.file}:{result.line}"
        if result.passed:
            print(f"ok    {where}: {result.name}")
        else:
            print(f"FAIL  {where}: {result.name}")
            for failure in result.failures:
                print(f"        {failure}")
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    if args.junit:
        write_junit(args.junit, results)
    return 1 if failed else 0


def write_junit(path: str, results: list[CaseResult]) -> None:
    suites = ET.Element("testsuites", name="sgtm test")
    by_file: dict[str, list[CaseResult]] = {}
    for result in results:
        by_file.setdefault(result.file, []).append(result)
    for file, cases in by_file.items():
        failures = sum(not c.passed for c in cases)
        suite = ET.SubElement(
            suites, "testsuite", name=_xml(file), tests=str(len(cases)), failures=str(failures)
        )
        for case in cases:
            element = ET.SubElement(
                suite,
                "testcase",
                name=_xml(case.name),
                classname=_xml(file),
                file=_xml(file),
                line=str(case.line),
            )
            if not case.passed:
                failure = ET.SubElement(element, "failure", message=_xml(case.failures[0]))
                failure.text = _xml("\n".join(case.failures))
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def _xml(text: str) -> str:
    """Text XML 1.0 can hold: other control characters become U+FFFD."""
    return "".join(
        c
        if c in "\t\n\r" or (" " <= c <= "\ud7ff") or ("\ue000" <= c <= "\ufffd") or c > "\uffff"
        else "\ufffd"
        for c in text
    )
