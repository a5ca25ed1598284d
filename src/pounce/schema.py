"""Describe `ServerConfig` for tools and humans: JSON Schema, a TOML template, redaction."""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from typing import Any, get_type_hints
from urllib.parse import urlsplit, urlunsplit

from pounce.config import ServerConfig

_SECRET_MARKERS = ("key", "secret", "password", "token", "dsn", "redis_url")
_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
_IN_WORDS = {"string": "a string", "integer": "a whole number", "number": "a number", "object": "a table"}


def _json_type(hint: Any) -> dict[str, Any]:
    text = str(hint)
    if "tuple" in text:
        return {"type": "array", "items": {"type": "string"}}
    if "Mapping" in text:
        return {"type": ["object", "null"]} if "None" in text else {"type": "object"}
    for name, kind in _TYPES.items():
        if text.startswith(name) or text.startswith(f"<class '{name}'>"):
            return {"type": [kind, "null"]} if "None" in text else {"type": kind}
    return {}


def _defaults() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(ServerConfig):
        if f.name == "extra":
            continue
        out[f.name] = f.default if f.default is not MISSING else None
    return out


def json_schema() -> dict[str, Any]:
    hints = get_type_hints(ServerConfig)
    props = {}
    for name, default in _defaults().items():
        entry = _json_type(hints[name])
        entry["default"] = list(default) if isinstance(default, tuple) else default
        props[name] = entry
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "pounce.toml",
        "type": "object",
        "additionalProperties": False,
        "properties": props,
    }


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def toml_template() -> str:
    """Every setting with its default, commented out: uncommenting a line leaves the setting as
    it was. A setting unset by default has no TOML value, so its line names its type instead."""
    lines = ["# pounce.toml: every setting with its default; uncomment what you change."]
    hints = get_type_hints(ServerConfig)
    for name, default in _defaults().items():
        if default is None:
            kinds = _json_type(hints[name]).get("type", [])
            kind = _IN_WORDS.get(kinds[0] if isinstance(kinds, list) and kinds else kinds, "a value")
            lines.append(f"# {name}: unset by default (set it to {kind})")
        else:
            lines.append(f"# {name} = {_toml_value(default)}")
    return "\n".join(lines)


def redacted(data: dict[str, Any]) -> dict[str, Any]:
    """The settings with secrets masked: a secret setting whole, and the credentials of any
    other URL (`otel_endpoint = "https://user:token@collector"`) keeping its host."""
    out = {}
    for name, value in data.items():
        if name == "extra":
            continue
        secret = any(m in name for m in _SECRET_MARKERS) and not name.endswith("file")
        if secret and value:
            value = "***"
        elif isinstance(value, str) and "@" in value:
            value = _without_credentials(value)
        out[name] = value
    return out


def _without_credentials(value: str) -> str:
    parts = urlsplit(value)
    if not parts.scheme or "@" not in parts.netloc:
        return value
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def to_toml(data: dict[str, Any]) -> str:
    return "\n".join(f"{k} = {_toml_value(v)}" for k, v in data.items() if v is not None)
