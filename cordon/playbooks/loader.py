"""Loading playbooks in stages: YAML structure, the pydantic schema, then cross-references (responders, rules,
parameters). Every error names `file:line`, the bad value and the valid choices; lint mode collects them all."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import ValidationError

from cordon.playbooks.model import Playbook
from correlators.errors import PlaybookError
from correlators.model import EntityType
from correlators.yamlsafe import KeyLines, load_yaml_documents, locate
from responders.base import Responder


def playbook_files(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and folders searched for *.yml / *.yaml, leaving out playbook fixtures (`*.tests/`)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.suffix in {".yml", ".yaml"} and p.is_file() and not is_fixture(p.relative_to(path))
                )
            )
        else:
            files.append(path)
    return files


def is_fixture(relative: Path) -> bool:
    """A file inside a `<rule>.tests/` or `<playbook>.tests/` folder: a fixture, not a rule or a playbook."""
    return any(part.endswith(".tests") for part in relative.parent.parts)


def load_playbooks(
    paths: Sequence[Path],
    responders: Mapping[str, type[Responder]],
    rules: Collection[str],
    *,
    collect_errors: bool = False,
    site: Mapping[str, Any] | None = None,
) -> tuple[list[Playbook], list[PlaybookError]]:
    """Every playbook under `paths`. Without `collect_errors` the first error raises.

    With `site` (the config's site values; `cordon validate` passes them) every JMESPath expression is also run
    against a representative incident, so one that fails only on data (`starts_with` given a number) is an error
    here rather than a failed step at run time.
    """
    playbooks: list[Playbook] = []
    errors: list[PlaybookError] = []
    seen: dict[str, str] = {}
    for path in playbook_files(paths):
        try:
            documents, key_lines = load_yaml_documents(path, PlaybookError)
        except PlaybookError as error:
            errors.append(error)
            continue
        starts = _first_lines(key_lines)  # once per file: per document it made loading quadratic
        for document in documents:
            start = starts.get(id(document), 1)
            found = _load_document(path, document, start, key_lines, responders, rules)
            if isinstance(found, list):
                errors.extend(found)
                continue
            if site is not None:
                evaluation = _evaluation_errors(found, site, path, document, key_lines)
                if evaluation:
                    errors.extend(evaluation)
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


def _first_lines(key_lines: KeyLines) -> dict[int, int]:
    """The first key line of every mapping, by the mapping's id."""
    first: dict[int, int] = {}
    for (mapping, _), line in key_lines.items():
        if line < first.get(mapping, line + 1):
            first[mapping] = line
    return first


def _load_document(
    path: Path,
    document: Any,
    start: int,
    key_lines: KeyLines,
    responders: Mapping[str, type[Responder]],
    rules: Collection[str],
) -> Playbook | list[PlaybookError]:
    if not isinstance(document, dict):
        return [PlaybookError("a playbook is a YAML mapping", str(path))]
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
        for key, field in spec.Params.model_fields.items():
            if field.is_required() and key not in params and key not in bind:
                error((section, index), f"{name}: parameter {key!r} has no value and no binding")
        for loc, message in spec.lint(dict(params), dict(bind)):
            error((section, index, *loc), f"{name}: {message}")
    return errors


_SAMPLE_IDS = {
    EntityType.PRINCIPAL: "arn:aws:iam::111122223333:role/sample-role",
    EntityType.ACCESS_KEY: "AKIAIOSFODNN7EXAMPLE",
    EntityType.SESSION: "arn:aws:sts::111122223333:assumed-role/sample-role/session",
    EntityType.SOURCE_IP: "203.0.113.10",
    EntityType.ACCOUNT: "111122223333",
    EntityType.INSTANCE: "i-0123456789abcdef0",
    EntityType.BUCKET: "arn:aws:s3:::sample-bucket",
    EntityType.OBJECT: "s3://sample-bucket/sample/key",
}


def representative_incident(playbook: Playbook, site: Mapping[str, Any]) -> dict[str, Any]:
    """An incident as `--output json` prints it, naming one entity of every type and the playbook's rules."""
    rules = playbook.trigger.rules or ["sample-rule"]
    time = "2026-01-01T00:00:00+00:00"
    return {
        "id": "inc-0000000000000000",
        "title": "representative incident",
        "rules": rules,
        "severity": "critical",
        "first_seen": time,
        "last_seen": time,
        "entities": [{"type": kind.value, "id": _SAMPLE_IDS.get(kind, f"sample-{kind.value}")} for kind in EntityType],
        "signals": [
            {
                "rule": rule,
                "event_id": "sample-event",
                "time": time,
                "source": "cloudtrail",
                "principal": _SAMPLE_IDS[EntityType.PRINCIPAL],
                "object_version": f"{_SAMPLE_IDS[EntityType.OBJECT]}?versionId=sample-version",
            }
            for rule in rules
        ],
        "signal_count": len(rules),
        "rule_counts": dict.fromkeys(rules, 1),
        "actions": [],
        "site": dict(site),
    }


def _evaluation_errors(
    playbook: Playbook, site: Mapping[str, Any], path: Path, document: dict[str, Any], key_lines: KeyLines
) -> list[PlaybookError]:
    """Every expression of the playbook that raises on a representative incident (a type error, say)."""
    root = representative_incident(playbook, site)
    expressions: list[tuple[tuple[Any, ...], str]] = []
    for index, step in enumerate(playbook.steps):
        expressions.append((("steps", index, "target"), step.target))
        expressions += [(("steps", index, "when"), step.when)] if step.when else []
        expressions += [(("steps", index, "bind", name), e) for name, e in step.bind.items()]
    for index, notification in enumerate(playbook.notify):
        expressions += [(("notify", index, "when"), notification.when)] if notification.when else []
        expressions += [(("notify", index, "bind", name), e) for name, e in notification.bind.items()]
    errors = []
    for loc, expression in expressions:
        try:
            jmespath.search(expression, root)
        except (JMESPathError, TypeError, ValueError, ArithmeticError) as error:
            where = locate(path, key_lines, loc, document)
            field = ".".join(str(part) for part in loc)
            reason = str(error).splitlines()[0]
            errors.append(PlaybookError(f"{field}: {expression!r} fails on a representative incident: {reason}", where))
    return errors
