"""Loading Sigma rule files: errors name `path:line`, lint mode collects them all, correlations resolve across files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from correlators.errors import RuleError
from correlators.model import EventSource, NormalizedEvent, Severity
from correlators.sigma import FieldView, load_rules

RULES = Path(__file__).resolve().parents[2] / "correlators" / "rules"

DETECTION = """\
title: Access key created
name: key_created
id: 5a1c5c5e-0000-4000-8000-000000000001
level: medium
logsource:
  product: aws
  service: cloudtrail
detection:
  sel:
    eventName: CreateAccessKey
  condition: sel
"""

EVENT_COUNT = """\
title: Many access keys
name: many_keys
level: high
correlation:
  type: event_count
  rules: key_created
  group-by: [cordon.principal]
  timespan: 10m
  condition:
    gte: 3
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dedent(text), encoding="utf-8")
    return path


def _view(raw: dict[str, Any]) -> FieldView:
    return FieldView(NormalizedEvent(event_id="e", time=datetime(2024, 1, 1, tzinfo=UTC), source="cloudtrail", raw=raw))


def test_detection_rule_is_loaded_with_its_metadata(tmp_path: Path) -> None:
    path = _write(tmp_path, "key.yml", DETECTION)
    (rule,) = load_rules([path]).detections
    assert (rule.key, rule.id, rule.title, rule.level) == (
        "key_created",
        "5a1c5c5e-0000-4000-8000-000000000001",
        "Access key created",
        Severity.MEDIUM,
    )
    assert rule.sources == frozenset({EventSource.CLOUDTRAIL})
    assert (rule.path, rule.line, rule.referenced, rule.generate) == (path, 1, False, True)


def test_multi_document_file_with_a_correlation(tmp_path: Path) -> None:
    # GIVEN a detection rule and the correlation that uses it in one file, as the Sigma specification allows
    path = _write(tmp_path, "keys.yml", DETECTION + "---\n" + EVENT_COUNT)
    # WHEN loaded
    ruleset = load_rules([path])
    # THEN the correlation resolves its reference, and the detection only feeds it
    (correlation,) = ruleset.correlations
    assert correlation.rules == ("key_created",)
    assert (correlation.type, correlation.group_by, correlation.timespan_seconds) == (
        "event_count",
        ("cordon.principal",),
        600,
    )
    assert (correlation.condition_op, correlation.condition_count, correlation.condition_field) == ("gte", 3, None)
    assert (correlation.level, correlation.line, correlation.generate, correlation.alerts) == (
        Severity.HIGH,
        13,
        False,
        True,
    )
    (detection,) = ruleset.detections
    assert (detection.referenced, detection.generate) == (True, False)
    assert ruleset.get("many_keys") is correlation


def test_generate_true_keeps_the_referenced_rule_alerting(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "keys.yml", DETECTION + "---\n" + EVENT_COUNT.replace("  timespan", "  generate: true\n  timespan")
    )
    (detection,) = load_rules([path]).detections
    assert (detection.referenced, detection.generate) == (True, True)


def test_correlation_references_resolve_across_files_by_name_or_id(tmp_path: Path) -> None:
    _write(tmp_path, "a/key.yml", DETECTION)
    _write(tmp_path, "b/login.yml", DETECTION.replace("key_created", "login").replace("0001", "0002"))
    _write(
        tmp_path,
        "c/temporal.yml",
        """\
        title: Key then login
        correlation:
          type: temporal_ordered
          rules: [5A1C5C5E-0000-4000-8000-000000000001, login]
          group-by: [user]
          aliases:
            user:
              key_created: requestParameters.userName
              login: userIdentity.userName
          timespan: 1h
        """,
    )
    (correlation,) = load_rules([tmp_path]).correlations
    assert correlation.rules == ("key_created", "login")
    assert correlation.aliases == {
        "user": {"key_created": "requestParameters.userName", "login": "userIdentity.userName"}
    }
    assert (correlation.condition_op, correlation.condition_count) == ("gte", 2)  # temporal default: every rule


def test_correlation_of_correlations(tmp_path: Path) -> None:
    outer = (
        "title: Outer\nname: outer\ncorrelation:\n  type: temporal\n  rules: [many_keys, key_created]\n  timespan: 1h\n"
    )
    path = _write(tmp_path, "keys.yml", DETECTION + "---\n" + EVENT_COUNT + "---\n" + outer)
    ruleset = load_rules([path])
    inner = ruleset.get("many_keys")
    assert (inner.referenced, inner.alerts) == (True, False)  # type: ignore[union-attr]
    assert ruleset.get("outer").rules == ("many_keys", "key_created")  # type: ignore[union-attr]


