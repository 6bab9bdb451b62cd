"""Rule files and their YAML documents, with the line of every key, so each error can say `path:line`.

pySigma's errors carry only the file (a rule parsed from a dict has no lines), so the line is found here: from the
error's kind (a `SigmaLevelError` is about the `level:` key), or by re-parsing each detection item on its own to
find the one that fails.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sigma.exceptions as sigma_errors
from sigma.rule import SigmaDetectionItem

from correlators.errors import RuleError
from correlators.yamlsafe import KeyLines, load_yaml_documents, locate

_RULE_SUFFIXES = (".yml", ".yaml")

# The key an error of each kind is about. Looked up along the error's class hierarchy, most specific first.
_ERROR_KEYS: dict[type[Exception], tuple[str, ...]] = {
    sigma_errors.SigmaTitleError: ("title",),
    sigma_errors.SigmaIdentifierError: ("id",),
    sigma_errors.SigmaNameError: ("name",),
    sigma_errors.SigmaLevelError: ("level",),
    sigma_errors.SigmaStatusError: ("status",),
    sigma_errors.SigmaTagError: ("tags",),
    sigma_errors.SigmaRelatedError: ("related",),
    sigma_errors.SigmaAuthorError: ("author",),
    sigma_errors.SigmaDescriptionError: ("description",),
    sigma_errors.SigmaReferencesError: ("references",),
    sigma_errors.SigmaFalsePositivesError: ("falsepositives",),
    sigma_errors.SigmaFieldsError: ("fields",),
    sigma_errors.SigmaScopeError: ("scope",),
    sigma_errors.SigmaLicenseError: ("license",),
    sigma_errors.SigmaTaxonomyError: ("taxonomy",),
    sigma_errors.SigmaLogsourceError: ("logsource",),
    sigma_errors.SigmaConditionError: ("detection", "condition"),
    sigma_errors.SigmaTimespanError: ("correlation", "timespan"),
    sigma_errors.SigmaCorrelationConditionError: ("correlation", "condition"),
    sigma_errors.SigmaCorrelationTypeError: ("correlation", "type"),
    sigma_errors.SigmaCorrelationRuleError: ("correlation",),
    sigma_errors.SigmaFilterConditionError: ("filter", "condition"),
    sigma_errors.SigmaFilterRuleReferenceError: ("filter", "rules"),
}


@dataclass
class RuleDocument:
    """One YAML document of a rule file: a detection rule, a correlation rule or a filter."""

    path: Path
    body: dict[str, Any]
    key_lines: KeyLines
    line: int | None  # first line of the document

    @property
    def section(self) -> str:
        """The key holding the detection logic: `detection` for rules, `filter` for filters."""
        return "filter" if "filter" in self.body else "detection"

    @property
    def references(self) -> set[str]:
        """The name and id other rules may use to reference this one."""
        return {str(self.body[key]) for key in ("name", "id") if self.body.get(key) is not None}

    def where(self, *loc: str | int) -> str:
        """`path:line` of the deepest key of `loc` present in the document, else of the document itself."""
        found = locate(self.path, self.key_lines, loc, self.body)
        if found != str(self.path):
            return found
        return f"{self.path}:{self.line}" if self.line else str(self.path)

    def where_error(self, error: Exception) -> str:
        """`path:line` of what a pySigma error is about."""
        if isinstance(error, sigma_errors.SigmaDateError):
            return self.where("modified" if "modified" in str(error) else "date")
        for kind in type(error).__mro__:
            if kind in _ERROR_KEYS:
                return self.where(*_ERROR_KEYS[kind])
        failing = self._failing_detection_item()
        return self.where(self.section, *failing) if failing else self.where()

    def where_detection(self, field: str | None, modifier: str | None) -> str:
        """`path:line` of the detection key that sets `field` (with `modifier`, if given)."""
        for loc, key, _ in self._detection_items():
            name, *modifiers = key.split("|") if key is not None else ("",)
            if (name or None) == field and (modifier is None or modifier in modifiers):
                return self.where(self.section, *loc)
        return self.where(self.section)

    def _failing_detection_item(self) -> tuple[str | int, ...] | None:
        for loc, key, value in self._detection_items():
            try:
                SigmaDetectionItem.from_mapping(key, value)
            except Exception:  # whatever pySigma raised on the whole rule, this item raises too
                return loc
        return None

    def _detection_items(self) -> Iterator[tuple[tuple[str | int, ...], str | None, Any]]:
        """(location, `field|modifiers` key or None for keywords, value) of every detection item."""
        section = self.body.get(self.section)
        if not isinstance(section, dict):
            return
        for name, definition in section.items():
            if name == "condition" or (name == "rules" and self.section == "filter"):
                continue
            if isinstance(definition, dict):
                for key, value in definition.items():
                    yield (name, key), key, value
            elif isinstance(definition, list) and any(isinstance(item, dict) for item in definition):
                for index, item in enumerate(definition):
                    if isinstance(item, dict):
                        for key, value in item.items():
                            yield (name, index, key), key, value
            else:
                yield (name,), None, definition


def rule_files(paths: Sequence[Path], errors: list[RuleError]) -> list[Path]:
    """Files as given, and folders searched for *.yml / *.yaml, leaving out rule tests (`*.tests`)."""
    found: dict[Path, Path] = {}
    for path in map(Path, paths):
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                relative = file.relative_to(path)
                if file.suffix in _RULE_SUFFIXES and file.is_file() and not _is_test(relative):
                    found.setdefault(file.resolve(), file)
        elif path.is_file():
            found.setdefault(path.resolve(), path)
        else:
            errors.append(RuleError("no such file or directory", where=str(path)))
    return list(found.values())


def _is_test(relative: Path) -> bool:
    # Rule authors keep test events beside rules in `<rule>.tests/` folders (and `<rule>.tests.yml` files).
    return any(part.endswith(".tests") for part in relative.parent.parts) or relative.stem.endswith(".tests")


def read_documents(path: Path) -> list[RuleDocument]:
    """Every document of a rule file, loaded safely (duplicate keys are errors). Raises RuleError."""
    bodies, key_lines = load_yaml_documents(path, RuleError)
    documents = []
    for number, body in enumerate(bodies, start=1):
        if not isinstance(body, dict):
            raise RuleError(f"YAML document {number} is not a mapping, so it is not a Sigma rule", where=str(path))
        lines = [key_lines[(id(body), key)] for key in body if (id(body), key) in key_lines]
        documents.append(RuleDocument(path, body, key_lines, min(lines) if lines else None))
    return documents
