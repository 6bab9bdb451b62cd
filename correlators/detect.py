"""Detection: which signals one normalized event raises.

Sigma detection rules match events natively. Findings and alarms are signals of their own as well, whatever
the rules say: a GuardDuty or Security Hub finding with its own severity, a CloudWatch alarm entering ALARM, a
resource an AWS Config rule finds NON_COMPLIANT (and, as context that opens nothing, one that is COMPLIANT again).
"""

from __future__ import annotations

from typing import cast

from correlators.model import EventSource, NormalizedEvent, Severity, trusted
from correlators.normalize import INACTIVE_FINDING_STATUSES, CloudTrailCall
from correlators.sigma.fields import FieldView, readable_before_building
from correlators.sigma.index import RuleIndex
from correlators.sigma.loader import RuleSet
from correlators.signals import Signal

# Implicit rule names for signals that exist without a Sigma rule.
GUARDDUTY_RULE = "guardduty-finding"
SECURITYHUB_RULE = "securityhub-finding"
SECURITYHUB_REQUEST_RULE = "securityhub-custom-action"  # findings an analyst sent with "Contain with Cordon"
ALARM_RULE = "cloudwatch-alarm"
CONFIG_RULE = "config-compliance"
IMPLICIT_RULES = (GUARDDUTY_RULE, SECURITYHUB_RULE, SECURITYHUB_REQUEST_RULE, ALARM_RULE, CONFIG_RULE)
NON_COMPLIANT = "NON_COMPLIANT"


class Detector:
    def __init__(self, ruleset: RuleSet) -> None:
        # Per source with rules, an index that leaves only the rules that can match an event to run on it.
        indexes = {source: RuleIndex(ruleset.detections_for(source)) for source in EventSource}
        self._rules_by_source = {source: index for source, index in indexes.items() if index}
        # A CloudTrail call is screened before its event is built when the index reads nothing a call lacks.
        calls = self._rules_by_source.get(EventSource.CLOUDTRAIL)
        self._call_index = calls if calls and all(map(readable_before_building, calls.field_names)) else None
        self._calls_unscreened = calls is not None and self._call_index is None

    def may_match(self, call: CloudTrailCall) -> bool:
        """Whether a rule can match the call's event: False only when the index leaves no candidate for it (a
        CloudTrail event raises no signal without a rule). Its resources must be classified already."""
        if self._call_index is not None:
            # Read as an event: the call has every attribute the index reads (`readable_before_building`).
            return bool(self._call_index.candidates(cast(NormalizedEvent, call)))
        return self._calls_unscreened  # rules the index cannot screen calls for; none at all: nothing matches

    def detect(self, event: NormalizedEvent) -> list[Signal]:
        signals = _implicit_signals(event)
        index = self._rules_by_source.get(event.source)
        if index is not None and (rules := index.candidates(event)):
            fields = FieldView(event)
            for rule in rules:
                if rule.matches(fields):
                    signals.append(
                        _signal(
                            rule=rule.key,
                            title=rule.title,
                            severity=rule.level or Severity.MEDIUM,
                            standalone=rule.generate,
                            event=event,
                        )
                    )
        return signals


def _signal(*, rule: str, title: str, severity: Severity, standalone: bool, event: NormalizedEvent) -> Signal:
    """`Signal(...)` without validating again what is valid already: the keyword types say what validation would
    check (an enum severity, a validated event, kept as it is). tests/unit/test_detect_trusted.py proves every
    signal of the samples equal, value and type, to its validated construction."""
    return trusted(Signal, rule=rule, title=title, severity=severity, standalone=standalone, event=event)


def _implicit_signals(event: NormalizedEvent) -> list[Signal]:
    if event.finding is not None and event.finding.requested:
        # An analyst asked for containment: at least high, whatever the finding's own severity or status, so it
        # opens an incident or joins the one of its identities, and playbooks triggering on this rule run.
        finding = event.finding
        severity = finding.severity if finding.severity.rank >= Severity.HIGH.rank else Severity.HIGH
        title = f"Sent to Cordon from Security Hub: {finding.title or finding.type}"
        return [_signal(rule=SECURITYHUB_REQUEST_RULE, title=title, severity=severity, standalone=True, event=event)]
    if event.finding is not None:
        finding = event.finding
        if (finding.status or "").upper() in INACTIVE_FINDING_STATUSES:  # closed by a person or a passed control
            return []
        rule = GUARDDUTY_RULE if event.source is EventSource.GUARDDUTY else SECURITYHUB_RULE
        title = finding.title or finding.type
        return [_signal(rule=rule, title=title, severity=finding.severity, standalone=True, event=event)]
    if event.alarm is not None and event.alarm.state == "ALARM" and event.alarm.previous_state != "ALARM":
        # Alarms carry no severity; low keeps an unrelated alarm from opening an incident by itself, while
        # Sigma rules (built-in rule 4) give the ML endpoint and API alarms their real severity.
        title = f"CloudWatch alarm {event.alarm.name} entered ALARM"
        return [_signal(rule=ALARM_RULE, title=title, severity=Severity.LOW, standalone=True, event=event)]
    if event.compliance is not None:
        return _compliance_signals(event)
    return []


def _compliance_signals(event: NormalizedEvent) -> list[Signal]:
    """Low, like an alarm: a Config rule on anything (tags, backups) opens nothing by itself; built-in rules give
    the ML ones their severity. A return to COMPLIANT from NON_COMPLIANT is informational context: it joins the
    incident of the resource it names (a notebook, an endpoint) and opens none. NOT_APPLICABLE, INSUFFICIENT_DATA,
    and a first COMPLIANT verdict say nothing changed for the worse or back."""
    compliance = event.compliance
    assert compliance is not None
    subject = f"{compliance.resource_type} {compliance.resource_id}"
    if compliance.compliance == NON_COMPLIANT and compliance.previous_compliance != NON_COMPLIANT:
        title = f"AWS Config: {subject} is NON_COMPLIANT with {compliance.rule}"
        return [_signal(rule=CONFIG_RULE, title=title, severity=Severity.LOW, standalone=True, event=event)]
    if compliance.compliance == "COMPLIANT" and compliance.previous_compliance == NON_COMPLIANT:
        title = f"AWS Config: {subject} is COMPLIANT again with {compliance.rule}"
        return [_signal(rule=CONFIG_RULE, title=title, severity=Severity.INFORMATIONAL, standalone=False, event=event)]
    return []