def test_duplicate_yaml_key_is_an_error_with_its_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "dup.yml",
        DETECTION.replace("    eventName: CreateAccessKey\n", "    eventName: a\n    eventName: b\n"),
    )
    with pytest.raises(RuleError, match=r"dup\.yml:11: duplicate key 'eventName'"):
        load_rules([path])


def test_unknown_logsource_is_an_error_naming_the_supported_ones(tmp_path: Path) -> None:
    path = _write(tmp_path, "win.yml", DETECTION.replace("product: aws", "product: windows"))
    with pytest.raises(
        RuleError,
        match=r"win\.yml:6: logsource 'product: windows, service: cloudtrail' is not one Cordon receives; "
        r"supported: product: aws with service: cloudtrail, guardduty, securityhub, cloudwatch, config",
    ):
        load_rules([path])


def test_logsource_category_is_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "cat.yml", DETECTION.replace("  product: aws\n", "  category: process_creation\n  product: aws\n")
    )
    with pytest.raises(RuleError, match=r"cat\.yml:6: logsource 'category: process_creation, product: aws"):
        load_rules([path])


def test_correlation_referencing_an_unknown_rule_names_it(tmp_path: Path) -> None:
    path = _write(tmp_path, "corr.yml", EVENT_COUNT.replace("rules: key_created", "rules: key_deleted"))
    with pytest.raises(RuleError, match=r"corr\.yml:6: referenced rule 'key_deleted' is unknown"):
        load_rules([path])


def test_correlation_referencing_a_rule_that_failed_says_so(tmp_path: Path) -> None:
    _write(tmp_path, "bad.yml", DETECTION.replace("level: medium", "level: severe"))
    _write(tmp_path, "corr.yml", EVENT_COUNT)
    errors = load_rules([tmp_path], collect_errors=True).errors
    assert [str(e) for e in errors] == [
        f"{tmp_path / 'bad.yml'}:4: 'severe' is not a valid Sigma rule level",
        f"{tmp_path / 'corr.yml'}:6: referenced rule 'key_created' did not load (see its error)",
    ]


@pytest.mark.parametrize(
    ("correlation", "message"),
    [
        (
            "type: value_sum\n  rules: key_created\n  timespan: 1h\n  condition:\n    gt: 10\n    field: bytes",
            "correlation type 'value_sum' is not supported",
        ),
        (
            "type: event_count\n  rules: key_created\n  timespan: 1h\n  condition:\n    lt: 2",
            "condition operator 'lt' is not supported: a streaming correlation can only fire when a count grows "
            "past a threshold: use gt or gte",
        ),
        (
            "type: value_count\n  rules: key_created\n  timespan: 1h\n  condition:\n    eq: 2\n    field: x",
            "condition operator 'eq' is not supported",
        ),
        (
            "type: temporal\n  rules: [key_created]\n  timespan: 1h\n  condition: key_created and not key_created",
            "extended temporal conditions",
        ),
    ],
)
def test_correlations_cordon_cannot_stream_are_refused(tmp_path: Path, correlation: str, message: str) -> None:
    path = _write(tmp_path, "c.yml", DETECTION + "---\ntitle: C\ncorrelation:\n  " + correlation + "\n")
    with pytest.raises(RuleError, match=rf"c\.yml:1[5-9]: {message}"):
        load_rules([path])


def test_collect_errors_returns_every_error_and_loads_the_good_rules(tmp_path: Path) -> None:
    # GIVEN one good rule and four files, each wrong in its own way
    _write(tmp_path, "good.yml", DETECTION)
    _write(tmp_path, "dup.yml", "title: a\ntitle: b\n")
    _write(
        tmp_path,
        "logsource.yml",
        DETECTION.replace("name: key_created", "name: other").replace("0001", "0003").replace("aws", "gcp"),
    )
    _write(
        tmp_path,
        "condition.yml",
        DETECTION.replace("name: key_created", "name: third")
        .replace("0001", "0004")
        .replace("condition: sel", "condition: sel and missing"),
    )
    _write(tmp_path, "yaml.yml", "title: [unclosed\n")
    # WHEN loaded in lint mode
    ruleset = load_rules([tmp_path], collect_errors=True)
    # THEN the good rule loads and each error names its file and line
    assert [rule.key for rule in ruleset.detections] == ["key_created"]
    assert sorted(str(error).removeprefix(f"{tmp_path}/") for error in ruleset.errors) == [
        "condition.yml:11: Detection 'missing' not defined in detections",
        "dup.yml:2: duplicate key 'title'",
        "logsource.yml:6: logsource 'product: gcp, service: cloudtrail' is not one Cordon receives; "
        "supported: product: aws with service: cloudtrail, guardduty, securityhub, cloudwatch, config",
        "yaml.yml:2: invalid YAML: expected ',' or ']', but got '<stream end>'",
    ]
    # AND without lint mode the first error raises
    with pytest.raises(RuleError):
        load_rules([tmp_path])


