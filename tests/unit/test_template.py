"""template.yaml and infra/member-account.yaml: cfn-lint, the SAM transform, the functions' handlers, settings and
environment, the tables, and the wheel the functions are built from (built-in rules and playbooks as package data).

The intake patterns are in test_template_patterns.py, least privilege in test_template_iam.py.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from cordon import constants

from .template_support import MEMBER_TEMPLATE, REPO, TEMPLATE, load, resources_of, transformed

SAM = transformed()
SYNCHRONOUS = {"SlackActionsFunction"}  # answers Slack over its function URL: a failure is answered, not queued
TEST_ONLY_ENV = {constants.ENDPOINT_URL_ENV, constants.SLACK_API_URL_ENV}  # tests and the demo only
FUNCTION_ONLY_ENV = {
    "SlackActionsFunction": {constants.SLACK_APP_SECRET_ENV, constants.RUNNER_FUNCTION_ENV},
    "RunnerFunction": {constants.REPORT_BUCKET_ENV, constants.REPORT_LINK_SECONDS_ENV},  # it alone writes reports
}
FUNCTIONS = resources_of(SAM, "AWS::Lambda::Function")


@pytest.mark.parametrize("path", [TEMPLATE, MEMBER_TEMPLATE], ids=lambda p: p.name)
def test_cfn_lint_passes(path: Path) -> None:
    # The CLI's defaults: errors and warnings (informational rules stay off), one region.
    matches = lint(path.read_text(), config=ManualArgs(regions=["us-east-1"]))
    assert [f"{m.linenumber}: {m.rule.id} {m.message}" for m in matches] == []


def test_sam_transform_gives_the_three_functions_and_nothing_implicit() -> None:
    assert set(FUNCTIONS) == {"CorrelatorFunction", "RunnerFunction", "SlackActionsFunction"}
    # Explicit roles: SAM adds no role, no managed policy, no queue or topic of its own.
    assert resources_of(SAM, "AWS::IAM::Role").keys() == {"CorrelatorRole", "RunnerRole", "SlackActionsRole"}
    # Slack reaches the Slack actions function through a function URL; its requests are verified in code.
    [url] = resources_of(SAM, "AWS::Lambda::Url").values()
    assert url["Properties"]["AuthType"] == "NONE"
    assert url["Properties"]["TargetFunctionArn"] == {"Ref": "SlackActionsFunction"}
    [mapping] = resources_of(SAM, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["EventQueue", "Arn"]}


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_handler_imports(function: str) -> None:
    handler = FUNCTIONS[function]["Properties"]["Handler"]
    module_name, attribute = handler.rsplit(".", 1)
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attribute)), handler


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_functions_are_bounded_traced_and_fail_somewhere_visible(function: str) -> None:
    properties = FUNCTIONS[function]["Properties"]
    assert properties["Runtime"] == "python3.12"
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert properties["ReservedConcurrentExecutions"] >= 1
    alarms = [a["Properties"] for a in resources_of(SAM, "AWS::CloudWatch::Alarm").values()]
    if function not in SYNCHRONOUS:  # invoked asynchronously or from a queue: what fails lands in a watched queue
        queue = properties["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]
        watched_queues = [a["Dimensions"][0]["Value"]["Fn::GetAtt"][0] for a in alarms if a["Namespace"] == "AWS/SQS"]
        assert queue in watched_queues and "EventDeadLetterQueue" in watched_queues
    metrics = {a["MetricName"] for a in alarms if a["Dimensions"][0]["Value"] == {"Ref": function}}
    assert metrics == {"Errors", "Throttles"}


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_functions_get_exactly_the_shared_environment(function: str) -> None:
    variables = FUNCTIONS[function]["Properties"]["Environment"]["Variables"]
    own = {name for names in FUNCTION_ONLY_ENV.values() for name in names}
    expected = {
        value
        for name, value in vars(constants).items()
        if name.endswith("_ENV") and value not in TEST_ONLY_ENV and value not in own
    } | FUNCTION_ONLY_ENV.get(function, set())
    assert {v for v in variables if v.startswith("CORDON_")} == expected
    assert variables[constants.ENFORCEMENT_MODE_ENV] == {"Ref": "EnforcementMode"}


def test_parameters_and_their_safe_defaults() -> None:
    parameters = load()["Parameters"]
    assert parameters["EnforcementMode"]["Default"] == "dry_run"
    assert parameters["EnforcementMode"]["AllowedValues"] == ["dry_run", "approval", "enforce"]
    assert parameters["MemberAccountRoleName"]["Default"] == "CordonResponderRole"
    assert parameters["OrganizationId"]["Default"] == ""
    assert {"SlackWebhookSecretArn", "AlertEmail", "GuardDutyMinSeverity"} <= set(parameters)
    resources = load()["Resources"]
    assert resources["KillSwitchParameter"]["Properties"]["Value"] == "off"
    assert resources["ConfigParameter"]["Properties"]["Value"] == "{}"
    assert resources["CordonEventBusPolicy"]["Condition"] == "HasOrganization"
    assert resources["AlertEmailSubscription"]["Condition"] == "HasAlertEmail"


@pytest.mark.parametrize("table", ["StateTable", "AuditTable"])
def test_tables(table: str) -> None:
    properties = load()["Resources"][table]["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    [index] = properties["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "gsi1" and index["Projection"] == {"ProjectionType": "ALL"}
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["gsi1pk", "gsi1sk"]
    assert {a["AttributeType"] for a in properties["AttributeDefinitions"]} == {"S"}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"]["SSEType"] == "KMS"
    assert properties["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": ["CordonKey", "Arn"]}
    if table == "StateTable":
        assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


@pytest.mark.parametrize("path", [TEMPLATE, MEMBER_TEMPLATE], ids=lambda p: p.name)
def test_every_checkov_skip_is_justified(path: Path) -> None:
    skips = [
        skip
        for resource in load(path)["Resources"].values()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert all(skip["id"].startswith("CKV") and len(skip.get("comment", "")) > 20 for skip in skips), skips


# --- the package the functions run --------------------------------------------------------------------------------
LOAD_BUILTINS = """
import json, cordon
from cordon.replay import BUILTIN_RULES
from cordon.respond import BUILTIN_PLAYBOOKS, known_rules
from cordon.playbooks.loader import load_playbooks
from correlators.sigma.loader import load_rules
from responders.catalog import builtin_responders
rules = load_rules([BUILTIN_RULES])
playbooks, _ = load_playbooks([BUILTIN_PLAYBOOKS], builtin_responders(), known_rules(rules))
print(json.dumps({"package": cordon.__file__, "rules_dir": str(BUILTIN_RULES), "playbooks_dir": str(BUILTIN_PLAYBOOKS),
                  "rules": sorted(known_rules(rules)), "playbooks": sorted(p.name for p in playbooks)}))
