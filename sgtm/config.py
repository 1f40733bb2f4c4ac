"""Container YAML (version 1): the schema, the loader, and every load-time check.

Loading turns a file into a `ContainerSpec` whose conditions, templates and plugin settings are
already compiled and checked; nothing is parsed per request. Problems are collected rather than
raised one by one, so `sgtm validate` can print every error of every file, each with its file,
line, column and config path.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote_plus, urlsplit

import msgspec

from sgtm import fields
from sgtm.alerts import AlertRules, AlertsConfig, check_alerts
from sgtm.consent import KNOWN_TYPES as CONSENT_TYPES
from sgtm.delivery.base import check_name
from sgtm.delivery.policy import (
    StoreConfig,
    StoreSpec,
    TagDeliveryConfig,
    check_store,
    check_tag_delivery,
    store_spec,
)
from sgtm.ingress import BadHost, host_name
from sgtm.plugin import Client, Tag
from sgtm.plugins import Registry
from sgtm.privacy import PrivacyPolicy, parse_networks
from sgtm.redact import Redactor
from sgtm.scope import BUILTINS, BoundVariable
from sgtm.suggest import hint
from sgtm.templates import (
    Renderer,
    TemplateError,
    compile_value,
    has_template,
    references,
    walk_references,
)
from sgtm.transformations import Transformation
from sgtm.triggers import Condition, ConditionError, compile_condition
from sgtm.yamlsource import (
    ConfigError,
    ConfigErrors,
    Source,
    join_path,
    load,
    load_section,
    parent_path,
)

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class PrivacyConfig(_Strict):
    anonymize_ip: bool = False
    trusted_proxies: list[str] = []


class ConsentConfig(_Strict):
    default: Literal["granted", "denied"] = "granted"


class ClientConfig(_Strict):
    name: str
    type: str
    priority: int = 0
    # A server-to-server sender whose hits say which visitor they are about (`_uip`,
    # `ip_override`); otherwise only senders in privacy.trusted_proxies may name an IP.
    trust_hit_ip: bool = False
    settings: dict[str, Any] = {}


class TransformationConfig(_Strict):
    type: Literal["allow", "exclude", "augment"]
    params: list[str] = []
    set: dict[str, Any] = {}
    when: Any = None
    tags: list[str] | None = None
    tag_types: list[str] | None = None


class DedupeConfig(_Strict):
    key: str  # a template, e.g. "{{event.event_id}}"
    ttl: float = 86400.0


class TagConfig(_Strict):
    name: str
    type: str
    triggers: list[str] = []
    block: list[str] = []
    consent: list[str] = []
    settings: dict[str, Any] = {}
    dry_run: bool = False
    paused: bool = False
    dedupe: DedupeConfig | None = None
    delivery: TagDeliveryConfig | None = None  # overrides of the tag type's delivery defaults


class ContainerFile(_Strict):
    """The top level. Sections are decoded one element at a time to report every error."""

    version: Literal[1]
    name: str | None = None
    hosts: list[str] = []
    origins: list[str] = []
    privacy: PrivacyConfig = msgspec.field(default_factory=PrivacyConfig)
    consent: ConsentConfig = msgspec.field(default_factory=ConsentConfig)
    clients: list[Any] = []
    variables: dict[str, Any] = {}
    triggers: dict[str, Any] = {}
    transformations: list[Any] = []
    tags: list[Any] = []
    delivery: StoreConfig | None = None  # the outbox store; every container must agree
    alerts: AlertsConfig | None = None  # the operator's webhook (sgtm/alerts.py)
    # Environment variables whose values are secrets wherever they are used, besides the values
    # of settings that plugins declare `Secret`.
    secrets: list[str] = []


@dataclass(slots=True)
class ClientSpec:
    name: str
    type: Client[Any]
    settings: Any
    priority: int
    trust_hit_ip: bool = False


@dataclass(slots=True)
class TagSpec:
    name: str
    type_name: str
    type: Tag[Any]
    triggers: tuple[Condition, ...]
    block: tuple[Condition, ...]
    consent: tuple[str, ...]
    # The decoded Struct. With templates (render_settings) the container renders it per event;
    # the engine still logs in with this one (credential settings are never templated).
    settings: Any
    render_settings: Renderer | None
    dry_run: bool
    paused: bool
    dedupe: tuple[Renderer, float] | None
    transformations: tuple[Transformation, ...] = ()
    delivery: TagDeliveryConfig | None = None
    # The names of `triggers` and `block` as written, for reports (`sgtm audit`).
    trigger_names: tuple[str, ...] = ()
    block_names: tuple[str, ...] = ()


@dataclass
class ContainerSpec:
    name: str
    file: str
    hosts: tuple[str, ...]
    origins: tuple[str, ...]
    privacy: PrivacyPolicy
    consent_default_granted: bool
    clients: list[ClientSpec]
    variables: dict[str, BoundVariable]
    tags: list[TagSpec]
    secrets: dict[str, str] = field(default_factory=dict)  # value -> env var name
    source: Source | None = None  # positions, for errors found across files
    warnings: list[ConfigError] = field(default_factory=list)
    delivery: StoreConfig | None = None
    alerts: AlertRules | None = None


def validation_message(exc: msgspec.ValidationError) -> tuple[str, str, bool]:
    """Split msgspec's message into (relative path, message, points at a key)."""
    text = str(exc)
    path = ""
    match = re.search(r" - at `\$(.*)`$", text)
    if match:
        text = text[: match.start()]
        path = match.group(1).lstrip(".")
    unknown = re.match(r"Object contains unknown field `(.+)`$", text)
    if unknown:
        return join_path(path, unknown.group(1)), "unknown key", True
    missing = re.match(r"Object missing required field `(.+)`$", text)
    if missing:
        return join_path(path, missing.group(1)), "required", False
    return path, text, False


