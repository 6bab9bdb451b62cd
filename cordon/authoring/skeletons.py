"""`cordon new rule NAME` and `cordon new playbook NAME`: a commented skeleton and its fixture folder.

A skeleton is a small working example, not a blank form: `cordon validate` and `cordon test` pass on it as
written. The rule detects one concrete thing (a SageMaker model deleted), its positive fixture is that call and
its negative the same call refused; the playbook plans one dry-run step, with one case that triggers it and one
that does not. So the author starts from green and edits rule and fixtures together: change the detection and
the positive fixture fails until the events match it. Nothing is ever overwritten.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from string import Template

from cordon.authoring.context import fixture_folder
from correlators.errors import InputError

RULE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
PLAYBOOK_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")  # the playbook schema's name, bounded


@dataclass(frozen=True)
class Written:
    files: list[Path]
    next_steps: list[str]


def new_rule(name: str, folder: Path) -> Written:
    if not RULE_NAME.fullmatch(name):
        raise InputError(
            f"rule name {name!r}: use lower-case letters, digits, _ and - (at most 64), e.g. sagemaker_model_deleted"
        )
    rule_name = name.replace("-", "_")
    rule_file = folder / f"{name}.yml"
    tests = fixture_folder(rule_file)
    contents = {
        rule_file: Template(_RULE).substitute(name=rule_name, id=uuid.uuid4(), file=rule_file.name),
        tests / "positive.jsonl": _event() + "\n",
        tests / "negative.jsonl": _event(refused=True) + "\n",
        tests / "expect.yaml": Template(_RULE_EXPECT).substitute(name=rule_name, file=rule_file.name),
    }
    _write(contents, refuse=[rule_file, tests])
    return Written(
        list(contents),
        [
            f"cordon test {rule_file}        # runs {tests.name}/: passes as written",
            f"cordon validate {rule_file}",
            "then edit the detection and its fixtures together, and add the file to rules: in cordon.yaml",
        ],
    )


def new_playbook(name: str, folder: Path, rule: str | None) -> Written:
    if not PLAYBOOK_NAME.fullmatch(name):
        raise InputError(
            f"playbook name {name!r}: use lower-case letters, digits and - (at most 64), e.g. contain-model-deletion"
        )
    playbook_file = folder / f"{name}.yaml"
    tests = fixture_folder(playbook_file)
    rules = f"[{rule}]" if rule else "[]"
    values = {"name": name, "file": playbook_file.name, "rules": rules, "incident_rules": f"[{rule or 'your_rule'}]"}
    contents = {
        playbook_file: Template(_PLAYBOOK).substitute(values, rules_comment=_rules_comment(rule)),
        tests / "triggered.yaml": Template(_TRIGGERED).substitute(values),
        tests / "not_triggered.yaml": Template(_NOT_TRIGGERED).substitute(values),
    }
    _write(contents, refuse=[playbook_file, tests])
    return Written(
        list(contents),
        [
            f"cordon test {playbook_file}        # plans the cases in {tests.name}/: passes as written",
            f"cordon validate {playbook_file}",
            "then name your rule in trigger.rules, edit the steps and their cases, and add the file to playbooks:"
            " in cordon.yaml",
        ],
    )


def _rules_comment(rule: str | None) -> str:
    return "the rules whose incidents this answers" if rule else "EDIT ME: empty means every rule; name yours"


def _write(contents: dict[Path, str], refuse: list[Path]) -> None:
    existing = [str(path) for path in refuse if path.exists()]
    if existing:
        verb = "exists" if len(existing) == 1 else "exist"
        raise InputError(f"{' and '.join(existing)} already {verb}: cordon new never overwrites; choose another NAME")
    for path, text in contents.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as file:  # "x": fail rather than overwrite, even in a race
            file.write(text)


def _event(*, refused: bool = False) -> str:
    """A CloudTrail record of SageMaker DeleteModel, as CloudTrail logs it (bare record, one line)."""
    record: dict[str, object] = {
        "eventVersion": "1.10",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAQ3EXAMPLEAUTHOR01",
            "arn": "arn:aws:iam::111122223333:user/ml-contractor",
            "accountId": "111122223333",
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "userName": "ml-contractor",
        },
        "eventTime": "2026-11-18T12:12:45Z",
        "eventSource": "sagemaker.amazonaws.com",
        "eventName": "DeleteModel",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.23",
        "userAgent": "aws-cli/2.22.4 md/command#sagemaker.delete-model",
        "requestParameters": {"modelName": "fraud-scorer-v7"},
        "responseElements": None,
        "requestID": "5f0e2a8c-41d5-4a40-9d1b-0c8f3b8a7e21",
        "eventID": "0b7f6d0e-9d2b-4a57-8a54-3e0f6c1d9a10",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "111122223333",
        "eventCategory": "Management",
    }
    if refused:
        record["errorCode"] = "AccessDenied"
        record["errorMessage"] = (
            "User: arn:aws:iam::111122223333:user/ml-contractor is not authorized to perform: sagemaker:DeleteModel"
        )
        record["eventID"] = "7c1e4b2a-6f3d-4e8b-9a0c-2d5f8e1b3c47"
    return json.dumps(record, separators=(",", ":"))


_RULE = """\
# A Cordon detection rule: Sigma (https://sigmahq.io), as the README's "Rules" section describes.
#   cordon test $file       runs the fixtures in ${name}.tests/ (positive*.jsonl must fire, negative*.jsonl not)
#   cordon validate $file   lints it: every error names file:line
# This skeleton works as written: it detects a SageMaker model deleted. Edit the detection and the fixtures
# together. Fields: raw event fields (eventName, requestParameters.modelName, ...) and Cordon's normalized ones
# under cordon. (cordon.principal, cordon.asset_class, cordon.outcome, ...: correlators/sigma/fields.py).
title: SageMaker model deleted                # what the analyst reads first: say what happened
name: $name                                   # how correlations and playbooks (trigger.rules) name this rule
id: $id
status: experimental
description: >
  EDIT ME: why this matters, and the benign look-alike the negative fixture holds. As written: a successful
  DeleteModel call, which removes a deployed model's definition (availability, or covering tracks).
