"""The detector builds its signals without validating them again (`correlators.model.trusted`): each must still be
exactly what `Signal(...)` makes of the same values, for every kind of signal (Sigma rules, findings, analyst
requests, alarms, Config verdicts) the demo scenarios, the attack examples, the fixtures and the samples raise."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from cordon.replay import load_ruleset
from correlators.config import load_config
from correlators.detect import (
    ALARM_RULE,
    CONFIG_RULE,
    GUARDDUTY_RULE,
    SECURITYHUB_REQUEST_RULE,
    SECURITYHUB_RULE,
    Detector,
)
from correlators.errors import EventRejectedError
from correlators.ingest import RawRecord, read_inputs
from correlators.normalize import normalize
from correlators.signals import Signal

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO.parent / "shared" / "samples"
SIGMAHQ = SAMPLES / "sigmahq-sigma" / "rules" / "cloud" / "aws" / "cloudtrail"


def _signals() -> list[Signal]:
    if not SAMPLES.is_dir():
        pytest.skip(f"no samples folder at {SAMPLES} (it sits beside the checkout, as ../shared/samples)")
    config = load_config(REPO / "examples" / "cordon.yaml")
    detector = Detector(load_ruleset(config, [SIGMAHQ]))
    signals: list[Signal] = []
    inputs = [REPO / "examples" / "scenarios", REPO / "examples" / "attacks", REPO / "examples" / "fixtures", SAMPLES]
    for item in read_inputs([str(path) for path in inputs]):
        if isinstance(item, RawRecord):
            try:
                events = normalize(item, config)
            except EventRejectedError:
                continue
            for event in events:
                signals += detector.detect(event)
    return signals


def test_every_signal_is_what_validation_makes_of_its_values() -> None:
    # GIVEN every signal the examples and the samples raise, of every kind
    signals = _signals()
    kinds = Counter(signal.rule for signal in signals)
    assert all(
        kinds[rule] > 0
        for rule in (ALARM_RULE, CONFIG_RULE, GUARDDUTY_RULE, SECURITYHUB_RULE, SECURITYHUB_REQUEST_RULE)
    ), kinds
    assert sum(kinds.values()) - sum(kinds[rule] for rule in (ALARM_RULE, CONFIG_RULE)) > 500

    for signal in signals:
        # WHEN it is built again by validation from the same values
        values = {name: getattr(signal, name) for name in Signal.model_fields}
        validated = Signal(**values)

        # THEN both hold the same values of the same types, given the same fields, and serialize alike
        assert list(signal.__dict__) == list(validated.__dict__), signal.rule
        for name in Signal.model_fields:
            mine, theirs = getattr(signal, name), getattr(validated, name)
            assert type(mine) is type(theirs) and mine == theirs, (signal.rule, name)
        assert signal.event is validated.event  # validation keeps a model instance as it is
        assert signal.model_fields_set == validated.model_fields_set
        assert signal == validated
        assert signal.model_dump_json() == validated.model_dump_json(), signal.rule
        assert signal.id == validated.id and signal.linking_keys == validated.linking_keys