def _join(base: str, rel: str) -> str:
    if not rel:
        return base
    if rel.startswith("["):
        return base + rel
    return f"{base}.{rel}" if base else rel


def _keys_at(typ: Any, rel: str) -> list[str]:
    """The keys the Struct at `rel` (a path inside `typ`) accepts, for "did you mean"."""
    info: Any = msgspec.inspect.type_info(typ)
    for part in re.split(r"\.|\[\d+\]", rel):
        if not part:
            continue
        info = _unwrap(info)
        if isinstance(info, msgspec.inspect.DictType):
            info = info.value_type
            continue
        if not isinstance(info, msgspec.inspect.StructType):
            return []
        found = next((f for f in info.fields if f.encode_name == part), None)
        if found is None:
            return []
        info = found.type
    info = _unwrap(info)
    if isinstance(info, msgspec.inspect.StructType):
        return [f.encode_name for f in info.fields]
    return []


def _unwrap(info: Any) -> Any:
    """Through optional, annotated and list types to the Struct (or dict) inside."""
    for _ in range(16):
        if isinstance(info, msgspec.inspect.Metadata):
            info = info.type
        elif isinstance(info, msgspec.inspect.UnionType):
            inner = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
            if not inner:
                return info
            info = inner[0]
        elif isinstance(info, (msgspec.inspect.ListType, msgspec.inspect.VarTupleType)):
            info = info.item_type
        else:
            return info
    return info