"""


PIP = (sys.executable, "-m", "pip")
# Without the caller's PYTHONPATH: pip would see the editable install's metadata and call the wheel installed.
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}


def test_the_wheel_carries_the_builtin_rules_and_playbooks(tmp_path: Path) -> None:
    # GIVEN the project wheel, built offline with the dev install's setuptools
    subprocess.run(
        [
            *PIP,
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(tmp_path / "dist"),
            REPO,
        ],
        check=True,
        cwd=tmp_path,
    )
    [wheel] = (tmp_path / "dist").glob("cordon-*.whl")
    # ... installed alone into a fresh venv (third-party packages come from this venv, on PYTHONPATH, which does
    # not run its .pth files: the editable install of the repository stays out)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    subprocess.run(
        [*PIP, "--python", str(python), "install", "--quiet", "--no-deps", "--no-index", "--ignore-installed", wheel],
        check=True,
        env=CLEAN_ENV,
    )
    # WHEN the built-ins are loaded from there, outside the repository
    env = {**CLEAN_ENV, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    result = subprocess.run(
        [str(python), "-c", LOAD_BUILTINS], capture_output=True, text=True, cwd=tmp_path, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    # THEN they come from the installed package, and they are all there
    venv = str(tmp_path / "venv")
    assert all(found[key].startswith(venv) for key in ("package", "rules_dir", "playbooks_dir")), found
    from cordon.replay import load_ruleset
    from cordon.respond import known_rules
    from correlators.config import Config

    assert found["rules"] == sorted(known_rules(load_ruleset(Config())))
    assert len(found["playbooks"]) == len(list((REPO / "playbooks").glob("*.yaml"))) > 0
