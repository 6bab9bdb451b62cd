"""The benchmark's own helpers (bench/): the stream it builds, the match comparison with its adjudications, the
request-unit arithmetic of the cost count, and the loud failure on a missing input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import streams
from bench.cost import _read_units, _write_units
from bench.matches import ADJUDICATED, compare
from bench.paths import MissingInputError, require


def test_an_hour_of_the_stream_is_time_ordered_with_fresh_ids_and_recurring_identities() -> None:
    first = list(streams.hour_records(0, real=[]))
    second = list(streams.hour_records(1, real=[]))
    times = [record["eventTime"] for record in first]
    assert times == sorted(times)
    ids = {record["eventID"] for record in first + second}
    assert len(ids) == len(first) + len(second)
    principals = {json.dumps(record["userIdentity"], sort_keys=True) for record in first}
    assert {json.dumps(record["userIdentity"], sort_keys=True) for record in second} & principals


def test_the_hoarder_reads_10000_distinct_objects_over_the_1x_stream_and_the_same_ones_beyond_it() -> None:
    def hoarded(hours: range) -> list[str]:
        return [
            record["requestParameters"]["key"]
            for hour in hours
            for _, record in streams.synthetic_hour(hour)
            if record["userIdentity"].get("userName") == "hoarder"
        ]

    one_x = hoarded(range(streams.HOURS_1X))
    assert len(one_x) == len(set(one_x)) == streams.HOARDER_OBJECTS
    assert set(hoarded(range(streams.HOURS_1X, streams.HOURS_1X + 1))) <= set(one_x)


def test_the_synthetic_workload_is_the_same_for_the_same_seed_and_embeds_the_attacks() -> None:
    assert streams.synthetic_hour(3) == streams.synthetic_hour(3)
    names = {record["eventName"] for _, record in streams.synthetic_hour(3)}
    assert {"StopLogging", "CreateAccessKey", "GetObject"} <= names


def test_a_difference_is_accepted_only_for_an_adjudicated_rule() -> None:
    adjudicated = next(iter(ADJUDICATED))
    titles = {"r1": "Some Rule", "r2": adjudicated}
    same = compare(titles, {"r1": {"e1"}, "r2": {"e2"}}, {"r1": {"e1"}, "r2": set()})
    assert same.same_matches
    assert [r.title for r in same.differing] == [adjudicated]

    different = compare(titles, {"r1": {"e1"}, "r2": set()}, {"r1": {"e1", "e9"}, "r2": set()})
    assert not different.same_matches
    assert [(r.title, r.only_eql) for r in different.unexplained] == [("Some Rule", 1)]


def test_a_rule_eql_does_not_run_is_a_difference() -> None:
    report = compare({"r1": "Some Rule"}, {"r1": set()}, {})
    assert [r.eql for r in report.differing] == [None]
    assert not report.same_matches


@pytest.mark.parametrize(
    ("size", "consistent", "units"),
    [(0, True, 1.0), (4096, True, 1.0), (4097, True, 2.0), (8192, False, 1.0), (100, False, 0.5)],
)
def test_read_units_per_started_4_kb_half_for_eventually_consistent(size: int, consistent: bool, units: float) -> None:
    assert _read_units(size, consistent) == units


@pytest.mark.parametrize(("size", "units"), [(1, 1.0), (1024, 1.0), (1025, 2.0), (3000, 3.0)])
def test_write_units_per_started_kb(size: int, units: float) -> None:
    assert _write_units(size) == units


def test_a_missing_input_names_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "samples" / "CloudTrail"
    with pytest.raises(MissingInputError, match=f"missing input: {missing} \\(log files\\)"):
        require(missing, "log files", "*.json")