def test_rule_id_used_twice_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path, "a.yml", DETECTION)
    _write(tmp_path, "b.yml", DETECTION.replace("name: key_created", "name: copy"))
    with pytest.raises(
        RuleError,
        match=r"b\.yml:3: rule id '5a1c5c5e-0000-4000-8000-000000000001' is already used by the rule at .*a\.yml:1",
    ):
        load_rules([tmp_path])


def test_folders_skip_rule_tests_and_other_files(tmp_path: Path) -> None:
    _write(tmp_path, "rules/key.yaml", DETECTION)
    _write(tmp_path, "rules/key.tests/positive.yml", "not: a rule\n")
    _write(tmp_path, "rules/key.tests.yml", "not: a rule\n")
    _write(tmp_path, "rules/README.md", "# rules\n")
    assert [rule.key for rule in load_rules([tmp_path / "rules"]).detections] == ["key_created"]


def test_missing_path_and_non_mapping_document_are_errors(tmp_path: Path) -> None:
    _write(tmp_path, "list.yml", "- a\n- b\n")
    errors = load_rules([tmp_path / "nowhere", tmp_path / "list.yml"], collect_errors=True).errors
    assert [str(e) for e in errors] == [
        f"{tmp_path / 'nowhere'}: no such file or directory",
        f"{tmp_path / 'list.yml'}: YAML document 1 is not a mapping, so it is not a Sigma rule",
    ]


def test_retired_aggregation_syntax_is_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "agg.yml",
        DETECTION.replace("  condition: sel", "  timeframe: 5m\n  condition: sel | count() by userIdentity.arn > 5"),
    )
    with pytest.raises(RuleError, match=r"agg\.yml:12: the aggregation syntax in condition .* was retired from Sigma"):
        load_rules([path])


def test_sigma_filter_adds_an_exclusion_to_the_rule_it_names(tmp_path: Path) -> None:
    _write(tmp_path, "key.yml", DETECTION)
    _write(
        tmp_path,
        "filter.yml",
        """\
        title: Our key rotation robot
        logsource:
          product: aws
          service: cloudtrail
        filter:
          rules: [key_created]
          robot:
            userIdentity.userName: rotation-bot
          condition: not robot
        """,
    )
    (rule,) = load_rules([tmp_path]).detections
    assert rule.matches(_view({"eventName": "CreateAccessKey", "userIdentity": {"userName": "alice"}}))
    assert not rule.matches(_view({"eventName": "CreateAccessKey", "userIdentity": {"userName": "rotation-bot"}}))


def test_sigma_filter_naming_an_unknown_rule_is_an_error(tmp_path: Path) -> None:
    text = """\
        title: F
        logsource:
          product: aws
          service: cloudtrail
        filter:
          rules: [nope]
          f:
            a: 1
          condition: not f
        """
    with pytest.raises(RuleError, match=r"f\.yml:6: unknown rule 'nope'"):
        load_rules([_write(tmp_path, "f.yml", text)])


def test_builtin_rules_load_without_errors() -> None:
    if not list(RULES.glob("*.yml")):
        pytest.skip("no built-in rules yet")
    ruleset = load_rules([RULES], collect_errors=True)
    assert ruleset.errors == []
    assert ruleset.detections


def test_correlations_referencing_each_other_in_a_cycle_are_refused(tmp_path: Path) -> None:
    loop = "title: {0}\nname: {0}\ncorrelation:\n  type: temporal\n  rules: [{1}, key_created]\n  timespan: 1h\n"
    path = _write(tmp_path, "loop.yml", "---\n".join([DETECTION, loop.format("a", "b"), loop.format("b", "a")]))
    ruleset = load_rules([path], collect_errors=True)
    assert ruleset.correlations == []
    assert [error.reason for error in ruleset.errors] == [
        "correlation rules reference each other in a cycle",
        "referenced rule 'a' did not load (see its error)",
    ]


def test_alias_naming_a_rule_outside_the_correlation_is_an_error(tmp_path: Path) -> None:
    aliased = EVENT_COUNT.replace("  timespan", "  aliases:\n    who:\n      other_rule: userName\n  timespan")
    path = _write(
        tmp_path,
        "alias.yml",
        DETECTION
        + "---\n"
        + DETECTION.replace("key_created", "other_rule").replace("0001", "0009")
        + "---\n"
        + aliased,
    )
    with pytest.raises(RuleError, match=r"alias\.yml:32: an alias names rule 'other_rule', which is not among"):
        load_rules([path])