class _Loader:
    def __init__(self, source: Source, registry: Registry) -> None:
        self.src = source
        self.registry = registry
        self.errors: list[ConfigError] = list(source.errors)
        self.warnings: list[ConfigError] = []
        self.secrets: dict[str, str] = dict(source.secrets)  # value -> name, grows as we go
        self.redact = Redactor(source.secrets)
        # Names declared in the file, even when their definition is broken: a reference to them
        # is not a second error (the definition's own error says what is wrong).
        self.declared_variables: set[str] = set()
        self.declared_triggers: set[str] = set()
        self.declared_tags: set[str] = set()

    def error(self, path: str, message: str, *, at_key: bool = False) -> None:
        if path in self.src.failed:
            return  # the YAML loader's error there (an unset `${NAME}`) says it already
        self.errors.append(self.src.error(path, self.redact(message), at_key=at_key))

    def is_variable(self, name: str) -> bool:
        return name in self.declared_variables or name in BUILTINS

    def variable_hint(self, name: str) -> str:
        return hint(name, [*sorted(self.declared_variables), *BUILTINS])

    def condition_error(self, exc: ConditionError) -> None:
        message = str(exc)
        unknown = re.fullmatch(r"unknown variable '(.*)'", message, re.S)
        if unknown:
            message += self.variable_hint(unknown.group(1))
        self.error(exc.path, message, at_key=exc.at_key)

    def convert(self, data: Any, typ: type[Any], path: str) -> Any:
        try:
            return msgspec.convert(data, typ, strict=False)
        except msgspec.ValidationError as exc:
            self.validation_error(exc, typ, path)
        except re.error as exc:
            self.error(path, str(exc))
        return None

    def convert_each_key(self, data: Any, typ: type[Any], path: str) -> Any:
        """`convert` of a tag or client entry that reports every bad key, not only the first: a
        key in error is reported and left out, and the rest decoded again, so the entry's other
        checks (triggers, consent, settings) still run. None when a key it cannot do without
        (`name`, `type`, `settings`) is wrong; the file fails to load either way."""
        if not isinstance(data, dict):
            return self.convert(data, typ, path)
        essential = {"name", "type", "settings"}
        data = dict(data)
        for _ in range(len(data) + 1):
            try:
                return msgspec.convert(data, typ, strict=False)
            except msgspec.ValidationError as exc:
                rel = self.validation_error(exc, typ, path)
                key = re.split(r"[.\[]", rel, maxsplit=1)[0]
                if key in essential or key not in data:
                    return None
                del data[key]
        return None

    def validation_error(self, exc: msgspec.ValidationError, typ: type[Any], path: str) -> str:
        """Reports msgspec's error at its file position; returns its path relative to `path`."""
        rel, message, at_key = validation_message(exc)
        # A Settings __post_init__ check: "field: message" points at the field (of a nested
        # Struct too, such as a regex_table row).
        head, sep, rest = message.partition(": ")
        if sep and not rel and head in getattr(typ, "__struct_fields__", ()):
            rel, message = head, rest
        elif sep and rel and join_path(_join(path, rel), head) in self.src.value_pos:
            rel, message = join_path(rel, head), rest
        if at_key and message == "unknown key":
            key = rel.rpartition(".")[2]
            message += hint(key, _keys_at(typ, parent_path(rel)))
        self.error(_join(path, rel), message, at_key=at_key)
        return rel

    def top_level(self) -> ContainerFile | None:
        """Decode the top level section by section, so one bad section hides no other."""
        data = self.src.data
        if not isinstance(data, dict):
            self.error("", "a container must be a mapping (version: 1, clients: ..., tags: ...)")
            return None
        fields = set(ContainerFile.__struct_fields__)
        clean = {}
        for key, value in data.items():
            if key in fields:
                clean[key] = value
            else:
                self.error(key, "unknown key" + hint(key, fields), at_key=True)
        version = clean.get("version")
        if "version" not in clean:
            self.error("version", "required (this sgtm reads `version: 1`)", at_key=True)
        elif version != 1 or isinstance(version, bool):
            self.error("version", f"unsupported version {version!r}: this sgtm reads version 1")
        clean["version"] = 1
        for _ in range(len(fields)):
            try:
                return msgspec.convert(clean, ContainerFile, strict=False)
            except msgspec.ValidationError as exc:
                rel, message, at_key = validation_message(exc)
                if at_key and message == "unknown key":
                    key = rel.rpartition(".")[2]
                    message += hint(key, _keys_at(ContainerFile, parent_path(rel)))
                self.error(rel, message, at_key=at_key)
                clean.pop(re.split(r"[.\[]", rel, maxsplit=1)[0], None)
        return None

    def load(self) -> ContainerSpec | None:
        top = self.top_level()
        if top is None:
            return None
        name = top.name or Path(self.src.file).stem
        if top.name is not None and (problem := check_name(top.name)) is not None:
            self.error("name", f"container name {top.name!r} {problem}")
        hosts = self.hosts(top.hosts)
        origins = self.origins(top.origins)
        privacy = self.privacy(top.privacy)
        variables = self.variables(top.variables)
        triggers = self.triggers(top.triggers, variables)
        clients = self.clients(top.clients)
        if not top.clients:
            self.warnings.append(
                self.src.error(
                    "clients", "no clients: this container claims no request (only events fed in)"
                )
            )
        tags = self.tags(top.tags, triggers, variables)
        transformations = self.transformations(top.transformations, tags, variables)
        for tag in tags:
            tag.transformations = tuple(
                t for t in transformations if t.affects(tag.name, tag.type_name)
            )
        if top.delivery is not None:
            for rel, message in check_store(top.delivery):
                self.error(join_path("delivery", rel), message)
        self.listed_secrets(top.secrets)
        alerts = self.alerts(top.alerts, name) if top.alerts is not None else None
        if self.errors:
            # Secrets found after an error was worded are masked in it too.
            final = Redactor(self.secrets)
            self.errors = [dataclasses.replace(e, message=final(e.message)) for e in self.errors]
            return None
        return ContainerSpec(
            name=name,
            file=self.src.file,
            hosts=hosts,
            origins=origins,
            privacy=privacy or PrivacyPolicy(),
            consent_default_granted=top.consent.default == "granted",
            clients=sorted(clients, key=lambda c: -c.priority),  # stable: file order breaks ties
            variables=variables,
            tags=tags,
            secrets=self.secrets,
            source=self.src,
            warnings=self.warnings,
            delivery=top.delivery,
            alerts=alerts and dataclasses.replace(alerts, redact=Redactor(self.secrets)),
        )

    def alerts(self, cfg: AlertsConfig, container: str) -> AlertRules | None:
        """The webhook URL is a secret (a Slack URL is its own credential): it must come from
        the environment, and is masked wherever it could be shown."""
        path = "alerts.webhook.url"
        substituted = [(name, value) for name, value in self.src.env_values.get(path, []) if value]
        url_name = substituted[0][0] if substituted else "ALERTS_WEBHOOK_URL"
        for name, value in substituted:
            self.secrets[value] = name
        if cfg.webhook.url:
            self.secrets[cfg.webhook.url] = url_name
        if not substituted:
            self.error(path, "take the webhook URL from the environment (`${NAME}`): a secret")
        rules, problems = check_alerts(cfg, container, url_name)
        for rel, message in problems:
            self.error(join_path("alerts", rel), message)
        return rules

    def hosts(self, hosts: list[str]) -> tuple[str, ...]:
        out = []
        for i, host in enumerate(hosts):
            try:
                out.append(host_name(host))  # as requests' Host headers are compared
            except BadHost:
                self.error(join_path("hosts", i), f"'{host}' is not a host name")
        return tuple(out)

    def origins(self, origins: list[str]) -> tuple[str, ...]:
        out = []
        for i, origin in enumerate(origins):
            parts = urlsplit(origin.strip())
            if (
                parts.scheme not in ("http", "https")
                or not parts.netloc
                or parts.path not in ("", "/")
            ):
                self.error(
                    join_path("origins", i),
                    f"'{origin}' is not an origin (expected scheme://host[:port], no path or '*')",
                )
                continue
            out.append(f"{parts.scheme}://{parts.netloc}".lower())
        return tuple(out)

    def privacy(self, cfg: PrivacyConfig) -> PrivacyPolicy | None:
        try:
            networks = parse_networks(cfg.trusted_proxies)
        except ValueError as exc:
            self.error("privacy.trusted_proxies", str(exc))
            return None
        return PrivacyPolicy(anonymize_ip=cfg.anonymize_ip, trusted_proxies=networks)

    def variables(self, raw: dict[str, Any]) -> dict[str, BoundVariable]:
        out: dict[str, BoundVariable] = {}
        for name, spec in raw.items():
            path = join_path("variables", name)
            self.declared_variables.add(name)
            if not _NAME_RE.match(name):
                self.error(path, f"'{name}' is not a valid variable name", at_key=True)
                continue
            if name in BUILTINS:
                self.error(
                    path, f"'{name}' is a built-in variable and cannot be redefined", at_key=True
                )
                continue
            if not isinstance(spec, dict):
                self.error(path, "a variable must be a mapping with a `type`")
                continue
            type_name = spec.get("type")
            vtype = self.registry.variables.get(type_name) if isinstance(type_name, str) else None
            if type_name is None:
                known = ", ".join(sorted(self.registry.variables))
                self.error(path, f"a variable needs a `type` (one of: {known})")
                continue
            if vtype is None:
                known = ", ".join(sorted(self.registry.variables))
                self.error(
                    join_path(path, "type"),
                    f"unknown variable type {type_name!r}"
                    f"{hint(str(type_name), self.registry.variables)} (known: {known})",
                )
                continue
            raw = {k: v for k, v in spec.items() if k != "type"}
            self.declared_secrets(raw, vtype.Settings, path)
            settings = self.convert(raw, vtype.Settings, path)
            if settings is not None:
                out[name] = BoundVariable(name, vtype, settings)
        for name, bound in out.items():
            path = join_path("variables", name)
            for ref in bound.type.references(bound.settings):
                if not self.is_variable(ref):
                    message = f"unknown variable '{ref}'{self.variable_hint(ref)}"
                    self.error(join_path(path, "input"), message)
            self.check_templates(bound.settings and msgspec.to_builtins(bound.settings), path, out)
        return out

    def check_templates(self, value: Any, path: str, variables: dict[str, BoundVariable]) -> None:
        for rel, ref in walk_references(value):
            if ref.startswith("event.") or self.is_variable(ref):
                continue
            message = f"unknown variable '{ref}' in template{self.variable_hint(ref)}"
            self.error(_join(path, rel), message)

    def triggers(
        self, raw: dict[str, Any], variables: dict[str, BoundVariable]
    ) -> dict[str, Condition]:
        out: dict[str, Condition] = {}
        for name, spec in raw.items():
            path = join_path("triggers", name)
            self.declared_triggers.add(name)
            try:
                out[name] = compile_condition(spec, path, self.is_variable)
            except ConditionError as exc:
                self.condition_error(exc)
        return out

    def clients(self, raw: list[Any]) -> list[ClientSpec]:
        out: list[ClientSpec] = []
        seen: set[str] = set()
        for i, item in enumerate(raw):
            path = join_path("clients", i)
            cfg = self.convert_each_key(item, ClientConfig, path)
            if cfg is None:
                continue
            if cfg.name in seen:
                self.error(join_path(path, "name"), f"duplicate client name '{cfg.name}'")
            seen.add(cfg.name)
            ctype = self.registry.clients.get(cfg.type)
            if ctype is None:
                known = ", ".join(sorted(self.registry.clients))
                self.error(
                    join_path(path, "type"),
                    f"unknown client type '{cfg.type}'{hint(cfg.type, self.registry.clients)}"
                    f" (known: {known})",
                )
                continue
            settings_path = join_path(path, "settings")
            self.declared_secrets(cfg.settings, ctype.Settings, settings_path)
            settings = self.convert(cfg.settings, ctype.Settings, settings_path)
            if settings is not None:
                out.append(ClientSpec(cfg.name, ctype, settings, cfg.priority, cfg.trust_hit_ip))
        return out

    def tags(
        self, raw: list[Any], triggers: dict[str, Condition], variables: dict[str, BoundVariable]
    ) -> list[TagSpec]:
        out: list[TagSpec] = []
        seen: set[str] = set()
        for i, item in enumerate(raw):
            path = join_path("tags", i)
            cfg = self.convert_each_key(item, TagConfig, path)
            if cfg is None:
                continue
            if cfg.name in seen:
                self.error(join_path(path, "name"), f"duplicate tag name '{cfg.name}'")
            elif (problem := check_name(cfg.name)) is not None:
                self.error(join_path(path, "name"), f"tag name {cfg.name!r} {problem}")
            seen.add(cfg.name)
            self.declared_tags.add(cfg.name)
            self.consent_types(cfg.consent, join_path(path, "consent"))
            if not cfg.triggers and not cfg.paused:
                self.warnings.append(
                    self.src.error(
                        join_path(path, "name"),
                        f"tag '{cfg.name}' has no triggers: no event can fire it",
                    )
                )
            fire = self.trigger_refs(cfg.triggers, triggers, join_path(path, "triggers"))
            block = self.trigger_refs(cfg.block, triggers, join_path(path, "block"))
            ttype = self.registry.tags.get(cfg.type)
            if ttype is None:
                known = ", ".join(sorted(self.registry.tags))
                self.error(
                    join_path(path, "type"),
                    f"unknown tag type '{cfg.type}'{hint(cfg.type, self.registry.tags)}"
                    f" (known: {known})",
                )
                continue
            settings_path = join_path(path, "settings")
            self.check_templates(cfg.settings, settings_path, variables)
            self.declared_secrets(cfg.settings, ttype.Settings, settings_path)
            settings = self.convert(cfg.settings, ttype.Settings, settings_path)
            render = self.compile_settings(cfg.settings, ttype.Settings, settings_path)
            dedupe = None
            if cfg.dedupe is not None:
                self.check_templates(cfg.dedupe.key, join_path(path, "dedupe.key"), variables)
                dedupe = (compile_value(cfg.dedupe.key), cfg.dedupe.ttl)
            if cfg.delivery is not None:
                for rel, message in check_tag_delivery(cfg.delivery, ttype):
                    self.error(join_path(join_path(path, "delivery"), rel), message)
            if render and settings is not None and _templated_login(ttype, settings):
                # The engine obtains tokens once per tag, not per event: what the tag logs in
                # with must be fixed (its other settings may still vary per event).
                self.error(
                    settings_path,
                    f"tag type {cfg.type!r} obtains credentials at run time: the settings it"
                    " logs in with cannot use {{templates}}",
                )
            if settings is None:
                continue
            out.append(
                TagSpec(
                    name=cfg.name,
                    type_name=cfg.type,
                    type=ttype,
                    triggers=fire,
                    block=block,
                    consent=tuple(cfg.consent),
                    settings=settings,
                    render_settings=render,
                    dry_run=cfg.dry_run,
                    paused=cfg.paused,
                    dedupe=dedupe,
                    delivery=cfg.delivery,
                    trigger_names=tuple(cfg.triggers),
                    block_names=tuple(cfg.block),
                )
            )
        return out

    def compile_settings(
        self, raw: dict[str, Any], settings_type: type[msgspec.Struct], path: str
    ) -> Renderer | None:
        """The per-event renderer of templated settings (None without templates); values in
        `Url` fields are encoded for their URL component."""
        if not has_template(raw):
            return None
        try:
            return compile_value(raw, fields.marked_paths(settings_type, "url"))
        except TemplateError as exc:
            self.error(_join(path, exc.path), str(exc))
            return None

    def declared_secrets(
        self, raw: dict[str, Any], settings_type: type[msgspec.Struct], path: str
    ) -> None:
        """Collect the values of the fields `settings_type` declares `Secret`: masked and sealed
        by the field they fill, whatever the name of the variable they came from."""
        for pattern in fields.marked_paths(settings_type, "secret"):
            for steps, value in fields.values_at(raw, pattern):
                if not isinstance(value, str) or not value:
                    continue
                where = path
                for step in steps:
                    where = join_path(where, step)
                if has_template(value):
                    self.templated_secret(value, where)
                    continue
                substituted = self.src.env_values.get(where)
                if substituted:
                    for name, secret in substituted:
                        if secret:
                            self.secrets[secret] = name
                    continue
                self.secrets[value] = re.sub(r"[^A-Za-z0-9]+", "_", where).strip("_").upper()
                self.warnings.append(
                    self.src.error(
                        where,
                        "a secret written in the file: take it from the environment (`${NAME}`)"
                        " so it stays out of version control",
                    )
                )

    def templated_secret(self, value: str, where: str) -> None:
        """A secret chosen per event from variables (a lookup of per-account keys): every value
        those variables' definitions take from the environment is a secret. Event data itself
        can never fill a secret."""
        for name in references(value):
            if name.startswith("event."):
                self.error(
                    where,
                    f"a secret cannot come from event data ({{{{{name}}}}}): take it from the"
                    " environment (`${NAME}`), or pick it with a lookup variable",
                )
                continue
            prefix = join_path("variables", name)
            for path, subs in self.src.env_values.items():
                if path == prefix or path.startswith((prefix + ".", prefix + "[")):
                    self.secrets.update((secret, env) for env, secret in subs if secret)

    def listed_secrets(self, names: list[str]) -> None:
        used = {name: value for subs in self.src.env_values.values() for name, value in subs}
        for i, name in enumerate(names):
            if name in used:
                if used[name]:
                    self.secrets[used[name]] = name
            else:
                self.warnings.append(
                    self.src.error(
                        join_path("secrets", i), f"no `${{{name}}}` in this file uses this secret"
                    )
                )

    def consent_types(self, names: list[str], path: str) -> None:
        for i, name in enumerate(names):
            if name not in CONSENT_TYPES:
                known = ", ".join(CONSENT_TYPES)
                self.error(
                    join_path(path, i),
                    f"unknown consent type '{name}'{hint(name, CONSENT_TYPES)} (known: {known})",
                )

    def trigger_refs(
        self, names: list[str], triggers: dict[str, Condition], path: str
    ) -> tuple[Condition, ...]:
        out = []
        for i, name in enumerate(names):
            if name in triggers:
                out.append(triggers[name])
            elif name not in self.declared_triggers:
                message = f"unknown trigger '{name}'{hint(name, sorted(self.declared_triggers))}"
                self.error(join_path(path, i), message)
        return tuple(out)

    def transformations(
        self, raw: list[Any], tags: list[TagSpec], variables: dict[str, BoundVariable]
    ) -> list[Transformation]:
        tag_names = {t.name for t in tags}
        out: list[Transformation] = []
        for i, item in enumerate(raw):
            path = join_path("transformations", i)
            cfg = self.convert(item, TransformationConfig, path)
            if cfg is None:
                continue
            for j, name in enumerate(cfg.tags or []):
                if name not in tag_names:
                    # A warning, not an error: DESIGN's minimal example names a tag that its own
                    # container lacks, and every build must accept that example.
                    message = (
                        f"no tag named '{name}'{hint(name, sorted(self.declared_tags))}:"
                        " this transformation affects no tag by it"
                    )
                    self.warnings.append(
                        self.src.error(join_path(join_path(path, "tags"), j), message)
                    )
            for j, name in enumerate(cfg.tag_types or []):
                if name not in self.registry.tags:
                    self.error(
                        join_path(join_path(path, "tag_types"), j), f"unknown tag type '{name}'"
                    )
            if cfg.type in ("allow", "exclude") and not cfg.params:
                self.error(join_path(path, "params"), f"`{cfg.type}` needs a list of params")
            if cfg.type == "augment" and not cfg.set:
                self.error(join_path(path, "set"), "`augment` needs `set: {param: value}`")
            self.check_templates(cfg.set, join_path(path, "set"), variables)
            when = None
            if cfg.when is not None:
                try:
                    when = compile_condition(cfg.when, join_path(path, "when"), self.is_variable)
                except ConditionError as exc:
                    self.condition_error(exc)
            out.append(
                Transformation(
                    kind=cfg.type,
                    params=tuple(cfg.params),
                    set=tuple((k, compile_value(v)) for k, v in cfg.set.items()),
                    when=when,
                    tags=frozenset(cfg.tags) if cfg.tags is not None else None,
                    tag_types=frozenset(cfg.tag_types) if cfg.tag_types is not None else None,
                )
            )
        return out


