"""A JSON Schema of the container format, including every installed plugin's settings.

Editors (VS Code's YAML extension, JetBrains) use it to autocomplete and check container files:
`# yaml-language-server: $schema=./sgtm.schema.json` at the top of the YAML.
"""

from __future__ import annotations

from typing import Any

import msgspec

from sgtm.config import ClientConfig, ConsentConfig, DedupeConfig, PrivacyConfig, TagConfig
from sgtm.consent import KNOWN_TYPES
from sgtm.delivery.policy import StoreConfig, TagDeliveryConfig
from sgtm.plugins import Registry
from sgtm.triggers import OPERATORS


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/$defs/{name}"}


def container_schema(registry: Registry) -> dict[str, Any]:
    settings_types: list[type[Any]] = [
        PrivacyConfig,
        ConsentConfig,
        DedupeConfig,
        StoreConfig,
        TagDeliveryConfig,
    ]
    for table in (registry.clients, registry.tags, registry.variables):
        settings_types.extend(t.Settings for t in table.values())
    _, defs = msgspec.json.schema_components(settings_types, ref_template="#/$defs/{name}")

    def typed(kind: str, base: type[Any], types: dict[str, Any]) -> dict[str, Any]:
        shape = msgspec.json.schema_components([base], ref_template="#/$defs/{name}")[1][
            base.__name__
        ]
        variants = []
        for name, plugin_type in sorted(types.items()):
            props = dict(shape["properties"])
            props["type"] = {"const": name, "description": plugin_type.description}
            props["settings"] = _ref(plugin_type.Settings.__name__)
            if "consent" in props:
                props["consent"] = {"type": "array", "items": {"enum": list(KNOWN_TYPES)}}
            variants.append({**shape, "properties": props, "title": f"{kind} {name}"})
        return {"oneOf": variants} if variants else shape

    variable_variants = []
    for name, vtype in sorted(registry.variables.items()):
        settings = defs[vtype.Settings.__name__]
        props = {
            "type": {"const": name, "description": vtype.description},
            **settings.get("properties", {}),
        }
        variable_variants.append(
            {
                "type": "object",
                "title": f"variable {name}",
                "properties": props,
                "required": ["type", *settings.get("required", [])],
                "additionalProperties": False,
            }
        )

    leaf_props: dict[str, Any] = {
        "var": {"type": "string"},
        "key": {"type": "string"},
        "ignore_case": {"type": "boolean"},
    }
    for op in OPERATORS:
        leaf_props[op] = {}
        leaf_props[f"not_{op}"] = {}
    defs["Condition"] = {
        "description": "all / any / not, `event_name: X`, or a leaf {var|key: NAME, OP: VALUE}",
        "anyOf": [
            {"type": "array", "items": _ref("Condition")},
            {
                "type": "object",
                "properties": {"all": {"type": "array", "items": _ref("Condition")}},
                "required": ["all"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {"any": {"type": "array", "items": _ref("Condition")}},
                "required": ["any"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {"not": _ref("Condition")},
                "required": ["not"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {"event_name": {"type": "string"}},
                "required": ["event_name"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": leaf_props,
                "additionalProperties": False,
                "minProperties": 2,
            },
        ],
    }
    transformation = {
        "type": "object",
        "properties": {
            "type": {"enum": ["allow", "exclude", "augment"]},
            "params": {"type": "array", "items": {"type": "string"}},
            "set": {"type": "object"},
            "when": _ref("Condition"),
            "tags": {"type": "array", "items": {"type": "string"}},
            "tag_types": {"type": "array", "items": {"enum": sorted(registry.tags)}},
        },
        "required": ["type"],
        "additionalProperties": False,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sgtm container (version 1)",
        "type": "object",
        "properties": {
            "version": {"const": 1},
            "name": {"type": "string"},
            "hosts": {"type": "array", "items": {"type": "string"}},
            "origins": {"type": "array", "items": {"type": "string", "format": "uri"}},
            "privacy": _ref("PrivacyConfig"),
            "consent": _ref("ConsentConfig"),
            "clients": {"type": "array", "items": typed("client", ClientConfig, registry.clients)},
            "variables": {"type": "object", "additionalProperties": {"oneOf": variable_variants}},
            "triggers": {"type": "object", "additionalProperties": _ref("Condition")},
            "transformations": {"type": "array", "items": transformation},
            "tags": {"type": "array", "items": typed("tag", TagConfig, registry.tags)},
            "delivery": _ref("StoreConfig"),
        },
        "required": ["version"],
        "additionalProperties": False,
        "$defs": defs,
    }
