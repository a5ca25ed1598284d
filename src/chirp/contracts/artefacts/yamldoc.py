"""YAML documents whose mappings and sequences remember their lines (PyYAML node marks).

The documents are composed by PyYAML (its C parser when available) and constructed by its
safe constructor, except that mappings become `Map` and sequences `Seq`, which carry the
1-based line of themselves and of each key or item, so a finding can name the exact line.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from chirp.contracts.artefacts.model import Problem
from chirp.contracts.model import Location


class Map(dict[Any, Any]):
    """A YAML mapping with `line` (its first line) and the line of each key."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class Seq(list[Any]):
    """A YAML sequence with `line` and the line of each item."""

    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


@functools.cache
def _loader() -> type:
    import yaml

    base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc]
        """The safe loader, building `Map` and `Seq`."""

    def construct_map(loader: Any, node: Any) -> Iterator[Map]:
        data = Map()
        data.line = node.start_mark.line + 1
        data.key_lines = {}
        yield data
        loader.flatten_mapping(node)  # `<<` merge keys, as the safe loader does
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # a complex key: no Kubernetes or Compose field looks like that
            data[key] = loader.construct_object(value_node, deep=True)
            data.key_lines[key] = key_node.start_mark.line + 1

    def construct_seq(loader: Any, node: Any) -> Iterator[Seq]:
        data = Seq()
        data.line = node.start_mark.line + 1
        data.item_lines = [child.start_mark.line + 1 for child in node.value]
        yield data
        data.extend(loader.construct_object(child, deep=True) for child in node.value)

    Loader.add_constructor("tag:yaml.org,2002:map", construct_map)
    Loader.add_constructor("tag:yaml.org,2002:seq", construct_seq)
    return Loader


def load_documents(path: str, text: str) -> tuple[list[Any], Problem | None]:
    """Every document of a (multi-document) YAML file; a syntax error is a `Problem` with its line.

    Documents before the error are kept, so one bad document does not hide the others.
    """
    import yaml

    docs: list[Any] = []
    try:
        for doc in yaml.load_all(text, Loader=_loader()):  # a safe loader
            docs.append(doc)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{context}, {problem}" if context else str(problem)
        return docs, Problem(f"not valid YAML: {detail} (line {line})", Location(path, line), "yaml")
    return docs, None


def line(node: Any, key: Any = None, default: int = 1) -> int:
    """The line of `node` (or of `key` in it), falling back to `default`."""
    if isinstance(node, Map):
        return node.line_of(key) if key is not None else node.line
    if isinstance(node, Seq):
        return node.line_of(key) if isinstance(key, int) else node.line
    return default
