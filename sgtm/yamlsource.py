"""YAML loading that remembers where every value came from.

msgspec checks types but reports paths like `$.tags[0].settings`, not lines. So the loader composes
PyYAML's node tree itself, builds plain Python values from it, and keeps a map from config path
(`tags[0].settings.pixel_id`) to the line and column of the key and of the value. Every later
error looks its position up here.

It also does `${ENV}` substitution (with the position of the scalar that asked for it), rejects
duplicate keys (PyYAML silently keeps the last one) and caps alias expansion, so a hostile file
cannot make the loader build a billion nodes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

MAX_NODES = 200_000
_ENV_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# A safety net besides declared secrets (`Secret` settings, the `secrets:` list): values of
# environment variables with names like these are masked too.
SECRET_NAME_RE = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|KEY|CREDENTIAL|PRIVATE|AUTH", re.IGNORECASE
)


@dataclass(frozen=True)
class ConfigError:
    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.column}: {where}{self.message}"


class ConfigErrors(Exception):
    """All the problems found in one or more files, in file order."""

    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass
class Source:
    """A loaded document: its data and where each path sits in the file."""

    file: str
    data: Any
    value_pos: dict[str, tuple[int, int]] = field(default_factory=dict)
    key_pos: dict[str, tuple[int, int]] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # secret value -> env var name
    # config path -> [(env var name, value)] for every `${NAME}` substituted there
    env_values: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    # Problems met while building the data (a missing environment variable, a duplicate key),
    # which `load` leaves to its caller so the rest of the file is checked too, and the paths
    # they are at (their value is "" or None: other errors there would only repeat them).
    errors: list[ConfigError] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)

    def error(self, path: str, message: str, *, at_key: bool = False) -> ConfigError:
        line, column = self.position(path, at_key=at_key)
        return ConfigError(self.file, line, column, path, message)

    def position(self, path: str, *, at_key: bool = False) -> tuple[int, int]:
        """The closest known position: the path itself, else its nearest ancestor."""
        probe = path
        while True:
            table = self.key_pos if at_key else self.value_pos
            if probe in table:
                return table[probe]
            if at_key and probe in self.value_pos:
                return self.value_pos[probe]
            if not probe:
                return (1, 1)
            probe = parent_path(probe)


def join_path(base: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key


def parent_path(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    return path.rpartition(".")[0]


def load(
    text: str, file: str, environ: Mapping[str, str] | None = None, *, substitute: bool = True
) -> Source:
    """Parse YAML text into a Source. Raises ConfigErrors when the text is not YAML; problems
    met while building its values (a missing environment variable, a duplicate key) are in
    `Source.errors`, so the caller checks the rest of the file too and reports them all.
    `substitute=False` keeps `${NAME}` as written (scenario files compare output that shows
    secrets so)."""
    builder = _Builder(file, os.environ if environ is None else environ)
    builder.substitute_env = substitute
    node = _compose(text, file)
    try:
        data = builder.build(node, "")
    except RecursionError:
        raise ConfigErrors([ConfigError(file, 1, 1, "", _TOO_DEEP)]) from None
    source = Source(file, data, builder.value_pos, builder.key_pos, builder.secrets)
    source.env_values = builder.env_values
    source.errors = builder.errors
    source.failed = builder.failed
    if builder.count > MAX_NODES:  # the rest was not built: checking it would only mislead
        raise ConfigErrors(builder.errors)
    return source


def load_section(
    text: str, file: str, key: str, environ: Mapping[str, str] | None = None
) -> Source | None:
    """Only the top-level `key` of a file, substituted and positioned as `load` builds it; the
    rest is parsed, not built (its environment variables need not be set). None without it."""
    builder = _Builder(file, os.environ if environ is None else environ)
    node = _compose(text, file)
    if not isinstance(node, yaml.MappingNode):
        return None
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            builder.key_pos[key] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            try:
                data = {key: builder.build(value_node, key)}
            except RecursionError:
                raise ConfigErrors([ConfigError(file, 1, 1, "", _TOO_DEEP)]) from None
            return builder.source(data)
    return None


def _compose(text: str, file: str) -> yaml.Node:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ConfigErrors([ConfigError(file, line, column, "", _for_people(exc))]) from None
    except yaml.YAMLError as exc:
        raise ConfigErrors([ConfigError(file, 1, 1, "", f"invalid YAML: {exc}")]) from None
    except RecursionError:
        raise ConfigErrors([ConfigError(file, 1, 1, "", _TOO_DEEP)]) from None
    if node is None:
        raise ConfigErrors([ConfigError(file, 1, 1, "", "the file is empty")])
    return node


def _for_people(exc: yaml.MarkedYAMLError) -> str:
    """PyYAML's parser message, said as what is most likely wrong in the file."""
    problem = exc.problem or exc.context or "invalid YAML"
    started = exc.context_mark
    since = f" (the block starts at line {started.line + 1})" if started is not None else ""
    if problem.startswith("expected <block end>"):
        return (
            "invalid YAML: bad indentation: this line is indented differently from the lines"
            f" of its block{since}"
        )
    if problem == "mapping values are not allowed here":
        return (
            "invalid YAML: unexpected ':': this line is indented more than the key above it"
            " (bad indentation), or a value containing ': ' needs quotes"
        )
    if "'\\t'" in problem:
        return "invalid YAML: a tab character: YAML indents with spaces only"
    if problem == "could not find expected ':'":
        return "invalid YAML: a line without 'key: value' (a ':' is missing, or bad indentation)"
    if exc.context == "while scanning a quoted scalar":
        opened = f" (it opens at line {started.line + 1})" if started is not None else ""
        return f"invalid YAML: a quoted string is never closed{opened}"
    if problem.startswith("did not find expected '-'"):
        return "invalid YAML: bad indentation: a list item ('- ') not aligned with the others"
    if problem.startswith("did not find expected key"):
        return f"invalid YAML: bad indentation: expected a key aligned with the others{since}"
    if problem.startswith("found undefined alias"):
        return f"invalid YAML: {problem} (an anchor must be defined with &name before *name)"
    if exc.context in ("while parsing a flow sequence", "while parsing a flow mapping"):
        opened = f" at line {started.line + 1}" if started is not None else ""
        return f"invalid YAML: {problem}: the [list] or {{mapping}} opened{opened} is not closed"
    return f"invalid YAML: {problem}"


