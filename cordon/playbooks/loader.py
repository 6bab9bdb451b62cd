"""Loading playbooks in stages: YAML structure, the pydantic schema, then cross-references (responders, rules,
parameters). Every error names `file:line`, the bad value and the valid choices; lint mode collects them all."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cordon.playbooks.model import Playbook
from correlators.errors import PlaybookError
from correlators.yamlsafe import KeyLines, load_yaml_documents, locate
from responders.base import Responder


def playbook_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in {".yml", ".yaml"} and p.is_file()))
        else:
            files.append(path)
    return files


def load_playbooks(
    paths: Sequence[Path],
    responders: Mapping[str, type[Responder]],
    rules: Collection[str],
    *,
    collect_errors: bool = False,
) -> tuple[list[Playbook], list[PlaybookError]]:
    """Every playbook under `paths`. Without `collect_errors` the first error raises."""
    playbooks: list[Playbook] = []
    errors: list[PlaybookError] = []
    seen: dict[str, str] = {}
    for path in playbook_files(paths):
        try:
            documents, key_lines = load_yaml_documents(path, PlaybookError)
        except PlaybookError as error:
            errors.append(error)
            continue
        for document in documents:
            found = _load_document(path, document, key_lines, responders, rules)
            if isinstance(found, list):
                errors.extend(found)
                continue
            if found.name in seen:
                errors.append(
                    PlaybookError(f"playbook name {found.name!r} already used at {seen[found.name]}", found.source)
                )
                continue
            seen[found.name] = found.source
            playbooks.append(found)
    if errors and not collect_errors:
        raise errors[0]
    return playbooks, errors


def _load_document(
    path: Path, document: Any, key_lines: KeyLines, responders: Mapping[str, type[Responder]], rules: Collection[str]
) -> Playbook | list[PlaybookError]:
    if not isinstance(document, dict):
        return [PlaybookError("a playbook is a YAML mapping", str(path))]
    start = min((line for (mid, _), line in key_lines.items() if mid == id(document)), default=1)
    try:
        playbook = Playbook.model_validate({**document, "source": f"{path}:{start}"})
    except ValidationError as error:
        schema_errors = [
            PlaybookError(_message(e["loc"], e["msg"], e.get("input")), locate(path, key_lines, e["loc"], document))
            for e in error.errors()
        ]
        # Lint reports every error: the names a broken playbook refers to are still worth checking.
        return schema_errors + _raw_reference_errors(path, document, key_lines, responders, rules)
    errors = _raw_reference_errors(path, document, key_lines, responders, rules)
    errors += _parameter_errors(playbook, path, document, key_lines, responders)
    return errors or playbook


def _raw_reference_errors(
    path: Path,
    document: dict[str, Any],
    key_lines: KeyLines,
    responders: Mapping[str, type[Responder]],
    rules: Collection[str],
) -> list[PlaybookError]:
    """Unknown rules and responders, read from the raw document so a playbook failing the schema is checked too."""
    errors = []
    trigger = document.get("trigger")
    names = trigger.get("rules") if isinstance(trigger, dict) else None
    for index, rule in enumerate(names if isinstance(names, list) else []):
        if isinstance(rule, str) and rule not in rules:
            where = locate(path, key_lines, ("trigger", "rules", index), document)
            errors.append(PlaybookError(f"unknown rule {rule!r}, valid: {', '.join(sorted(rules))}", where))
    for section in ("steps", "notify"):
        entries = document.get(section)
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            name = entry.get("responder") if isinstance(entry, dict) else None
            if isinstance(name, str) and name not in responders:
                where = locate(path, key_lines, (section, index, "responder"), document)
                valid = ", ".join(sorted(responders))
                errors.append(PlaybookError(f"unknown responder {name!r}, valid: {valid}", where))
    return errors


def _message(loc: Sequence[Any], message: str, value: Any) -> str:
    where = ".".join(str(part) for part in loc) or "(top)"
    message = message.removeprefix("Value error, ")
    if message.startswith(("Input should be", "Extra inputs")) and not isinstance(value, dict | list):
        return f"{where}: {message} (got {value!r})"
    return f"{where}: {message}"


def _parameter_errors(
    playbook: Playbook,
    path: Path,
    document: dict[str, Any],
    key_lines: KeyLines,
    responders: Mapping[str, type[Responder]],
) -> list[PlaybookError]:
    errors = []

    def error(loc: tuple[Any, ...], message: str) -> None:
        errors.append(PlaybookError(message, locate(path, key_lines, loc, document)))

    step_names: set[str] = set()
    actions = [("steps", i, s.responder, s.params, s.bind) for i, s in enumerate(playbook.steps)]
    actions += [("notify", i, n.responder, n.params, n.bind) for i, n in enumerate(playbook.notify)]
    for section, index, name, params, bind in actions:
        if section == "steps":
            step_name = playbook.steps[index].name
            if step_name in step_names:
                error((section, index, "name"), f"step name {step_name!r} used twice in playbook {playbook.name!r}")
            step_names.add(step_name)
        spec = responders.get(name)
        if spec is None:
            continue  # reported by _raw_reference_errors
        valid = set(spec.Params.model_fields)
        for key in [*params, *bind]:
            if key not in valid:
                choices = ", ".join(sorted(valid)) or "(none)"
                where = "params" if key in params else "bind"
                error((section, index, where, key), f"{name}: unknown parameter {key!r}, valid: {choices}")
        both = set(params) & set(bind)
        for key in sorted(both):
            error((section, index, "bind", key), f"{name}: parameter {key!r} is both literal and bound")
    return errors
