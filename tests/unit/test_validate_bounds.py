"""Configuration, rules and playbooks fail at `cordon validate`, never at run time (issue 7).

Every duration and size is bounded with an error naming the bound and `file:line`; asset globs are matched
through an index, not a scan; JMESPath is checked at load and against a representative incident, and one that
fails at run time fails only its step; group-by typos and nested correlations are load errors.
"""

from __future__ import annotations

import fnmatch
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

from cordon.cli import main
from cordon.playbooks import plan as plan_module
from cordon.playbooks.loader import load_playbooks
from cordon.playbooks.plan import plan_incident
from cordon.validate import validate
from correlators import config as config_module
from correlators.config import Config, GlobIndex, load_config
from correlators.correlate import Correlator
from correlators.errors import ConfigError, InputError, PlaybookError, RuleError
from correlators.sigma import load_rules
from correlators.timespan import Timespan
from correlators.yamlsafe import load_yaml_documents
from responders.catalog import builtin_responders

RESPONDERS = builtin_responders()

DETECTION = """\
title: Access key created
name: key_created
level: medium
logsource:
  product: aws
  service: cloudtrail
detection:
  sel:
    eventName: CreateAccessKey
  condition: sel
"""

CORRELATION = """\
title: Many access keys
name: many_keys
level: high
correlation:
  type: event_count
  rules: key_created
  group-by: [{group}]
  timespan: {timespan}
  condition:
    gte: 3
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _config(tmp_path: Path, text: str) -> Path:
    return _write(tmp_path, "cordon.yaml", text)


def _reasons(errors: list[InputError]) -> list[str]:
    return [str(error) for error in errors]


# --- durations ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "correlation:\n  lateness: 99999999999d\n",
            r"yaml:2: .*'99999999999d' is longer than the maximum of 7d",
        ),
        (
            "correlation:\n  incident_window: 2000000d\n",
            r"yaml:2: .*'2000000d' is longer than the maximum of 30d",
        ),
        ("correlation:\n  lateness: " + "9" * 5000 + "d\n", r"cordon\.yaml:2: .*longer than the maximum of 7d"),
    ],
)
def test_config_durations_are_bounded_naming_the_bound(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_config(_config(tmp_path, text))


def test_every_timespan_has_an_upper_bound() -> None:
    assert Timespan("365d").seconds == 365 * 86400
    with pytest.raises(ValueError, match=r"'366d' is longer than the maximum of 365d"):
        Timespan("366d")
    with pytest.raises(ValueError, match=r"longer than the maximum of 2h"):
        Timespan("121m", maximum=7200)


def test_a_rule_timespan_is_bounded_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.yml", DETECTION + "---\n" + CORRELATION.format(group="principal", timespan="99999999d"))
    with pytest.raises(RuleError, match=r"r\.yml:19: timespan: duration '99999999d' is longer than the maximum of 30d"):
        load_rules([path])


def test_validate_reports_the_durations_replay_would_crash_on(tmp_path: Path) -> None:
    # GIVEN a config whose rule folder holds a correlation with a huge timespan
    _write(tmp_path, "rules/r.yml", DETECTION + "---\n" + CORRELATION.format(group="principal", timespan="99999999d"))
    config = _config(tmp_path, "rules: [rules/]\nbuiltin_rules: false\nbuiltin_playbooks: false\n")
    # WHEN validated THEN the timespan is an error (it used to pass, then crash replay with OverflowError)
    assert any("maximum of 30d" in reason for reason in _reasons(validate(config)))


# --- sizes -------------------------------------------------------------------------------------------------------


def test_a_deep_yaml_document_is_an_error_not_a_recursion_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "deep.yaml", "a: " + "[" * 20_000 + "]" * 20_000 + "\n")
    with pytest.raises(ConfigError, match=r"deep\.yaml:1: YAML nested more than 64 levels deep"):
        load_yaml_documents(path, ConfigError)


def test_aliases_count_what_they_repeat(tmp_path: Path) -> None:
    # A "billion laughs": ten levels of ten aliases of the level below.
    lines = ["a0: &a0 [" + ", ".join(["x"] * 10) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    path = _write(tmp_path, "laughs.yaml", "\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"laughs\.yaml:\d+: more than 250,000 YAML nodes in one file"):
        load_yaml_documents(path, ConfigError)


def test_a_file_over_the_size_bound_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "big.yaml", "# " + "x" * (4 * 1024 * 1024) + "\n")
    with pytest.raises(PlaybookError, match=r"big\.yaml: file larger than 4 MiB"):
        load_yaml_documents(path, PlaybookError)


def test_asset_globs_are_bounded_in_number(tmp_path: Path) -> None:
    globs = "\n".join(f"    - s3://b/{i}/*" for i in range(20_001))
    with pytest.raises(ConfigError, match=r"cordon\.yaml:1: assets: 20,001 asset globs: at most 20,000"):
        load_config(_config(tmp_path, f"assets:\n  training_data:\n{globs}\n"))


def test_asset_lookup_does_not_scan_every_glob(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN 20,000 globs in two classes
    config = Config(
        assets={
            "training_data": [f"s3://train-{i}/data/*" for i in range(10_000)],
            "model_artifacts": [f"arn:aws:sagemaker:us-east-1:1:endpoint/m{i}-*" for i in range(10_000)],
        }
    )
    calls = 0
    real = fnmatch.fnmatchcase

    def counting(name: str, pattern: str) -> bool:
        nonlocal calls
        calls += 1
        return real(name, pattern)

    monkeypatch.setattr(config_module.fnmatch, "fnmatchcase", counting)
    # WHEN 300 URIs are classified THEN each costs a few glob matches, not one per glob
    for i in range(100):
        assert config.asset_class(f"s3://train-{i * 97}/data/x.parquet") == "training_data"
        assert config.asset_class(f"arn:aws:sagemaker:us-east-1:1:endpoint/m{i}-v2") == "model_artifacts"
        assert config.asset_class(f"s3://other-{i}/data/x") is None
    assert calls <= 3 * 300


def test_the_glob_index_answers_what_a_scan_in_class_order_answers() -> None:
    rng = random.Random(7)
    alphabet = "ab/:*?"
    globs = [(rng.randrange(4), "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 7)))) for _ in range(300)]
    globs += [(rank, f"p{rank}/*") for rank in range(4) for _ in range(10)]  # one prefix holding many: combined
    index = GlobIndex(globs)
    for _ in range(3000):
        text = "".join(rng.choice("ab/:p0123") for _ in range(rng.randrange(0, 8)))
        expected = min((rank for rank, glob in globs if fnmatch.fnmatchcase(text, glob)), default=None)
        assert index.first(text) == expected, text


# --- JMESPath ----------------------------------------------------------------------------------------------------

PLAYBOOK = """\
name: contain
mode: enforce
trigger:
  rules: [r1]