author: EDIT ME
tags:                                         # ATT&CK and ATLAS techniques: cordon coverage reads them
  - attack.impact
  - attack.t1485
logsource:
  product: aws
  service: cloudtrail                         # or guardduty, securityhub, cloudwatch
detection:
  selection:
    eventSource: sagemaker.amazonaws.com
    eventName: DeleteModel
    cordon.outcome: success                   # a refused call (errorCode) is the negative fixture's look-alike
  condition: selection
level: medium                # medium and up raise an incident alone (cordon.yaml: correlation.standalone_min_severity)
"""

_RULE_EXPECT = """\
# What each fixture of $file must raise (optional; `cordon test` reads it):
#   <fixture stem>: {rule: NAME, severity: LEVEL}   a positive raises exactly one incident by NAME, of LEVEL
#   <fixture stem>: {rule: NAME}                    a negative raises no incident by NAME (default: by any rule
#                                                   of the file)
#   config: PATH                                    the cordon.yaml the fixtures replay with (relative to this
#                                                   file; default: cordon test --config)
# A positive without an entry must raise an incident from any alerting rule of the file.
positive: {rule: $name, severity: medium}
"""

_PLAYBOOK = """\
# A Cordon playbook, as the README's "Playbooks" section describes.
#   cordon test $file       plans the cases in ${name}.tests/ (an incident in, the planned actions out)
#   cordon validate $file   lints it: every error names file:line
# This skeleton works as written: it plans revoking a role's sessions, in dry_run (plan only).
name: $name
description: >
  EDIT ME: what this playbook contains, and why each step is safe to run without a person.
mode: dry_run                   # dry_run: plan only (start here) | approval: a person approves each action | enforce
trigger:
  rules: $rules               # $rules_comment
  min_severity: high
  entity_types: [principal]     # the incident must name all of these
steps:
  - name: revoke-role-sessions
    responder: iam.revoke-sessions   # the README's "Responders" table lists them and their targets
    target: "entities[?type=='principal' && contains(id, ':role/')].id"   # JMESPath over the incident JSON
    on_error: continue               # or stop: skip the remaining steps when this one fails
notify:
  - responder: notify.sns
    when: site.sns_topic_arn         # only where cordon.yaml's site: names a topic
    bind: {topic_arn: site.sns_topic_arn}
"""

_TRIGGERED = """\
# A case for $file: this incident in, these planned actions out (in plan order: steps, then notifications).
# Paste a real incident from `cordon replay EVENTS --output json` (one element of "incidents").
site: {sns_topic_arn: "arn:aws:sns:us-east-1:111122223333:soc-alerts"}   # or config: PATH, or cordon test --config
incident:
  id: inc-example-0001
  title: EDIT ME
  rules: $incident_rules
  severity: high
  entities:
    - {type: principal, id: "arn:aws:iam::111122223333:role/ml-training-role"}
    - {type: account, id: "111122223333"}
expect:
  - step: revoke-role-sessions
    responder: iam.revoke-sessions
    target: "arn:aws:iam::111122223333:role/ml-training-role"
    mode: dry_run
  - step: "notify:notify.sns"
    responder: notify.sns
    target: inc-example-0001
    mode: enforce               # notifications are never held back by the playbook's mode
"""

_NOT_TRIGGERED = """\
# A case for $file: an incident the playbook must leave alone (here: below the trigger's min_severity).
incident:
  id: inc-example-0002
  title: EDIT ME
  rules: $incident_rules
  severity: medium
  entities:
    - {type: principal, id: "arn:aws:iam::111122223333:role/ml-training-role"}
expect: not triggered
"""
