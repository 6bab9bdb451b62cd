"""Durations written the way Sigma writes them (`30m`, `1h`, `7d`), parsed once into seconds."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

_SPEC = re.compile(r"(?P<count>[0-9]+)(?P<unit>[smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Timespan:
    """A positive duration. `Timespan("30m").seconds == 1800`."""

    __slots__ = ("seconds", "spec")

    def __init__(self, spec: str) -> None:
        parsed = _SPEC.fullmatch(spec.strip()) if isinstance(spec, str) else None
        if parsed is None:
            raise ValueError(f"invalid duration {spec!r}: use a number and one of s, m, h, d (e.g. '15m')")
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