def _templated_login(tag: Tag[Any], settings: Any) -> bool:
    """Whether the token request a tag builds from its load-time settings holds a template."""
    if type(tag).auth_request is Tag.auth_request:
        return False
    try:
        request = tag.auth_request(settings)
    except Exception:
        return True
    if request is None:
        return False
    body = request.body.decode("utf-8", "replace")
    text = "".join([request.url, *request.headers.values(), body, unquote_plus(body)])
    return has_template(text)


def load_text(
    text: str, file: str, registry: Registry, environ: dict[str, str] | None = None
) -> ContainerSpec:
    source = load(text, file, environ)
    loader = _Loader(source, registry)
    spec = loader.load()
    if spec is None:
        raise ConfigErrors(loader.errors)
    return spec


def config_files(paths: list[str | Path]) -> list[Path]:
    """Files named, plus every *.yaml / *.yml inside directories named (sorted)."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(
                sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            )
        else:
            out.append(path)
    return out


def delivery_store(paths: list[str | Path], environ: dict[str, str] | None = None) -> StoreSpec:
    """The store the files' `delivery:` sections name, read as `load_containers` reads them
    (substitution, checks, agreement) but without the rest of the files, so a command that only
    opens the store (`sgtm dlq`) needs no vendor secret. ConfigErrors otherwise."""
    errors: list[ConfigError] = []
    owner: tuple[str, StoreSpec] | None = None
    for file in config_files(paths):
        try:
            source = load_section(file.read_text(encoding="utf-8"), str(file), "delivery", environ)
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(ConfigError(str(file), 1, 1, "", f"cannot read file: {exc}"))
            continue
        except ConfigErrors as exc:
            errors.extend(exc.errors)
            continue
        if source is None or source.data["delivery"] is None:
            continue
        try:
            cfg = msgspec.convert(source.data["delivery"], StoreConfig, strict=False)
        except msgspec.ValidationError as exc:
            rel, message, at_key = validation_message(exc)
            errors.append(source.error(_join("delivery", rel), message, at_key=at_key))
            continue
        problems = check_store(cfg)
        errors.extend(source.error(join_path("delivery", rel), text) for rel, text in problems)
        if problems:
            continue
        spec = store_spec(cfg)
        if owner is None:
            owner = (str(file), spec)
        elif spec != owner[1]:
            errors.append(source.error("delivery", _other_store(spec, owner[0], owner[1])))
    if errors:
        raise ConfigErrors(errors)
    return owner[1] if owner else store_spec(None)


def _other_store(mine: StoreSpec, other_file: str, theirs: StoreSpec) -> str:
    return (
        f"delivery store ({mine.describe()}) differs from {other_file}"
        f" ({theirs.describe()}): one process uses one store"
    )


def load_containers(
    paths: list[str | Path], registry: Registry, environ: dict[str, str] | None = None
) -> list[ContainerSpec]:
    """Load and cross-check every container; raises ConfigErrors with all problems of all files."""
    errors: list[ConfigError] = []
    specs: list[ContainerSpec] = []
    files = config_files(paths)
    if not files:
        raise ConfigErrors(
            [ConfigError(str(p), 1, 1, "", "no *.yaml container files found") for p in paths]
        )
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(ConfigError(str(file), 1, 1, "", f"cannot read file: {exc}"))
            continue
        try:
            specs.append(load_text(text, str(file), registry, environ))
        except ConfigErrors as exc:
            errors.extend(exc.errors)
    errors.extend(_cross_check(specs))
    if errors:
        raise ConfigErrors(errors)
    return specs


def _error(spec: ContainerSpec, path: str, message: str) -> ConfigError:
    if spec.source is None:
        return ConfigError(spec.file, 1, 1, path, message)
    return spec.source.error(path, message)


def _cross_check(specs: list[ContainerSpec]) -> list[ConfigError]:
    errors = []
    owner: dict[str, ContainerSpec] = {}
    default: ContainerSpec | None = None
    names: dict[str, ContainerSpec] = {}
    store_owner: ContainerSpec | None = None
    for spec in specs:
        if spec.delivery is not None:
            # One process has one outbox: containers that name a store must name the same one.
            if store_owner is not None and store_owner.delivery is not None:
                mine, theirs = store_spec(spec.delivery), store_spec(store_owner.delivery)
                if mine != theirs:
                    message = _other_store(mine, store_owner.file, theirs)
                    errors.append(_error(spec, "delivery", message))
            else:
                store_owner = spec
        if spec.name in names:
            other = names[spec.name].file
            errors.append(
                _error(spec, "name", f"container name '{spec.name}' also used by {other}")
            )
        names[spec.name] = spec
        if not spec.hosts:
            if default is not None:
                message = f"a second default container (no hosts); {default.file} is one"
                errors.append(_error(spec, "version", message))
            default = spec
        for i, host in enumerate(spec.hosts):
            if host in owner:
                message = f"host '{host}' is also claimed by {owner[host].file}"
                errors.append(_error(spec, join_path("hosts", i), message))
            owner[host] = spec
    return errors
