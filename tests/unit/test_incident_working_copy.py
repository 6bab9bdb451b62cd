"""A working copy of an incident (what every store hands out) shares nothing its holder can change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from correlators.model import Entity, EntityType, EventSource, NormalizedEvent, Severity
from correlators.signals import Incident, Signal

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _incident() -> Incident:
    return Incident(
        id="inc-1",
        title="t",
        severity=Severity.LOW,
        first_seen=T0,
        last_seen=T0,
        core_first=T0,
        core_last=T0,
        origin=(T0, "r|e0", "r"),
        links=["principal:arn:aws:iam::1:user/a"],
        covered={"principal:arn:aws:iam::1:user/a": (T0, T0)},
    )


def _signal(minute: int) -> Signal:
    event = NormalizedEvent(
        event_id=f"e{minute}",
        time=T0 + timedelta(minutes=minute),
        source=EventSource.CLOUDTRAIL,
        account="111122223333",
        raw={},
    )
    return Signal(rule="r", title="t", severity=Severity.HIGH, standalone=True, event=event)


def test_changing_every_field_of_a_copy_leaves_the_original_as_it_was() -> None:
    original = _incident()
    before = original.model_dump()
    copy = original.working_copy()
    copy.add_signal(_signal(1))
    copy.raise_by("other", Severity.HIGH, "other title")
    copy.links.append("access_key:AKIA")
    copy.covered["access_key:AKIA"] = (T0, T0)
    copy.entities.append(Entity(type=EntityType.BUCKET, id="b"))
    copy.version = 7
    assert original.model_dump() == before
    assert copy.signal_count == 1 and copy.version == 7


def test_a_copy_equals_its_original_until_changed() -> None:
    original = _incident()
    original.add_signal(_signal(0))
    assert original.working_copy() == original
    assert original.working_copy().model_dump_json() == original.model_dump_json()


def test_every_container_field_is_copied() -> None:
    # A list or dict field added to Incident must be copied too, or two holders of one incident would share it.
    original = _incident()
    copy = original.working_copy()
    for name, value in original.__dict__.items():
        if isinstance(value, list | dict | set):
            assert getattr(copy, name) is not value, name


def test_a_copy_has_what_pydantics_own_copy_has() -> None:
    # working_copy builds the copy by hand, as pydantic's __copy__ does, leaving out extra and private values:
    # right only while an Incident has none.
    assert not Incident.__private_attributes__ and Incident.model_config.get("extra") != "allow"
    original = _incident()
    original.add_signal(_signal(0))
    copy, reference = original.working_copy(), original.__copy__()
    assert copy.__dict__ == reference.__dict__
    assert copy.model_fields_set == reference.model_fields_set
    assert copy.model_fields_set is not original.model_fields_set
    assert (copy.__pydantic_extra__, copy.__pydantic_private__) == (reference.__pydantic_extra__, None)
