"""Playbook fixtures: an incident in, the planned steps out.

For `playbooks/my_playbook.yaml`, each `playbooks/my_playbook.tests/<case>.yaml` is one case:

```yaml
incident:                  # the incident as `cordon replay --output json` prints it (one of `incidents`)
  id: inc-0123
  rules: [ml_training_read_then_model_download]
  severity: high
  entities:
    - {type: principal, id: "arn:aws:iam::111122223333:user/ml-contractor"}
    - {type: access_key, id: AKIAIOSFODNN7EXAMPLE}
expect:                    # every action planned, in plan order; or `expect: not triggered`
  - {step: deactivate-access-key, responder: iam.deactivate-access-key, target: AKIAIOSFODNN7EXAMPLE, mode: enforce}
  - {step: "notify:notify.sns", responder: notify.sns, target: inc-0123, mode: enforce}
# optional:
playbook: contain-data-and-model-theft   # which playbook, when the file holds several
site: {sns_topic_arn: "arn:aws:sns:us-east-1:111122223333:soc"}   # the site values the steps bind
config: ../../examples/cordon.yaml        # or a configuration whose `site:` they bind (relative to this case)
```

Semantics, decided here:
- The case is planned with `plan_incident` and this playbook alone, so other playbooks the incident triggers do
  not change it. Nothing is executed: guards that need AWS (protected tags, budgets) are not part of a plan.
- `expect: not triggered` means the trigger does not match (rules, minimum severity, entity types). A list means
  it matches and plans exactly these actions, in order: the playbook's steps, then its notifications
  (`step: notify:<responder>`, target the incident id, mode enforce: telling people is never held back).
  `expect: []` is a triggered playbook whose every step found nothing to act on.
- An action planned with a problem (a target the incident does not name, an expression that failed on this
  incident) is refused when run. An expected action with `refused: TEXT` must be refused with a reason containing
  TEXT; one without `refused` must not be refused.
- Site values: the case's `site:`, else those of the configuration it names, else those of `cordon test
  --config`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from cordon.authoring.context import Context, FixtureError, fixture_folder
from cordon.authoring.results import Case, Suite, located, shown, shown_where
from cordon.playbooks.loader import load_playbooks
from cordon.playbooks.model import Mode, Playbook
from cordon.playbooks.plan import PlannedAction, plan_incident, triggered
from cordon.respond import known_rules
from correlators.errors import InputError
from correlators.model import EntityType, Severity
from correlators.yamlsafe import KeyLines, load_yaml_mapping, locate
from responders.base import Responder

CASE_SUFFIXES = (".yaml", ".yml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExpectedAction(_Strict):
    step: str
    responder: str
    target: str
    mode: Mode
    refused: str | None = None


class _Entity(BaseModel):
    type: EntityType
    id: str


class IncidentDocument(BaseModel):
    """The fields planning reads; the rest of `--output json` (title, signals, ...) may be there too."""

    model_config = ConfigDict(extra="allow")

    id: str
    rules: list[str]
    severity: Severity
    entities: list[_Entity]


class PlaybookCase(_Strict):
    incident: IncidentDocument
    expect: Literal["not triggered"] | list[ExpectedAction]
    playbook: str | None = None
    site: dict[str, Any] | None = None
    config: str | None = None


def cases_of(playbook_file: Path) -> list[Path]:
    folder = fixture_folder(playbook_file)
    return sorted(p for p in folder.glob("*") if p.suffix in CASE_SUFFIXES and p.is_file())


def playbook_suite(playbook_file: Path, context: Context, responders: Mapping[str, type[Responder]]) -> Suite:
    suite = Suite("playbook", playbook_file)
    playbooks, errors = load_playbooks([playbook_file], responders, known_rules(context.ruleset), collect_errors=True)
    if errors:
        message = "; ".join(located(error) for error in errors)
        suite.cases.append(Case("load", playbook_file, failure=message, details="\n".join(map(located, errors))))
        return suite
    cases = cases_of(playbook_file)
    if not cases:
        folder = shown(fixture_folder(playbook_file))
        suite.cases.append(
            Case("fixtures", playbook_file, skipped=f"no fixtures: add {folder}/triggered.yaml and not_triggered.yaml")
        )
        return suite
    for path in cases:
        started = time.perf_counter()
        try:
            failure, details = check_case(path, playbooks, context, responders)
        except InputError as error:
            failure, details = located(error), ""
        suite.cases.append(Case(path.name, path, time.perf_counter() - started, failure, details))
    return suite


def read_case(path: Path) -> tuple[PlaybookCase, dict[str, Any], KeyLines]:
    """The case, its raw document (the incident as written is what JMESPath reads) and its key lines."""
    document, lines = load_yaml_mapping(path, FixtureError)
    try:
        return PlaybookCase.model_validate(document), document, lines
    except ValidationError as error:
        # The deepest error is the most specific: for `expect: [{step: x}]`, the missing field of the list
        # member rather than "should be 'not triggered'".
        first = max(error.errors(), key=lambda e: len(e["loc"]))
        # A union's members show in the location as tags (`literal['not triggered']`): not keys a person wrote.
        field = ".".join(str(part) for part in first["loc"] if "[" not in str(part)) or "(top)"
        hint = (
            " (write expect: not triggered, or a list of {step, responder, target, mode})"
            if first["loc"][:1] == ("expect",)
            else ""
        )
        raise FixtureError(f"{field}: {first['msg']}{hint}", locate(path, lines, first["loc"], document)) from None


def check_case(
    path: Path, playbooks: list[Playbook], context: Context, responders: Mapping[str, type[Responder]]
) -> tuple[str | None, str]:
    case, document, lines = read_case(path)
    playbook = _chosen(case, playbooks, path, lines, document)
    if case.site is not None and case.config is not None:
        raise FixtureError("give site: or config:, not both", locate(path, lines, ("site",), document))
    config = context.config
    if case.config is not None:
        config = context.config_named(path.parent / case.config, locate(path, lines, ("config",), document))
    site = case.site if case.site is not None else config.site
    incident = document["incident"]
    planned = plan_incident(incident, [playbook], responders, site, config.execution.default_region)
    where = shown(path)
    if isinstance(case.expect, str):  # "not triggered", the only string the schema accepts
        if triggered(playbook, incident):
            return f"{where}: triggered {playbook.name}, expected not triggered", _listing(planned)
        return None, ""
    if not triggered(playbook, incident):
        return f"{where}: {playbook.name} not triggered: {why_not_triggered(playbook, incident)}", ""
    problem = _difference(case.expect, planned, path, lines, document)
    if problem is None:
        return None, ""
    return f"{shown_where(problem[0])}: {problem[1]}", _listing(planned)


def _chosen(
    case: PlaybookCase, playbooks: list[Playbook], path: Path, lines: KeyLines, document: dict[str, Any]
) -> Playbook:
    names = [playbook.name for playbook in playbooks]
    if case.playbook is not None:
        for playbook in playbooks:
            if playbook.name == case.playbook:
                return playbook
        where = locate(path, lines, ("playbook",), document)
        raise FixtureError(f"no playbook {case.playbook!r} in the playbook file, valid: {', '.join(names)}", where)
    if len(playbooks) != 1:
        raise FixtureError(
            f"the playbook file holds {len(playbooks)}: name one with playbook:, valid: {', '.join(names)}", str(path)
        )
    return playbooks[0]


def why_not_triggered(playbook: Playbook, incident: Mapping[str, Any]) -> str:
    trigger = playbook.trigger
    if trigger.rules and not set(trigger.rules) & set(incident["rules"]):
        return f"the incident's rules {incident['rules']} are none of the trigger's {trigger.rules}"
    if Severity(incident["severity"]).rank < trigger.min_severity.rank:
        return f"severity {incident['severity']} is below the trigger's min_severity {trigger.min_severity.value}"
    named = {entity["type"] for entity in incident["entities"]}
    missing = [kind.value for kind in trigger.entity_types if kind.value not in named]
    return f"the incident names no {', '.join(missing)} entity (trigger entity_types)"


def _row(action: PlannedAction) -> str:
    refused = f" refused: {action.problem}" if action.problem else ""
    return f"{action.step} {action.responder} {action.target.id} {action.mode.value}{refused}"


def _expected_row(action: ExpectedAction) -> str:
    refused = f" refused: ...{action.refused}..." if action.refused else ""
    return f"{action.step} {action.responder} {action.target} {action.mode.value}{refused}"


def _differences(expected: ExpectedAction, planned: PlannedAction) -> list[str]:
    """Each field of the planned action that is not as expected, as `field: expected X, planned Y`."""
    pairs = [
        ("step", expected.step, planned.step),
        ("responder", expected.responder, planned.responder),
        ("target", expected.target, planned.target.id),
        ("mode", expected.mode.value, planned.mode.value),
    ]
    found = [f"{name}: expected {want}, planned {got}" for name, want, got in pairs if want != got]
    if expected.refused is None and planned.problem is not None:
        found.append(f"refused ({planned.problem}), expected to run")
    elif expected.refused is not None and expected.refused not in (planned.problem or ""):
        found.append(f"expected refused with {expected.refused!r}, planned {planned.problem or 'to run'}")
    return found


def _difference(
    expected: list[ExpectedAction], planned: list[PlannedAction], path: Path, lines: KeyLines, document: dict[str, Any]
) -> tuple[str, str] | None:
    """(where, what differed) at the first action that differs, else None."""
    for index, (want, got) in enumerate(zip(expected, planned, strict=False)):
        differences = _differences(want, got)
        if differences:
            where = locate(path, lines, ("expect", index, "step"), document)
            return where, f"action {index + 1} ({got.step}): {'; '.join(differences)}"
    if len(planned) > len(expected):
        where = locate(path, lines, ("expect",), document)
        extra = "; ".join(_row(action) for action in planned[len(expected) :])
        return where, f"planned {len(planned)} actions, expected {len(expected)}: also planned {extra}"
    if len(expected) > len(planned):
        where = locate(path, lines, ("expect", len(planned), "step"), document)
        missing = "; ".join(_expected_row(action) for action in expected[len(planned) :])
        return where, f"planned {len(planned)} actions, expected {len(expected)}: not planned {missing}"
    return None


def _listing(planned: list[PlannedAction]) -> str:
    """The plan as `expect:` entries, to compare by eye or paste into the case."""
    if not planned:
        return "planned: nothing (expect: [])"
    rows = ["planned (as expect: entries):"]
    for action in planned:
        rows.append(
            f"  - {{step: {action.step!r}, responder: {action.responder}, target: {action.target.id!r},"
            f" mode: {action.mode.value}" + (f", refused: {action.problem!r}}}" if action.problem else "}")
        )
    return "\n".join(rows)
