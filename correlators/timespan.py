"""Durations written the way Sigma writes them (`30m`, `1h`, `7d`), parsed once into seconds.

Every duration is bounded: by `Timespan.MAX_SECONDS` (365 days), and tighter where a setting says so
(`Timespan("30d", maximum=7 * 86400)` raises "duration '30d' is longer than the maximum of 7d"). Windows are added
to event times and expiry instants, so an unbounded one would overflow `datetime` at run time; it is refused where
it is written instead, naming the bound.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

_SPEC = re.compile(r"(?P<count>[0-9]+)(?P<unit>[smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_DIGITS = 12  # more digits than any bounded duration needs; keeps int() away from huge strings


def describe(seconds: int) -> str:
    """`seconds` in the largest unit that divides it: 86400 -> '1d', 5400 -> '90m'."""
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


class Timespan:
    """A duration of zero or more seconds, at most `maximum` (and `MAX_SECONDS`). `Timespan("30m").seconds == 1800`."""

    __slots__ = ("seconds", "spec")

    MAX_SECONDS: ClassVar[int] = 365 * 86400

    def __init__(self, spec: str, maximum: int | None = None) -> None:
        parsed = _SPEC.fullmatch(spec.strip()) if isinstance(spec, str) else None
        if parsed is None:
            raise ValueError(f"invalid duration {spec!r}: use a number and one of s, m, h, d (e.g. '15m')")
        check_seconds(
            None if len(parsed["count"]) > _MAX_DIGITS else int(parsed["count"]) * _UNIT_SECONDS[parsed["unit"]],
            spec.strip(),
            maximum,
        )
        self.spec = spec.strip()
        self.seconds = int(parsed["count"]) * _UNIT_SECONDS[parsed["unit"]]

    @property
    def delta(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timespan) and other.seconds == self.seconds

    def __hash__(self) -> int:
        return hash(self.seconds)

    def __repr__(self) -> str:
        return f"Timespan({self.spec!r})"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            lambda value: value if isinstance(value, Timespan) else Timespan(value),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda ts: ts.spec),
        )


def check_seconds(seconds: int | None, spec: str, maximum: int | None = None) -> None:
    """Raise ValueError naming the bound when `seconds` (None: too many digits to count) is out of range."""
    bound = Timespan.MAX_SECONDS if maximum is None else min(maximum, Timespan.MAX_SECONDS)
    if seconds is None or seconds > bound:
        spec = spec if len(spec) <= 24 else f"{spec[:20]}...{spec[-1]}"
        raise ValueError(f"duration {spec!r} is longer than the maximum of {describe(bound)}")
