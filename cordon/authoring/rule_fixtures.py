"""Rule fixtures: events beside a rule file that must, or must not, make it raise an incident.

For `rules/my_rule.yml`, the folder `rules/my_rule.tests/` holds JSON Lines files of events (anything
`cordon replay` reads), each replayed alone, in memory:

- `positive*.jsonl` must raise an incident from one of the file's alerting rules;
- `negative*.jsonl` must raise none.

An optional `expect.yaml` in the folder says more (every key is optional):

```yaml
config: ../../examples/cordon.yaml     # the configuration the fixtures replay with, relative to this file
positive: {rule: ml_training_read_then_model_download, severity: high}
positive_api: {rule: ml_endpoint_alarm, severity: medium}
negative_other_principal: {rule: ml_endpoint_alarm}
```

Semantics, decided here:
- A file's alerting rules are its detection rules whose matches are alerts of their own (not those that only
  feed a correlation: Sigma's `generate`) and its correlation rules that raise incidents.
- A positive named in `expect.yaml` must raise exactly one incident with that rule among the rules that raised
  it, and that incident's severity (the highest any of its rules raised) must be the one written. A positive not
  named there needs at least one incident raised by any alerting rule of the file.
- A negative must raise no incident from the file's alerting rules; named in `expect.yaml`, from that rule only
  (for a file whose other rule may fire on the same events). Incidents of other files' rules, and the ones Cordon
  opens for any severe finding or alarm (`guardduty-finding`, ...), are not the fixture's business.
- Every record of a fixture must be read: a rejected one fails the fixture with its `file:line` and the reason.
  A fixture with no event fails too: a negative without events would pass whatever the rule says.
- The configuration is the one `expect.yaml` names, else the one `cordon test --config` was given: assets and
  correlation settings change what fires, so fixtures pin the one they were written against.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from cordon.authoring.context import Context, FixtureError, fixture_folder
from cordon.authoring.results import Case, Suite, located, shown, shown_where
from cordon.replay import replay
from correlators.config import Config
from correlators.errors import CordonError, InputError
from correlators.model import Severity
from correlators.signals import Incident
from correlators.yamlsafe import KeyLines, load_yaml_mapping, locate

EXPECT_FILE = "expect.yaml"
FIXTURE_PATTERNS = ("positive*.jsonl", "negative*.jsonl")


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str
    severity: Severity | None = None


@dataclass(frozen=True)
class Expectation:
    rule: str
    severity: Severity | None
    where: str  # expect.yaml:line, for the message when the fixture does not meet it


@dataclass(frozen=True)
class Expectations:
    config_path: Path | None
    config_where: str
    by_fixture: dict[str, Expectation]  # fixture stem -> what it must raise (or not)


def fixtures_of(rule_file: Path) -> list[Path]:
    folder = fixture_folder(rule_file)
    return [path for pattern in FIXTURE_PATTERNS for path in sorted(folder.glob(pattern)) if path.is_file()]


def alerting_rules(context: Context, rule_file: Path) -> list[str]:
    """The keys of the rules in `rule_file` that can raise an incident."""
    here = rule_file.resolve()
    keys = [rule.key for rule in context.ruleset.detections if rule.generate and rule.path.resolve() == here]
    keys += [rule.key for rule in context.ruleset.correlations if rule.alerts and rule.path.resolve() == here]
    return keys


def read_expectations(folder: Path, fixtures: list[Path], alerting: list[str]) -> Expectations:
    """`expect.yaml` of a fixture folder (none: no expectations). Raises FixtureError naming `file:line`."""
    path = folder / EXPECT_FILE
    if not path.is_file():
        return Expectations(None, "", {})
    document, lines = load_yaml_mapping(path, FixtureError)
    stems = {fixture.stem for fixture in fixtures}
    config_path: Path | None = None
    by_fixture: dict[str, Expectation] = {}
    for key, value in document.items():
        where = locate(path, lines, (key,), document)
        if key == "config":
            if not isinstance(value, str) or not value:
                raise FixtureError("config: must be the path of a cordon.yaml, relative to this file", where)
            config_path = path.parent / value
            continue
        if key not in stems:
            valid = ", ".join(sorted(stems)) or "none: the folder has no positive*.jsonl or negative*.jsonl"
            raise FixtureError(f"{key!r} is not a fixture of this folder, valid: config, {valid}", where)
        entry = _entry(value, path, lines, document, key)
        if entry.rule not in alerting:
            valid = ", ".join(alerting) or "none: the rule file raises no incident of its own"
            raise FixtureError(
                f"{key}: rule {entry.rule!r} is not an alerting rule of the rule file, valid: {valid}", where
            )
        if entry.severity is not None and str(key).startswith("negative"):
            raise FixtureError(f"{key}: a negative fixture raises nothing, so it has no severity", where)
        by_fixture[str(key)] = Expectation(entry.rule, entry.severity, where)
    return Expectations(config_path, locate(path, lines, ("config",), document), by_fixture)


def _entry(value: object, path: Path, lines: KeyLines, document: dict[str, object], key: str) -> _Entry:
    try:
        return _Entry.model_validate(value)
    except ValidationError as error:
        first = error.errors()[0]
        loc = (key, *first["loc"])
        field = ".".join(str(part) for part in loc)
        raise FixtureError(
            f"{field}: {first['msg']} (write {key}: {{rule: NAME, severity: high}})", locate(path, lines, loc, document)
        ) from None


def rule_suite(rule_file: Path, context: Context, load_errors: list[InputError]) -> Suite:
    """Every fixture of one rule file, as one suite. `load_errors` are the file's own errors from loading."""
    suite = Suite("rule", rule_file)
    fixtures = fixtures_of(rule_file)
    if load_errors:
        message = "; ".join(located(error) for error in load_errors)
        details = "\n".join(map(located, load_errors))
        suite.cases.append(Case("load", rule_file, failure=message, details=details))
        return suite
    alerting = alerting_rules(context, rule_file)
    if not fixtures:
        # A file whose rules only feed correlations (00_ml_signals.yml) is tested through those correlations'
        # fixtures: nothing to run, nothing to report. Any other file without fixtures is untested: say so.
        if alerting:
            folder = shown(fixture_folder(rule_file))
            skipped = f"no fixtures: add {folder}/positive.jsonl and negative.jsonl"
            suite.cases.append(Case("fixtures", rule_file, skipped=skipped))
        return suite
    try:
        expectations = read_expectations(fixture_folder(rule_file), fixtures, alerting)
        config = (
            context.config_named(expectations.config_path, expectations.config_where)
            if expectations.config_path is not None
            else context.config
        )
    except InputError as error:
        expect = fixture_folder(rule_file) / EXPECT_FILE
        suite.cases.append(Case(EXPECT_FILE, expect, failure=located(error)))
        return suite
    for fixture in fixtures:
        started = time.perf_counter()
        failure, details = check_fixture(fixture, context, config, alerting, expectations.by_fixture.get(fixture.stem))
        suite.cases.append(Case(fixture.name, fixture, time.perf_counter() - started, failure, details))
    return suite


