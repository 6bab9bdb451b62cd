"""The incident window's edges: a raise or a context signal exactly `incident_window` from an incident's raising
span joins it, on either side; one a microsecond further does not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from correlators.incidents import IncidentGraph
from correlators.model import Actor, EventSource, NormalizedEvent, Severity
from correlators.signals import Signal
from correlators.state import MemoryStore

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
WINDOW = timedelta(hours=1)
TICK = timedelta(microseconds=1)
# The incident's raising span: two raises ten minutes apart.
CORE = (T0, T0 + timedelta(minutes=10))


def _signal(time: datetime, event_id: str) -> Signal:
    event = NormalizedEvent(
        event_id=event_id,
        time=time,
        source=EventSource.CLOUDTRAIL,
        account="111122223333",
        action="iam:ListUsers",
        actor=Actor(principal="arn:aws:iam::111122223333:user/mallory"),
        raw={},
    )
    return Signal(rule="r", title="t", severity=Severity.HIGH, standalone=True, event=event)


def _graph() -> tuple[IncidentGraph, str]:
    graph = IncidentGraph(MemoryStore(), WINDOW)
    opened = graph.raise_incident("r", "t", Severity.HIGH, [_signal(CORE[0], "core-1")])
    assert graph.raise_incident("r", "t", Severity.HIGH, [_signal(CORE[1], "core-2")]) == opened
    return graph, opened


EDGES = [
    pytest.param(CORE[1] + WINDOW, True, id="after, at the edge"),
    pytest.param(CORE[1] + WINDOW + TICK, False, id="after, beyond"),
    pytest.param(CORE[0] - WINDOW, True, id="before, at the edge"),
    pytest.param(CORE[0] - WINDOW - TICK, False, id="before, beyond"),
]


@pytest.mark.parametrize(("time", "joins"), EDGES)
def test_a_context_signal_joins_within_the_window_edges_included(time: datetime, joins: bool) -> None:
    graph, opened = _graph()
    assert graph.attach_context(_signal(time, "context")) == (opened if joins else None)


@pytest.mark.parametrize(("time", "joins"), EDGES)
def test_a_raise_joins_within_the_window_edges_included(time: datetime, joins: bool) -> None:
    graph, opened = _graph()
    raised = graph.raise_incident("r", "t", Severity.HIGH, [_signal(time, "raise")])
    store = graph._store
    incident = store.get_incident(opened)
    assert incident is not None
    if joins:
        # Joined: one incident, whichever of the two survives (an earlier raise opens the survivor)
        assert len(store.incidents()) == 1 and store.incidents()[0].id == raised
        assert store.incidents()[0].signal_count == 3
    else:
        assert raised != opened and incident.merged_into is None and len(store.incidents()) == 2
