"""What a plugin's Settings declare about their fields: which hold secrets (`sgtm.plugin.Secret`)
and which hold URLs the plugin sends to (`sgtm.plugin.Url`).

The config loader reads these marks to decide, by field and not by environment variable name,
which values are masked and sealed, and how templates in a field are encoded.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import msgspec
import msgspec.inspect as mi

ANY = "*"  # a path step matching every list index or mapping key

FieldPath = tuple[str, ...]


@cache
def marked_paths(settings: type[msgspec.Struct], mark: str) -> tuple[FieldPath, ...]:
    """Paths (by the names used in config) of the fields of `settings` marked `mark`
    ("secret" or "url"), through nested Structs, optionals, lists and mappings."""
    out: list[FieldPath] = []
    _walk(mi.type_info(settings), mark, (), out, set())
    return tuple(out)


def _walk(info: mi.Type, mark: str, path: FieldPath, out: list[FieldPath], seen: set[type]) -> None:
    if isinstance(info, mi.Metadata):
        if (info.extra or {}).get(mark):
            out.append(path)
            return
        _walk(info.type, mark, path, out, seen)
    elif isinstance(info, mi.StructType):
        if info.cls in seen:  # a recursive Struct: its marks were found the first time
            return
        seen = seen | {info.cls}
        for field in info.fields:
            _walk(field.type, mark, (*path, field.encode_name), out, seen)
    elif isinstance(info, mi.UnionType):
        for member in info.types:
            _walk(member, mark, path, out, seen)
    elif isinstance(info, mi.CollectionType):
        _walk(info.item_type, mark, (*path, ANY), out, seen)
    elif isinstance(info, mi.TupleType):
        for item in info.item_types:
            _walk(item, mark, (*path, ANY), out, seen)
    elif isinstance(info, mi.DictType):
        _walk(info.value_type, mark, (*path, ANY), out, seen)


def values_at(data: Any, path: FieldPath) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """(concrete path, value) for every value of raw config `data` at `path`."""
    if not path:
        yield (), data
        return
    step, rest = path[0], path[1:]
    if step == ANY:
        items: Any = (
            data.items()
            if isinstance(data, dict)
            else enumerate(data)
            if isinstance(data, list)
            else ()
        )
        for key, value in items:
            for sub, found in values_at(value, rest):
                yield (key, *sub), found
    elif isinstance(data, dict) and step in data:
        for sub, found in values_at(data[step], rest):
            yield (step, *sub), found


def matches(path: tuple[str | int, ...], patterns: tuple[FieldPath, ...]) -> bool:
    """Whether a concrete path is one of `patterns` (ANY matching any step)."""
    return any(
        len(p) == len(path) and all(s == ANY or s == str(k) for s, k in zip(p, path, strict=True))
        for p in patterns
    )