def check_fixture(
    fixture: Path, context: Context, config: Config, alerting: list[str], expected: Expectation | None
) -> tuple[str | None, str]:
    """(None, "") when the fixture does what its name says; else a one-line failure and the details."""
    where = shown(fixture)
    try:
        result = replay([str(fixture)], config, context.ruleset)
    except CordonError as error:
        return f"{where}: replay failed: {error}", ""
    if result.rejected:
        first = result.rejected[0]
        more = f" (and {len(result.rejected) - 1} more)" if len(result.rejected) > 1 else ""
        details = "\n".join(f"{shown_where(r.where)}: {r.reason}" for r in result.rejected)
        return f"{shown_where(first.where)}: not a valid event: {first.reason}{more}", details
    if result.stats.events_read == 0:
        return f"{where}: no events: a fixture holds one JSON event per line", ""
    raised = describe(result.incidents)
    if fixture.name.startswith("positive"):
        problem = _positive_problem(result.incidents, alerting, expected)
    else:
        watched = [expected.rule] if expected else alerting
        fired = sorted({rule for incident in result.incidents for rule in incident.rules if rule in watched})
        problem = (
            f"raised {', '.join(fired)}: a negative fixture must raise none of {', '.join(watched)}" if fired else None
        )
    return (f"{where}: {problem}", f"raised: {raised}") if problem else (None, "")


def _positive_problem(incidents: list[Incident], alerting: list[str], expected: Expectation | None) -> str | None:
    if expected is None:
        if any(set(incident.rules) & set(alerting) for incident in incidents):
            return None
        rules = ", ".join(alerting) or "this file (it has no alerting rule)"
        return f"raised no incident from {rules}; raised: {describe(incidents)}"
    hits = [incident for incident in incidents if expected.rule in incident.rules]
    if len(hits) != 1:
        return (
            f"{len(hits)} incidents raised by {expected.rule}, expected one ({shown_where(expected.where)});"
            f" raised: {describe(incidents)}"
        )
    if expected.severity is not None and hits[0].severity is not expected.severity:
        return (
            f"{expected.rule} raised a {hits[0].severity.value} incident, expected {expected.severity.value}"
            f" ({shown_where(expected.where)})"
        )
    return None


def describe(incidents: list[Incident]) -> str:
    """What a replay raised, in a line: `ml_a+ml_b (high), guardduty-finding (high)`."""
    return ", ".join(f"{'+'.join(i.rules)} ({i.severity.value})" for i in incidents) or "no incident"