_TOO_DEEP = "invalid YAML: nested too deeply"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Constructor(yaml.SafeLoader):
    """Builds scalars, and remembers each mapping's own keys before merge keys are flattened."""

    def __init__(self) -> None:
        super().__init__("")
        self.explicit: dict[int, set[int]] = {}  # id(mapping node) -> ids of its own key nodes
        self.bad_merges: list[yaml.Node] = []  # `<<:` values that are not mappings

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # Our own merge-key resolution: PyYAML 6.0.4 changed its flatten_mapping (it dedupes
        # merged keys by string identity, so `<<: [*a, *b]` let the later source win), and the
        # YAML merge rules must not depend on which PyYAML release is installed. Result: merged
        # pairs first, the last source listed first, so later pairs (this mapping's own keys,
        # then earlier sources) override earlier ones.
        if id(node) not in self.explicit:
            self.explicit[id(node)] = {id(k) for k, _ in node.value if k.tag != _MERGE_TAG}
        merge: list[tuple[yaml.Node, yaml.Node]] = []
        own: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                own.append((key_node, value_node))
                continue
            is_list = isinstance(value_node, yaml.SequenceNode)
            sources = value_node.value if is_list else [value_node]
            for source in reversed(sources):
                if not isinstance(source, yaml.MappingNode):
                    self.bad_merges.append(source)
                    continue
                self.flatten_mapping(source)
                merge.extend(source.value)
        node.value = merge + own


