"""Every pattern a rule writes runs in linear time: wildcards go to RE2, so an attacker who picks a user agent
cannot stall the correlator with a rule's `*a*a*b` (Python's backtracking `re` took 42 s on 3 KB of `a`)."""

from __future__ import annotations

import time
from pathlib import Path
from textwrap import dedent, indent

import pytest

from correlators.sigma import FieldView, load_rules
from tests.unit.test_sigma_evaluate import _event

# Budget in CPU seconds for one match of a 3 KB value: generous on a loaded 2-core machine; the backtracking
# matcher needs tens of seconds for the first pattern alone.
BUDGET = 1.0
ADVERSARIAL = "a" * 3000

PATTERNS = {
    "three wildcards": "'*a*a*b'",
    "eight wildcards": "'*a*a*a*a*a*a*a*b'",
    "single-character wildcards": "'*a?a?a?a*b'",
    "cased": "'*a*a*b'",
}


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_an_adversarial_user_agent_is_matched_within_budget(tmp_path: Path, name: str) -> None:
    modifier = "|cased" if name == "cased" else ""
    path = tmp_path / "rule.yml"
    detection = f"selection:\n  userAgent{modifier}: {PATTERNS[name]}\ncondition: selection\n"
    path.write_text(
        "title: adversarial wildcards\nlogsource:\n  product: aws\n  service: cloudtrail\n"
        f"detection:\n{indent(dedent(detection).strip(), '  ')}\n",
        encoding="utf-8",
    )
    (rule,) = load_rules([path]).detections
    view = FieldView(_event({"userAgent": ADVERSARIAL}))
    started = time.process_time()
    matched = rule.matches(view)
    spent = time.process_time() - started
    assert matched is False
    assert spent < BUDGET, f"{name}: {spent:.2f} s of CPU for one 3 KB value"


def test_wildcards_keep_their_meaning_on_re2(tmp_path: Path) -> None:
    path = tmp_path / "rule.yml"
    path.write_text(
        dedent(
            """
            title: wildcards
            logsource: {product: aws, service: cloudtrail}
            detection:
              selection:
                userAgent: 'Boto3/1.?? *os/LINUX*'
              condition: selection
            """
        ),
        encoding="utf-8",
    )
    (rule,) = load_rules([path]).detections
    assert rule.matches(FieldView(_event({"userAgent": "boto3/1.35 md/x\nos/linux#6.1"})))  # case, newline
    assert not rule.matches(FieldView(_event({"userAgent": "Boto3/1.3 md/x os/linux"})))  # `??` is two characters
    assert not rule.matches(FieldView(_event({"userAgent": "Boto3/1.35 md/x os/macos"})))