steps:
  - name: first
    responder: iam.revoke-sessions
    target: "{target}"
  - name: second
    responder: iam.revoke-sessions
    target: "entities[?type=='principal'].id"
"""

EXPRESSION = "starts_with(signal_count, 'x')"
INCIDENT: dict[str, Any] = {
    "id": "inc-1",
    "title": "t",
    "rules": ["r1"],
    "severity": "critical",
    "first_seen": "2026-11-20T10:00:00+00:00",
    "last_seen": "2026-11-20T10:20:00+00:00",
    "entities": [{"type": "principal", "id": "arn:aws:iam::111122223333:role/ml-training-role"}],
    "signals": [],
    "signal_count": 3,
    "actions": [],
}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("frob(id)", r"playbook\.yaml:8: steps\.0\.target: invalid JMESPath 'frob\(id\)': unknown function frob\(\)"),
        ("starts_with(id)", r"playbook\.yaml:8: .*starts_with\(\) takes 2 argument\(s\), got 1"),
        ("starts_with(id, `1`)", r"playbook\.yaml:8: .*starts_with\(\) argument 2 must be string, got number 1"),
    ],
)
def test_jmespath_functions_are_checked_at_load(tmp_path: Path, target: str, expected: str) -> None:
    path = _write(tmp_path, "playbook.yaml", PLAYBOOK.format(target=target))
    with pytest.raises(PlaybookError, match=expected):
        load_playbooks([path], RESPONDERS, {"r1"})


def test_validate_runs_expressions_against_a_representative_incident(tmp_path: Path) -> None:
    path = _write(tmp_path, "playbook.yaml", PLAYBOOK.format(target="starts_with(signal_count, 'x')"))
    _, errors = load_playbooks([path], RESPONDERS, {"r1"}, collect_errors=True, site={})
    assert [str(error) for error in errors] == [
        f"{path}:8: steps.0.target: {EXPRESSION!r} fails on a representative incident: "
        "In function starts_with(), invalid type for value: 1, expected one of: ['string'], received: \"number\""
    ]


def test_an_expression_failing_at_run_time_fails_only_its_step(tmp_path: Path) -> None:
    # GIVEN a playbook whose first step's target fails on data (loaded as replay loads it)
    path = _write(tmp_path, "playbook.yaml", PLAYBOOK.format(target="starts_with(signal_count, 'x')"))
    playbooks, _ = load_playbooks([path], RESPONDERS, {"r1"})
    broken = {**INCIDENT, "id": "inc-broken"}
    # WHEN two incidents are planned
    plans = [plan_incident(incident, playbooks, RESPONDERS, {}, "us-east-1") for incident in (broken, INCIDENT)]
    # THEN each plans the failing step as an action that must not run, with the reason, and the other step as usual
    for actions in plans:
        first, second = actions
        assert first.step == "first"
        assert first.problem is not None
        assert first.problem.startswith(f"target {EXPRESSION!r} failed on this incident: ")
        assert (second.step, second.target.id, second.problem) == (
            "second",
            "arn:aws:iam::111122223333:role/ml-training-role",
            None,
        )


def test_a_when_or_bind_failing_at_run_time_is_the_step_problem(tmp_path: Path) -> None:
    text = PLAYBOOK.format(target="entities[?type=='principal'].id").replace(
        "    target: \"entities[?type=='principal'].id\"\n  - name: second",
        "    target: \"entities[?type=='principal'].id\"\n    when: \"starts_with(signal_count, 'x')\"\n"
        "  - name: second",
        1,
    )
    path = _write(tmp_path, "playbook.yaml", text)
    playbooks, _ = load_playbooks([path], RESPONDERS, {"r1"})
    first, second = plan_incident(INCIDENT, playbooks, RESPONDERS, {}, "us-east-1")
    assert first.problem is not None and first.problem.startswith(f"when {EXPRESSION!r} failed")
    assert second.problem is None


def test_the_builtin_playbooks_pass_the_representative_incident(tmp_path: Path) -> None:
    config = _config(tmp_path, "site: {sns_topic_arn: 'arn:aws:sns:us-east-1:1:t', asset_buckets: [a]}\n")
    assert validate(config) == []


# --- group-by ----------------------------------------------------------------------------------------------------


def test_a_group_by_typo_is_an_error_naming_the_entity_names(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.yml", DETECTION + "---\n" + CORRELATION.format(group="principle", timespan="10m"))
    with pytest.raises(
        RuleError,
        match=r"r\.yml:18: group-by 'principle' is not an entity name \(did you mean 'principal'\?\): "
        r"valid entity names: access_key, account, .*principal, .*; a raw field is a dotted path",
    ):
        load_rules([path])


@pytest.mark.parametrize("group", ["principal", "access_key", "userIdentity.arn", "eventName", "cordon.source_ip"])
def test_entities_and_raw_fields_written_as_fields_are_valid_group_by_names(tmp_path: Path, group: str) -> None:
    path = _write(tmp_path, "r.yml", DETECTION + "---\n" + CORRELATION.format(group=group, timespan="10m"))
    (correlation,) = load_rules([path]).correlations
    assert correlation.group_by == (group,)


def test_an_unknown_cordon_field_in_group_by_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.yml", DETECTION + "---\n" + CORRELATION.format(group="cordon.principle", timespan="1h"))
    with pytest.raises(RuleError, match=r"r\.yml:18: unknown cordon field 'cordon\.principle'"):
        load_rules([path])


# --- nested correlations -----------------------------------------------------------------------------------------


def test_validate_refuses_nested_correlations_as_the_pipeline_does(tmp_path: Path) -> None:
    # GIVEN a correlation over a correlation
    outer = (
        "title: Outer\nname: outer\ncorrelation:\n  type: temporal\n  rules: [many_keys, key_created]\n  timespan: 1h\n"
    )
    _write(
        tmp_path,
        "rules/r.yml",
        DETECTION + "---\n" + CORRELATION.format(group="principal", timespan="10m") + "---\n" + outer,
    )
    config = _config(tmp_path, "rules: [rules/]\nbuiltin_rules: false\nbuiltin_playbooks: false\n")
    # WHEN validated THEN the error is the one building the pipeline raises, with file:line
    reasons = _reasons(validate(config))
    assert reasons == [
        f"{tmp_path / 'rules/r.yml'}:23: correlation rule 'Outer' references correlation rule(s) many_keys: "
        "Cordon evaluates correlations over detection rules only; reference their detection rules"
    ]
    with pytest.raises(RuleError) as raised:
        Correlator(load_rules([tmp_path / "rules"]))
    assert str(raised.value) == reasons[0]


# --- playbook loading is linear ----------------------------------------------------------------------------------


def _load_seconds(tmp_path: Path, count: int) -> float:
    one = PLAYBOOK.format(target="entities[?type=='principal'].id").replace("name: contain", "name: pb-{i}")
    path = _write(tmp_path, f"many-{count}.yaml", "---\n".join(one.replace("{i}", str(i)) for i in range(count)))
    start = time.process_time()  # CPU time: the machines are shared, and a wall clock counts the neighbours too
    playbooks, errors = load_playbooks([path], RESPONDERS, {"r1"}, collect_errors=True)
    assert (len(playbooks), errors) == (count, [])
    return time.process_time() - start


def test_loading_playbooks_is_linear_in_documents(tmp_path: Path) -> None:
    small = min(_load_seconds(tmp_path, 150) for _ in range(3))
    large = min(_load_seconds(tmp_path, 600) for _ in range(2))
    # Four times the documents: linear is about 4x, the old quadratic loader was over 10x.
    assert large < 7 * small, (small, large)


def test_replay_with_an_expression_failing_on_data_denies_that_step_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the demo config plus a playbook whose first step's target fails on every incident
    scenarios = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
    example = (Path(__file__).resolve().parents[2] / "examples" / "cordon.yaml").read_text()
    _write(
        tmp_path,
        "extra/broken.yaml",
        PLAYBOOK.format(target=EXPRESSION)
        .replace("[r1]", "[ml_credential_finding_then_ml_access]")
        .replace("name: contain", "name: broken")
        # a change no built-in playbook asks for in this form, so it is this playbook's own action
        .replace(
            "name: second\n    responder: iam.revoke-sessions", "name: second\n    responder: iam.quarantine-principal"
        ),
    )
    config = _config(tmp_path, example + "playbooks: [extra/]\n")
    # WHEN replayed (cordon validate would have refused it)
    assert any("fails on a representative incident" in reason for reason in _reasons(validate(config)))
    assert main(["replay", str(scenarios), "--config", str(config), "--output", "json"]) == 0
    output = json.loads(capsys.readouterr().out)
    # THEN the failing step is denied with the reason, and every other action of every incident is planned
    actions = [action for incident in output["incidents"] for action in incident["actions"]]
    broken = [action for action in actions if action["playbook"] == "broken" and action["step"] == "first"]
    assert broken and all(action["status"] == "denied" for action in broken)
    assert all("failed on this incident" in action["reason"] for action in broken)
    assert any(action["playbook"] == "broken" and action["step"] == "second" for action in actions)
    assert sum(action["status"] == "planned" for action in actions) >= 5


def test_any_other_planning_failure_fails_only_its_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a step whose planning raises something no expression check anticipates
    path = _write(tmp_path, "playbook.yaml", PLAYBOOK.format(target="entities[?type=='principal'].id"))
    playbooks, _ = load_playbooks([path], RESPONDERS, {"r1"})
    targets = plan_module._targets
    calls = iter([RuntimeError("unexpected shape\nsecond line"), None])

    def flaky(*args: Any, **kwargs: Any) -> Any:
        error = next(calls)
        if error is not None:
            raise error
        return targets(*args, **kwargs)

    monkeypatch.setattr(plan_module, "_targets", flaky)
    # WHEN the incident is planned
    first, second = plan_incident(INCIDENT, playbooks, RESPONDERS, {}, "us-east-1")
    # THEN that step is one action that must not run, with the reason; the next step is planned as usual
    assert (first.step, first.problem) == ("first", "planning failed: RuntimeError: unexpected shape")
    assert (second.step, second.problem) == ("second", None)
