"""Shared pieces of the source parsers: timestamps, validation messages, the EventBridge context."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, GetCoreSchemaHandler, TypeAdapter, ValidationError
from pydantic_core import CoreSchema, core_schema

from correlators.errors import EventRejectedError

# Timestamps outside these years are typos or epoch-zero placeholders, never real AWS activity.
EARLIEST_YEAR = 2000
LATEST_YEAR = 2100


def parse_time(value: object) -> datetime:
    """An ISO-8601 timestamp as tz-aware UTC. AWS writes `Z` or `+0000`; a missing zone means UTC."""
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 timestamp string, got {value!r}")
    return _parse_time_text(value)


# CloudTrail times are to the second and a busy account writes several records a second: the same text recurs
# (~4 records a time on the samples). A datetime is immutable, so the records of one second share one.
@lru_cache(maxsize=4096)
def _parse_time_text(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as error:
        raise ValueError(f"impossible timestamp {value!r} ({error})") from None
    if not EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
        raise ValueError(f"impossible timestamp {value!r} (year outside {EARLIEST_YEAR}..{LATEST_YEAR})")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


Timestamp = Annotated[datetime, BeforeValidator(parse_time)]


class _Uncopied:
    """Checks that a value is a JSON object and keeps it as it is: `dict[str, Any]` validation copies every object
    (a fifth of a CloudTrail record's validation), and its keys are strings already, as JSON's always are. A wrong
    value is refused with the very error `dict[str, Any]` gives (dict_type, "Input should be a valid dictionary")."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.custom_error_schema(core_schema.is_instance_schema(dict), custom_error_type="dict_type")


# For source fields the parser only reads (the document stays in `raw` as it came: a copy would be a second one).
JsonObject = Annotated[dict[str, Any], _Uncopied]


class SourceModel(BaseModel):
    """The fields a parser needs from a source document; everything else stays in `raw`, untouched."""

    model_config = ConfigDict(extra="ignore", frozen=True)


M = TypeVar("M", bound=SourceModel)


def validate(model: type[M], document: dict[str, Any], label: str) -> M:
    """`model` parsed from `document`, or EventRejectedError("<label>: <field>: <problem>")."""
    try:
        # The model's own validator, as model_validate calls it but without passing on six unset options:
        # a tenth of a CloudTrail record's normalization.
        return model.__pydantic_validator__.validate_python(document)  # type: ignore[no-any-return]
    except ValidationError as error:
        raise EventRejectedError(f"{label}: {describe(error)}") from None


Fields = TypeVar("Fields")


class SourceFields(Generic[Fields]):
    """The fields a parser needs from a source document as a TypedDict (configured `extra="ignore"`), validated by
    pydantic into a plain dict: the checks and refusals of a `SourceModel` with the same fields, word for word, but
    no model instance is built per document, nor read attribute by attribute (for a CloudTrail record, a third of
    its validation). An optional field the document lacks stays absent: read it with `.get`."""

    def __init__(self, fields: type[Fields], label: str) -> None:
        self._validate = TypeAdapter(fields).validator.validate_python
        self.label = label

    def validate(self, document: dict[str, Any]) -> Fields:
        """The fields of `document`, or EventRejectedError("<label>: <field>: <problem>")."""
        try:
            return self._validate(document)  # type: ignore[no-any-return]
        except ValidationError as error:
            raise EventRejectedError(f"{self.label}: {describe(error)}") from None


def describe(error: ValidationError) -> str:
    """Every problem, `field: problem; field: problem`, so one run shows all that is missing."""
    return "; ".join(_problem(detail) for detail in error.errors())


def _problem(detail: Any) -> str:
    field = ".".join(str(part) for part in detail["loc"])
    if detail["type"] == "missing":
        problem = "missing"
    elif detail["type"] == "value_error":
        problem = str(detail["ctx"]["error"])
    else:
        problem = f"{detail['msg'][0].lower()}{detail['msg'][1:]}, got {detail['input']!r:.60}"
    return f"{field}: {problem}" if field else problem


def dig(document: Any, *path: str) -> Any:
    """document[path[0]][path[1]]..., or None where a step is missing or not an object."""
    for key in path:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def mapping(value: Any) -> dict[str, Any]:
    """A JSON object, else {} (a producer may put null, a string or a list where an object belongs)."""
    return value if isinstance(value, dict) else {}


def text(value: Any) -> str | None:
    """A non-empty string, else None (AWS writes "" and null for absent values)."""
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Envelope:
    """What an EventBridge envelope adds around its `detail` (all optional: bare records have none)."""

    id: str | None = None
    account: str | None = None
    region: str | None = None
    time: str | None = None


# What a bare record (no EventBridge envelope) is parsed with: one shared, as it is frozen (making one per record
# cost almost a microsecond).
NO_ENVELOPE = Envelope()
