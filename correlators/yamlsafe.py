"""Safe YAML loading for SOC-authored files: no object construction, duplicate keys rejected, lines kept.

`yaml.SafeLoader` never builds Python objects from tags; on top of that a duplicate key (which plain YAML
silently resolves to the last value) is an error, and every mapping key remembers its line so validation
errors can say `file:line`.

Sizes are bounded before anything is built, so a hostile or mistaken file is one clear error rather than a
RecursionError or minutes of work: at most `MAX_BYTES` per file, `MAX_DEPTH` levels of nesting and `MAX_NODES`
nodes per file (an alias counts as the nodes it repeats, so anchors cannot multiply a small file).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import yaml

from correlators.errors import InputError

# (id of mapping, key) -> 1-based line of the key
KeyLines = dict[tuple[int, Hashable], int]

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 250_000


def _loader_class(key_lines: KeyLines, path: Path, error_type: type[InputError]) -> type[yaml.SafeLoader]:
    sizes: dict[int, int] = {}  # id of a composed node -> nodes in it (itself included)

    class _LineLoader(yaml.SafeLoader):
        _depth = 0
        _nodes = 0

        def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
            where = f"{path}:{self.peek_event().start_mark.line + 1}"  # type: ignore[no-untyped-call]
            if self.check_event(yaml.AliasEvent):  # the anchored node again: count what it repeats
                node = super().compose_node(parent, index)
                self._count(sizes.get(id(node), 1), where)
                return node
            if self._depth >= MAX_DEPTH:
                raise error_type(f"YAML nested more than {MAX_DEPTH} levels deep", where=where)
            before = self._nodes
            self._count(1, where)
            self._depth += 1
            try:
                node = super().compose_node(parent, index)
            finally:
                self._depth -= 1
            sizes[id(node)] = self._nodes - before
            return node

        def _count(self, nodes: int, where: str) -> None:
            self._nodes += nodes
            if self._nodes > MAX_NODES:
                raise error_type(f"more than {MAX_NODES:,} YAML nodes in one file: split or shorten it", where=where)

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
            mapping: dict[Hashable, Any] = {}
            for key_node, value_node in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in mapping:
                    raise error_type(f"duplicate key {key!r}", where=f"{path}:{key_node.start_mark.line + 1}")
                mapping[key] = self.construct_object(value_node, deep=deep)
                key_lines[(id(mapping), key)] = key_node.start_mark.line + 1
            return mapping

    _LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping)
    return _LineLoader


def load_yaml_documents(path: Path, error_type: type[InputError]) -> tuple[list[Any], KeyLines]:
    """Every document of a YAML file, safely; errors name the file and line."""
    key_lines: KeyLines = {}
    try:
        if path.stat().st_size > MAX_BYTES:
            raise error_type(f"file larger than {MAX_BYTES // (1024 * 1024)} MiB", where=str(path))
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise error_type(f"cannot read: {error}", where=str(path)) from None
    try:
        documents = list(yaml.load_all(text, Loader=_loader_class(key_lines, path, error_type)))
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else None
        where = f"{path}:{line}" if line else str(path)
        raise error_type(f"invalid YAML: {error.problem}", where=where) from None
    except yaml.YAMLError as error:
        raise error_type(f"invalid YAML: {error}", where=str(path)) from None
    return [d for d in documents if d is not None], key_lines


def load_yaml_mapping(path: Path, error_type: type[InputError]) -> tuple[dict[str, Any], KeyLines]:
    """A single-document YAML file whose top level is a mapping (an empty file is an empty mapping)."""
    documents, key_lines = load_yaml_documents(path, error_type)
    if not documents:
        return {}, key_lines
    if len(documents) > 1 or not isinstance(documents[0], dict):
        raise error_type("expected one YAML mapping at the top level", where=f"{path}:1")
    return documents[0], key_lines


def locate(path: Path, key_lines: KeyLines, loc: Sequence[Any], document: Any) -> str:
    """`path:line` of the deepest key of a validation-error location (`("guards", "protected_principals", 0)`)."""
    line: int | None = None
    node = document
    for part in loc:
        if isinstance(node, dict) and part in node:
            line = key_lines.get((id(node), part), line)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            break
    return f"{path}:{line}" if line else str(path)
