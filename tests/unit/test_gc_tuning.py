"""Loading the rules sets the collector up for a long stream (cordon/replay.py): a larger young generation, never
a smaller one than the process already had."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from cordon.replay import load_ruleset, tune_garbage_collector
from correlators.config import Config


@pytest.fixture
def saved_threshold() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_loading_the_rules_raises_the_young_threshold(saved_threshold: tuple[int, int, int]) -> None:
    gc.set_threshold(700, 10, 10)  # CPython's default
    load_ruleset(Config())
    young, middle, old = gc.get_threshold()
    assert young >= 10_000
    assert (middle, old) == (10, 10)


def test_a_larger_setting_is_kept(saved_threshold: tuple[int, int, int]) -> None:
    gc.set_threshold(50_000, 20, 30)
    tune_garbage_collector()
    assert gc.get_threshold() == (50_000, 20, 30)
