"""`sgtm diff OLD NEW --requests F` (or `--events F`): what a new version of a container changes.

Both versions run on the same recorded input through sgtm/emulate.py's runner, on the same clock
and seed, so only the containers differ. For each input line and event, every tag whose decision,
reason or built requests differ is printed with its changed fields: the request body field by
field (JSON paths), the URL by component and query parameter, headers by name. Secrets are shown
as `${NAME}`, as the runner shows them. Exit 0 when nothing differs, 1 otherwise, 2 when the
input or a container cannot be read.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import msgspec

from sgtm.config import ContainerSpec, load_containers
from sgtm.emulate import (
    MISSING,
    Emulator,
    InputError,
    RequestLine,
    flatten,
    ndjson,
    parse_now,
    request_line,
    request_view,
)
from sgtm.plugins import Registry, load_registry
from sgtm.redact import Redactor
from sgtm.yamlsource import ConfigErrors


@dataclass
class Difference:
    line: int
    label: str  # what the line was: "GET /g/collect", "event"
    event: int | None  # which event of the line; None for the response
    subject: str  # "response", "event data", "tag meta (meta_capi)"
    kind: str  # changed | added | removed
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)  # (path, old, new)


def compare(line: int, label: str, old: dict[str, Any], new: dict[str, Any]) -> list[Difference]:
    """What differs between two runner outputs for the same input line."""
    out = []
    top = _changes(
        flatten({"client": old["client"], "response": old["response"], "error": old["error"]}),
        flatten({"client": new["client"], "response": new["response"], "error": new["error"]}),
    )
    if top:
        out.append(Difference(line, label, None, "response", "changed", top))
    old_events, new_events = old["events"], new["events"]
    for index in range(max(len(old_events), len(new_events))):
        if index >= len(new_events):
            out.append(Difference(line, label, index, "event", "removed"))
            continue
        if index >= len(old_events):
            out.append(Difference(line, label, index, "event", "added"))
            continue
        before, after = old_events[index], new_events[index]
        data = _changes(flatten(before["data"]), flatten(after["data"]))
        if data:
            out.append(Difference(line, label, index, "event data", "changed", data))
        old_tags = {t["name"]: t for t in before["tags"]}
        new_tags = {t["name"]: t for t in after["tags"]}
        for name in [*old_tags, *(n for n in new_tags if n not in old_tags)]:
            was, now = old_tags.get(name), new_tags.get(name)
            subject = f"tag {name} ({(now or was or {}).get('type')})"
            if now is None or was is None:
                kind = "removed" if now is None else "added"
                shown = _tag_fields(was or now or {}, 0)
                changes = [(p, v, MISSING) if now is None else (p, MISSING, v) for p, v in shown]
                out.append(Difference(line, label, index, subject, kind, changes))
                continue
            both = min(len(was["requests"]), len(now["requests"]))
            changes = _changes(dict(_tag_fields(was, both)), dict(_tag_fields(now, both)))
            if changes:
                out.append(Difference(line, label, index, subject, "changed", changes))
    return out


def _tag_fields(tag: dict[str, Any], compared: int) -> list[tuple[str, Any]]:
    """A tag's decision and requests as (path, value): the first `compared` requests field by
    field (the other version built them too), the others as one `METHOD URL` each."""
    fields: list[tuple[str, Any]] = [("fired", tag["fired"]), ("reason", tag["reason"])]
    for index, request in enumerate(tag["requests"]):
        if index < compared:
            fields.extend(flatten(request_view(request), f"requests[{index}]").items())
        else:
            fields.append((f"requests[{index}]", f"{request['method']} {request['url']}"))
    return fields


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    out = []
    for path in [*old, *(p for p in new if p not in old)]:
        before, after = old.get(path, MISSING), new.get(path, MISSING)
        if before is MISSING or after is MISSING or not _same(before, after):
            out.append((path, before, after))
    out.sort(key=lambda change: change[0])
    return out


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and bool(a == b)


def _show(value: Any) -> str:
    return "(absent)" if value is MISSING else msgspec.json.encode(value).decode()


def render_text(difference: Difference) -> list[str]:
    event = "" if difference.event is None else f": event {difference.event}"
    head = f"line {difference.line} ({difference.label}){event}: {difference.subject}"
    lines = [f"{head}: {difference.kind}"]
    for path, old, new in difference.changes:
        lines.append(f"    {path}: {_show(old)} -> {_show(new)}")
    return lines


def render_json(difference: Difference) -> dict[str, Any]:
    changes = []
    for path, old, new in difference.changes:
        change: dict[str, Any] = {"path": path}
        if old is not MISSING:
            change["old"] = old
        if new is not MISSING:
            change["new"] = new
        changes.append(change)
    return {
        "line": difference.line,
        "input": difference.label,
        "event": difference.event,
        "subject": difference.subject,
        "kind": difference.kind,
        "changes": changes,
    }


# -- the command -------------------------------------------------------------------------


def add_parser(commands: Any) -> None:
    diff = commands.add_parser(
        "diff", help="run two versions of a container on recorded input; print what differs"
    )
    diff.add_argument("old", help="the container file or directory in use (e.g. main's)")
    diff.add_argument("new", help="the changed one")
    source = diff.add_mutually_exclusive_group(required=True)
    source.add_argument("--requests", help="NDJSON file of requests ('-' for stdin)")
    source.add_argument("--events", help="NDJSON file of event data dicts ('-' for stdin)")
    diff.add_argument("--host", default=None, help="Host / container for --events")
    diff.add_argument("--now", default=None, help="the clock of both runs (default: now)")
    diff.add_argument("--seed", type=int, default=0, help="seed of generated ids (both runs)")
    diff.add_argument("--json", action="store_true", help="one JSON object per difference")


def _load(label: str, path: str, registry: Registry) -> list[ContainerSpec] | None:
    try:
        return load_containers([path], registry)
    except ConfigErrors as exc:
        for error in exc.errors:
            print(f"{label}: {error}", file=sys.stderr)
        return None


def run(args: argparse.Namespace) -> int:
    registry = load_registry()
    old_specs = _load("old", args.old, registry)
    new_specs = _load("new", args.new, registry)
    if old_specs is None or new_specs is None:
        return 2
    try:
        now = time.time() if args.now is None else parse_now(args.now)
    except ValueError:
        print(f"sgtm diff: --now: not a time: {args.now!r}", file=sys.stderr)
        return 2
    secrets = {k: v for spec in [*old_specs, *new_specs] for k, v in spec.secrets.items()}
    redact = Redactor(secrets)
    old = Emulator(old_specs, now, args.seed)
    new = Emulator(new_specs, now, args.seed)
    found = 0

    def emit(difference: Difference) -> None:
        if args.json:
            sys.stdout.write(redact(msgspec.json.encode(render_json(difference)).decode()) + "\n")
        else:
            for text in render_text(difference):
                sys.stdout.write(redact(text) + "\n")

    async def side(emulator: Emulator, item: RequestLine | dict[str, Any]) -> dict[str, Any]:
        try:
            if isinstance(item, RequestLine):
                return await emulator.request(item)
            return await emulator.events([item], args.host)
        except InputError as exc:  # a host only one of the versions serves
            return {"client": None, "response": None, "events": [], "error": str(exc)}

    async def go(handle: TextIO) -> None:
        nonlocal found
        for number, value in ndjson(handle):
            item: RequestLine | dict[str, Any]
            if args.events is not None:
                if not isinstance(value, dict):
                    raise InputError(f"line {number}: an event must be a JSON object")
                item, label = value, "event"
            else:
                item = request_line(number, value)
                label = f"{item.method} {item.url.split('?', 1)[0][:200]}"
            before, after = await side(old, item), await side(new, item)
            for difference in compare(number, label, before, after):
                found += 1
                emit(difference)

    path = args.requests if args.requests is not None else args.events
    try:
        with sys.stdin if path == "-" else open(path, encoding="utf-8") as handle:
            asyncio.run(go(handle))
    except InputError as exc:
        print(f"sgtm diff: {exc}", file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError) as exc:
        print(f"sgtm diff: {exc}", file=sys.stderr)
        return 2
    if not args.json:
        print(f"{found} difference(s)", file=sys.stderr)
    return 1 if found else 0
