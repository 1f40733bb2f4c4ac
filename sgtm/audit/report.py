"""The audit report: per container and tag, which personal data leaves, how, and where.

`build` turns a probe run into a report; `text` renders it for people, `as_json` in the shape of
docs/privacy.md; `Rule` and `violations` implement `--deny`: `FORM:CATEGORY` with FORM one of
`clear`, `sha256`, `anonymized`, `sent` (any form) or `ungated` (any form, sent by a tag that
requires no consent), and CATEGORY a category or `*`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sgtm.audit.probe import ContainerRun
from sgtm.audit.search import FORMS, Needles, find
from sgtm.plugin import makes_events

RULE_KINDS = (*FORMS, "sent", "ungated")
WIDTH = 100


@dataclass(frozen=True, slots=True)
class Send:
    category: str
    form: str
    where: str
    fields: tuple[str, ...]  # the fields found there (`user_data.email_address`, `_fbp cookie`)


@dataclass
class TagReport:
    name: str
    type: str
    consent: list[str]
    triggers: list[str]
    block: list[str]
    paused: bool
    dry_run: bool
    sends: list[Send]
    refused: dict[str, list[str]]  # why the tag refused probes -> those probes
    probes_fired: int  # 0: the tag refused every probe, what it sends is unknown
    makes_events: bool  # turns the vendor's answers into events (`Tag.follow_up`)


@dataclass
class ContainerReport:
    name: str
    file: str
    consent_default: str
    tags: list[TagReport]
    notes: list[str] = field(default_factory=list)


def build(run: ContainerRun, search: Needles, categories: list[str]) -> ContainerReport:
    tags = []
    for tag_run in run.tags.values():
        found: dict[tuple[str, str, str], list[str]] = {}
        for request in tag_run.requests:
            for hit in find(request, search):
                names = found.setdefault((hit.field.category, hit.form, hit.where), [])
                if hit.field.name not in names:
                    names.append(hit.field.name)
        sends = [Send(c, f, w, tuple(names)) for (c, f, w), names in found.items()]
        sends.sort(key=lambda s: (_rank(categories, s.category), _rank(FORMS, s.form), s.where))
        spec = tag_run.spec
        tags.append(
            TagReport(
                name=spec.name,
                type=spec.type_name,
                consent=list(spec.consent),
                triggers=list(spec.trigger_names),
                block=list(spec.block_names),
                paused=spec.paused,
                dry_run=spec.dry_run,
                sends=sends,
                refused=dict(tag_run.refused),
                probes_fired=tag_run.fired,
                makes_events=makes_events(spec.type),
            )
        )
    default = "granted" if run.spec.consent_default_granted else "denied"
    return ContainerReport(run.spec.name, run.spec.file, default, tags, list(run.notes))


def _rank(order: Any, item: str) -> int:
    return list(order).index(item) if item in order else len(order)


# -- output ------------------------------------------------------------------------------------


def as_json(reports: list[ContainerReport]) -> dict[str, Any]:
    return {
        "containers": [
            {
                "name": report.name,
                "file": report.file,
                "consent_default": report.consent_default,
                "tags": [
                    {
                        "name": tag.name,
                        "type": tag.type,
                        "consent": tag.consent,
                        "triggers": tag.triggers,
                        "block": tag.block,
                        "paused": tag.paused,
                        "dry_run": tag.dry_run,
                        "sends": [
                            {
                                "category": s.category,
                                "form": s.form,
                                "where": s.where,
                                "fields": list(s.fields),
                            }
                            for s in tag.sends
                        ],
                        "refused": [
                            {"reason": reason, "probes": probes}
                            for reason, probes in tag.refused.items()
                        ],
                        "probes_fired": tag.probes_fired,
                        "makes_events": tag.makes_events,
                    }
                    for tag in report.tags
                ],
                "notes": report.notes,
            }
            for report in reports
        ]
    }


def text(reports: list[ContainerReport]) -> str:
    lines: list[str] = []
    for report in reports:
        if lines:
            lines.append("")
        lines.append(
            f"container {report.name} ({report.file}); consent default: {report.consent_default}"
        )
        for tag in report.tags:
            lines.extend(["", *_tag_lines(tag)])
        for note in report.notes:
            lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"


def _tag_lines(tag: TagReport) -> list[str]:
    marks = "".join(
        f" ({state}: sends nothing now)"
        for state, on in (("paused", tag.paused), ("dry run", tag.dry_run))
        if on
    )
    lines = [f"  {tag.name} ({tag.type}){marks}"]
    consent = ", ".join(tag.consent) if tag.consent else "none required"
    gates = f"    consent: {consent}; triggers: {', '.join(tag.triggers) or 'none'}"
    if tag.block:
        gates += f"; blocked by: {', '.join(tag.block)}"
    lines.append(gates)
    if tag.probes_fired == 0:
        lines.append("    refused every probe, so what it sends is unknown:")
    elif not tag.sends:
        lines.append("    sends none of the personal data the audit probes for")
    grouped: dict[tuple[str, str], list[str]] = {}
    for send in tag.sends:
        grouped.setdefault((send.category, send.form), []).append(send.where)
    width = max((len(category) for category, _ in grouped), default=0)
    for (category, form), wheres in grouped.items():
        lines.extend(_wrapped(f"    {category:<{width}}  {form:<10}  ", wheres))
    for reason, probes in tag.refused.items():
        lines.append(f"    refused: {reason}")
        lines.extend(_wrapped("      on ", probes))
    if tag.makes_events:
        lines.append(
            "    makes events from the vendor's answers, which the container's other tags get"
        )
    return lines


def _wrapped(head: str, items: list[str]) -> list[str]:
    """`head` then the items joined by commas, wrapped at WIDTH without splitting an item."""
    lines = [head]
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else "")
        if len(lines[-1]) > len(head) and len(lines[-1]) + len(piece) > WIDTH:
            lines.append(" " * len(head))
        lines[-1] += piece + " "
    return [line.rstrip() for line in lines]


# -- --deny ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str  # a form, `sent` or `ungated`
    category: str  # a category or `*`

    @classmethod
    def parse(cls, raw: str, categories: list[str]) -> Rule:
        kind, sep, category = raw.strip().partition(":")
        if not sep or kind not in RULE_KINDS:
            raise ValueError(
                f"--deny {raw!r}: expected FORM:CATEGORY with FORM one of {', '.join(RULE_KINDS)}"
            )
        if category != "*" and category not in categories:
            raise ValueError(
                f"--deny {raw!r}: unknown category {category!r} (known: {', '.join(categories)})"
            )
        return cls(kind, category)

    def __str__(self) -> str:
        return f"{self.kind}:{self.category}"

    def denies(self, tag: TagReport, send: Send) -> bool:
        if self.category not in ("*", send.category):
            return False
        if self.kind == "sent":
            return True
        if self.kind == "ungated":
            return not tag.consent
        return send.form == self.kind


def violations(reports: list[ContainerReport], rules: list[Rule]) -> list[str]:
    out = []
    for report in reports:
        for tag in report.tags:
            for send in tag.sends:
                for rule in rules:
                    if rule.denies(tag, send):
                        out.append(
                            f"denied {rule}: container {report.name}, tag {tag.name}"
                            f" ({tag.type}) sends {send.category} {send.form} at {send.where}"
                        )
    return out
