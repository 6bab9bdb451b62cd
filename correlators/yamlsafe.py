"""Safe YAML loading for SOC-authored files: no object construction, duplicate keys rejected, lines kept.

`yaml.SafeLoader` never builds Python objects from tags; on top of that a duplicate key (which plain YAML
silently resolves to the last value) is an error, and every mapping key remembers its line so validation
errors can say `file:line`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import yaml

from correlators.errors import InputError

# (id of mapping, key) -> 1-based line of the key
KeyLines = dict[tuple[int, Hashable], int]


def _loader_class(key_lines: KeyLines, path: Path, error_type: type[InputError]) -> type[yaml.SafeLoader]:
    class _LineLoader(yaml.SafeLoader):
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
