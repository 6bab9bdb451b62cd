"""Building the core's pipeline sets the collector up for a long stream (correlators/pipeline.py): a larger young
generation, never a smaller one than the process already had."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from correlators.config import Config
from correlators.pipeline import _YOUNG_COLLECTION_THRESHOLD, Pipeline, tune_garbage_collector
from correlators.sigma.loader import RuleSet
from correlators.state import MemoryStore


@pytest.fixture
def saved_threshold() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_building_a_pipeline_raises_the_young_threshold(saved_threshold: tuple[int, int, int]) -> None:
    gc.set_threshold(700, 10, 10)  # CPython's default
    Pipeline(Config(), RuleSet(), MemoryStore())
    young, middle, old = gc.get_threshold()
    assert young == _YOUNG_COLLECTION_THRESHOLD >= 50_000
    assert (middle, old) == (10, 10)


def test_a_larger_setting_is_kept(saved_threshold: tuple[int, int, int]) -> None:
    gc.set_threshold(80_000, 20, 30)
    tune_garbage_collector()
    assert gc.get_threshold() == (80_000, 20, 30)
