"""`time_text`: an event time's text, remembered for UTC times, never another zone's text for an equal instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from correlators.model import time_text


def test_a_utc_time_is_spelled_as_isoformat_spells_it() -> None:
    for time in (datetime(2026, 11, 30, 9, 0, tzinfo=UTC), datetime(2026, 11, 30, 9, 0, 0, 250_000, tzinfo=UTC)):
        assert time_text(time) == time.isoformat()
        assert time_text(time) == time.isoformat()  # remembered, the same


def test_an_equal_instant_in_another_zone_keeps_its_own_offset() -> None:
    utc = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    paris = utc.astimezone(timezone(timedelta(hours=1)))
    assert paris == utc and hash(paris) == hash(utc)  # what a cache keyed on the time alone would confuse
    assert time_text(utc) == "2026-11-30T09:00:00+00:00"
    assert time_text(paris) == "2026-11-30T10:00:00+01:00"
    assert time_text(utc) == "2026-11-30T09:00:00+00:00"


def test_a_naive_time_is_spelled_without_an_offset() -> None:
    assert time_text(datetime(2026, 11, 30, 9, 0)) == "2026-11-30T09:00:00"