class _Builder:
    def __init__(self, file: str, env: Mapping[str, str]) -> None:
        self.file = file
        self.env = env
        self.errors: list[ConfigError] = []
        self.value_pos: dict[str, tuple[int, int]] = {}
        self.key_pos: dict[str, tuple[int, int]] = {}
        self.secrets: dict[str, str] = {}
        self.env_values: dict[str, list[tuple[str, str]]] = {}
        self.failed: set[str] = set()
        self.substitute_env = True
        self.count = 0
        self.scalars = _Constructor()

    def source(self, data: Any) -> Source:
        """What was built, or ConfigErrors with every problem met while building it."""
        if self.errors:
            raise ConfigErrors(self.errors)
        return Source(self.file, data, self.value_pos, self.key_pos, self.secrets, self.env_values)

    def fail(self, node: yaml.Node, path: str, message: str) -> None:
        mark = node.start_mark
        self.failed.add(path)
        self.errors.append(ConfigError(self.file, mark.line + 1, mark.column + 1, path, message))

    def build(self, node: yaml.Node, path: str) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            if self.count == MAX_NODES + 1:
                self.fail(node, path, f"document too large (more than {MAX_NODES} values)")
            return None
        self.value_pos[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            return self.build_mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, join_path(path, i)) for i, item in enumerate(node.value)]
        return self.build_scalar(node, path)

    def build_mapping(self, node: yaml.MappingNode, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self.scalars.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
        for bad in self.scalars.bad_merges:
            self.fail(bad, path, "a merge key (<<) takes a mapping or a list of mappings")
        self.scalars.bad_merges.clear()
        own_keys = self.scalars.explicit[id(node)]
        merged: set[str] = set()  # keys in `out` that came from a merge, not written here
        for key_node, value_node in node.value:
            key = (
                self.build_scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
            )
            if not isinstance(key, str):
                self.fail(key_node, path, "mapping keys must be strings")
                continue
            child = join_path(path, key)
            # Merged pairs come first, the last one listed first: a key written in this mapping
            # overrides a merged one, and an earlier merge source a later one (YAML merge rules).
            if key in out and key not in merged:
                self.fail(key_node, child, f"duplicate key '{key}'")
                continue
            if id(key_node) in own_keys:
                merged.discard(key)
            else:
                merged.add(key)
            self.key_pos[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = self.build(value_node, child)
        return out

    def build_scalar(self, node: yaml.Node, path: str) -> Any:
        try:
            value = self.scalars.construct_object(node, deep=True)
        except Exception as exc:  # an unknown tag (`!foo`) or a bad typed scalar (`!!int abc`)
            problem = getattr(exc, "problem", None) or f"{node.value!r} is not a valid {node.tag}"
            self.fail(node, path, f"invalid YAML value: {problem}")
            return None
        if isinstance(value, str) and "$" in value and self.substitute_env:
            return self.substitute(value, node, path)
        if isinstance(value, (bytes, bytearray)) or type(value).__module__ == "datetime":
            # YAML timestamps and binaries are not config values; keep what the user wrote.
            return str(node.value)
        return value

    def substitute(self, value: str, node: yaml.Node, path: str) -> str:
        missing: set[str] = set()  # each name reported once per value

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            found = self.env.get(name)
            if found is None or found == "":
                if default is not None:
                    self.env_values.setdefault(path, []).append((name, default))
                    return default
                if name not in missing:
                    missing.add(name)
                    self.fail(node, path, f"environment variable {name} is not set")
                return ""
            self.env_values.setdefault(path, []).append((name, found))
            # Short values of such names (KEY_COUNT=3) are not secrets, and masking them would
            # mask every "3"; declared secrets are masked whatever their length.
            if SECRET_NAME_RE.search(name) and len(found) >= 4:
                self.secrets[found] = name
            return found

        return _ENV_RE.sub(replace, value)
