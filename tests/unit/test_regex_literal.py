"""The literal read from a regular expression lies in every text the expression finds a match in: a `|re` rule
that tests it first never misses an event the expression alone would match."""

from __future__ import annotations

import re

import pytest
import re2
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from correlators.sigma.literals import required_literal


@pytest.mark.parametrize(
    ("pattern", "literal"),
    [
        (".+:assumed-role/aws:.+", ":assumed-role/aws:"),  # SigmaHQ's IMDS rule
        ("^abc$", "abc"),
        (r"a\.b", "a.b"),
        ("ab?c", "a"),  # b is optional: "ac" matches
        ("abc+d", "ab"),
        ("xy*", "x"),
        ("ab{2}c", "a"),  # reading stops at a counted repetition, which may be {0}
        ("abc[de]f", "abc"),
        ("x(abc)?", "x"),
        ("a.*bcd*e", "bc"),
        (r"foo\x41bar", "foo"),  # an escape of several characters stops the reading
        (r"\d+foo", None),
        ("a|b", None),
        ("(a)b|c", None),
        ("(?i)abc", None),
        (".*", None),
    ],
)
def test_required_literal(pattern: str, literal: str | None) -> None:
    assert required_literal(pattern) == literal


_PIECES = ("a", "b", ":", "/", "-", " ", ".", "^", "$", "?", "*", "+", "{2}", "{0,1}", r"\.", r"\d", "[ab]", "(a)", "|")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=8).map("".join), st.data())
def test_every_text_a_pattern_matches_contains_its_literal(pattern: str, data: st.DataObject) -> None:
    try:
        python, google = re.compile(pattern), re2.compile(pattern)
    except (re.error, re2.error):
        assume(False)
        raise
    literal = required_literal(pattern)
    assume(literal is not None)
    assert literal is not None
    # a text with a match somewhere (as `re` reads the pattern), and any short text either engine finds one in
    text = data.draw(st.from_regex(python))
    assert literal in text, (pattern, text)
    other = data.draw(st.text(alphabet="ab:/-. 1", max_size=12))
    if python.search(other) or google.search(other):
        assert literal in other, (pattern, other)
