"""Incidents as graphs, kept in the store: signals tied to the entities they name, grouped the way Amazon Detective
groups findings, correct when many processes deliver the same events in any order, at least once.

A raise (a correlation that holds, or a standalone signal) joins every live incident that shares one of its linking
entities and whose raising span lies within `incident_window` of its own; the incidents it proves to be one merge.
The search is a closure: a joined incident brings its own links and span, which may reach further incidents. It
walks the entity link items read from the store, never a process-wide cache. The survivor of a merge is the
incident with the earliest origin (its earliest raising signal); when the new raise is earlier than every incident
it joins, it opens the survivor and the others merge into it.
Because joining only ever widens spans and links, the result is the same whatever order raises arrive in.

Context: a signal that raises nothing joins the live incident whose raising span it lies within `incident_window`
of, through a shared linking entity; and when an incident's span or links grow, it pulls in the signals of its
links that the growth newly covers, from the store. Either the signal or the incident arrives first; both ways end
the same. After each commit the newly covered ranges are read once more: a signal written by another process
between the read and the commit is picked up then (it read the links before the commit, so it did not join).

Every change is one conditional commit (incident versions, link-item versions, signal membership); a lost race
re-reads and retries. Assets and IPs are never linking nodes: a bucket that every analyst reads, or a shared NAT
address, would glue strangers into the attacker's incident.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from correlators.errors import StateError
from correlators.model import Entity, Severity
from correlators.signals import Incident, Signal
from correlators.state.base import Commit, EntityLinks, IncidentWrite, LinksWrite, Span, StateStore

Coverage = dict[str, tuple[datetime, datetime]]  # link > the event-time range its context was pulled for

_MAX_ATTEMPTS = 50  # commits lost to other writers before giving up; each loss means another writer progressed
_SIGNALS_PER_COMMIT = 80
_LINK_RETENTION = timedelta(days=7)
_LINK_ENTRIES_KEPT = 300  # an entity's link item stays far below the item size limit


def identity_entities(signals: Iterable[Signal]) -> list[Entity]:
    found: dict[str, Entity] = {}
    for signal in signals:
        for entity in signal.identities:
            found.setdefault(entity.key, entity)
    return list(found.values())


def linking_entities(signals: Iterable[Signal]) -> list[Entity]:
    """The nodes that tie these signals to an incident (`Signal.linking`)."""
    found: dict[str, Entity] = {}
    for signal in signals:
        for entity in signal.linking:
            found.setdefault(entity.key, entity)
    return list(found.values())


def entity_partition(key: str) -> str:
    """The signal partition of one linking entity: what context is pulled from."""
    return f"entity|{key}"


def incident_id(rule: str, first: Signal) -> str:
    digest = hashlib.sha256(f"{rule}\n{first.id}".encode()).hexdigest()
    return f"inc-{digest[:16]}"


@dataclass(frozen=True)
class Raise:
    """A rule raised an incident with these signals (time-ordered) and links."""

    rule: str
    title: str
    severity: Severity
    signals: tuple[Signal, ...]
    links: frozenset[str]

    @property
    def origin(self) -> tuple[datetime, str, str]:
        return (self.signals[0].time, self.signals[0].id, self.rule)


def _covered(incident: Incident, signal: Signal) -> bool:
    """Whether the incident already pulled this signal's range for one of its links: then, once its own event
    was processed, it is counted here (the signal's own processing, or a pull, put it in)."""
    for key in signal.linking_keys:
        covered = incident.covered.get(key)
        if covered is not None and covered[0] <= signal.time <= covered[1]:
            return True
    return False


class IncidentGraph:
    def __init__(self, store: StateStore, window: timedelta, retention: timedelta | None = None) -> None:
        self._store = store
        self._window = window
        # Link entries of incidents this far behind a new raise can no longer join anything: they are pruned.
        # Generous: an entry costs a few dozen bytes, and a pruned one only matters to an event that late.
        self._retention = max(retention or window, _LINK_RETENTION) + window
        self.changed: set[str] = set()  # incidents this process committed: for reporting, never for deciding
        self.created = 0

    # --- raising ----------------------------------------------------------------------------------------------------
    def raise_incident(
        self,
        rule: str,
        title: str,
        severity: Severity,
        signals: Sequence[Signal],
        extra_links: Iterable[Entity] = (),
        trigger: Signal | None = None,
    ) -> str:
        """Open or update the incident these signals belong to; `rule` raised it with `severity`; `trigger` is the
        signal being processed (the others were processed, or are being, by their own events; None: look every
        signal up). Returns its id."""
        ordered = tuple(sorted(signals, key=lambda s: s.sort_key))
        links = frozenset(key for s in ordered for key in s.linking_keys) | {e.key for e in extra_links}
        raised = Raise(rule, title, severity, ordered, links)
        for _ in range(_MAX_ATTEMPTS):
            outcome = self._try_raise(raised, trigger)
            if outcome is None:
                continue  # lost a race: read again
            survivor, had, rest = outcome
            if rest:
                self._attach(survivor.id, rest, pull=True)
            elif had is not None:
                # Read the newly covered ranges once more: a signal another writer stored before this commit,
                # having read the links before it, did not join by itself; it is in these ranges now. Those
                # counted already (by this commit, mostly) are left out here, before `_attach` reads the incident.
                late = self._not_members(self._pull(had, survivor.covered))
                if late:
                    self._attach(survivor.id, late, pull=False)
            return survivor.id
        raise StateError(f"incident for rule {rule!r} not committed after {_MAX_ATTEMPTS} conflicting writes")

    def _try_raise(
        self, raised: Raise, trigger: Signal | None
    ) -> tuple[Incident, Coverage | None, list[Signal]] | None:
        """One attempt: the committed survivor, the coverage it had before (None when this commit did not
        complete its coverage) and the signals left for later commits; None when a race was lost."""
        component, link_items = self._closure(raised)
        survivor, expected = self._survivor(raised, component)
        if survivor is None:
            return None
        others = [i for i in component.values() if i.id != survivor.id]
        writes = [IncidentWrite(survivor, expected)]
        for other in others:
            survivor.absorb(other)
            merged = other.model_copy(update={"merged_into": survivor.id, "version": other.version + 1})
            writes.append(IncidentWrite(merged, other.version))
        survivor.raise_by(raised.rule, raised.severity, raised.title)
        # Set only when moved: an assignment goes through pydantic's __setattr__, and most raises move one end.
        first, last = raised.signals[0].time, raised.signals[-1].time
        if first < survivor.core_first:
            survivor.core_first = first
        if last > survivor.core_last:
            survivor.core_last = last
        survivor.links = sorted(set(survivor.links) | raised.links)
        covered = self._coverage(survivor)
        # Without a trigger every signal is looked up; with one, the others already covered are counted already.
        candidates = [s for s in raised.signals if trigger is None or s.id == trigger.id or not _covered(survivor, s)]
        fresh = self._not_members([*candidates, *self._pull(survivor.covered, covered)])
        # A commit holds at most Commit.MAX_ITEMS items: the incident writes and one link item per linking key come
        # first, members fill what is left, and the rest go in the next commits (a merge of two incidents with many
        # identities left too little room for 80 members: "one change touches 104 items").
        room = Commit.MAX_ITEMS - len(writes) - len(survivor.links)
        per_commit = max(1, min(_SIGNALS_PER_COMMIT, room))
        now, later = fresh[:per_commit], fresh[per_commit:]
        for signal in now:
            survivor.add_signal(signal)
        had = None
        if not later:
            had, survivor.covered = survivor.covered, covered
        survivor.version += 1
        commit = Commit(incidents=writes, members={s.id: survivor.id for s in now})
        missing = [key for key in survivor.links if key not in link_items]
        link_items.update(self._store.get_links(missing))
        gone = {other.id for other in others}
        span = Span(survivor.core_first, survivor.core_last)
        for key in survivor.links:
            commit.links.append(self._link_write(link_items[key], survivor.id, span, gone))
        if commit.size > Commit.MAX_ITEMS:
            raise StateError(f"incident {survivor.id}: one change touches {commit.size} items (links: {len(writes)})")
        if not self._store.commit(commit):
            return None
        self.changed -= gone
        self.changed.add(survivor.id)
        if expected == 0:
            self.created += 1
        return survivor, had, later

    def _closure(self, raised: Raise) -> tuple[dict[str, Incident], dict[str, EntityLinks]]:
        """The live incidents this raise joins, directly or through incidents it joins: the raise's connected
        component in the graph of entities and incidents, walked over the link items read from the store until
        no joined incident reaches another."""
        window = self._window
        # The component's span (its raises' and incidents'), widened by the window either side: an entry whose
        # span reaches into it is near (the two spans come within the window of each other). Two times, where a
        # Span built at each join and a comparison function cost a call each.
        low, high = raised.signals[0].time - window, raised.signals[-1].time + window
        links = set(raised.links)
        component: dict[str, Incident] = {}
        link_items: dict[str, EntityLinks] = {}
        refused: set[str] = set()

        def join(incident: Incident) -> None:
            nonlocal low, high
            component[incident.id] = incident
            low = min(low, incident.core_first - window)
            high = max(high, incident.core_last + window)
            links.update(incident.links)

        # The incident this raise would open may exist already (the same raise processed before) while the link
        # entries leading to it were pruned: start from it.
        seed = self._store.get_incident(incident_id(raised.rule, raised.signals[0]))
        while seed is not None and seed.merged_into is not None:
            seed = self._store.get_incident(seed.merged_into)
        if seed is not None:
            join(seed)
        grew = True
        while grew:
            grew = False
            link_items.update(self._store.get_links(links - link_items.keys()))
            for key in sorted(links):
                for other_id, other_span in link_items[key].incidents.items():
                    if other_id in component or other_id in refused:
                        continue
                    if other_span.first > high or other_span.last < low:
                        continue  # not near
                    incident = self._store.get_incident(other_id)
                    if incident is None or incident.merged_into is not None:
                        refused.add(other_id)  # a link entry outlived its incident's merge: a stale hint
                        continue
                    join(incident)
                    grew = True
        return component, link_items

    def _survivor(self, raised: Raise, component: dict[str, Incident]) -> tuple[Incident | None, int]:
        """The incident everything merges into (a copy to change) and its version now (0: to be created)."""
        earliest = min(component.values(), key=lambda i: i.origin, default=None)
        if earliest is not None and earliest.origin <= raised.origin:
            return earliest, earliest.version  # the store handed over its own copy
        new_id = incident_id(raised.rule, raised.signals[0])
        existing = self._store.get_incident(new_id)
        if existing is not None:
            # Already opened by this raise's first signal, and not found through the links: it was merged away
            # (its survivor is in `component` or about to be) or another writer is mid-way. Read again.
            return None, 0
        first = raised.signals[0]
        created = Incident(
            id=new_id,
            title=raised.title,
            severity=raised.severity,
            first_seen=first.time,
            last_seen=first.time,
            core_first=first.time,
            core_last=first.time,
            origin=raised.origin,
        )
        return created, 0

    def _link_write(self, item: EntityLinks, survivor: str, span: Span, gone: set[str]) -> LinksWrite:
        pruned_before = span.first - self._retention  # `other_span.last + retention >= span.first`, kept
        incidents = {
            other: other_span
            for other, other_span in item.incidents.items()
            if other not in gone and other_span.last >= pruned_before
        }
        incidents[survivor] = span
        if len(incidents) > _LINK_ENTRIES_KEPT:
            latest = sorted(incidents, key=lambda i: (incidents[i].last, i))[-_LINK_ENTRIES_KEPT:]
            incidents = {i: incidents[i] for i in latest} | {survivor: span}
        return LinksWrite(EntityLinks(item.entity, item.version + 1, incidents), item.version)

    # --- context --------------------------------------------------------------------------------------------------
    def attach_context(self, signal: Signal) -> str | None:
        """A signal that raises nothing joins the live incident of its identity whose raising span it is near."""
        # An entry is near when its span comes within the window of the signal's time.
        low, high = signal.time - self._window, signal.time + self._window
        candidates: set[str] = set()
        for item in self._store.get_links(signal.linking_keys).values():
            candidates.update(i for i, span in item.incidents.items() if span.first <= high and low <= span.last)
        if not candidates:
            return None  # most signals that raise nothing are near no incident
        live = [i for i in (self._store.get_incident(c) for c in sorted(candidates)) if i and i.merged_into is None]
        if not live:
            return None
        target = min(live, key=lambda i: i.origin)
        return self._attach(target.id, [signal], pull=False, loaded=target)

    def _attach(self, target: str, signals: Sequence[Signal], *, pull: bool, loaded: Incident | None = None) -> str:
        """Count these signals (those not counted yet) in `target`, following merges; with `pull`, also the
        context its links newly cover. Commits in chunks, re-read and retried on conflicts."""
        pending = list(signals)
        for _ in range(_MAX_ATTEMPTS):
            incident, loaded = loaded or self._live(target), None
            target = incident.id
            covered = self._coverage(incident) if pull else incident.covered
            if pull:
                pending += self._pull(incident.covered, covered)
            fresh = self._not_members(pending)
            chunk, rest = fresh[:_SIGNALS_PER_COMMIT], fresh[_SIGNALS_PER_COMMIT:]
            cover = pull and not rest and covered != incident.covered
            if not chunk and not cover:
                return target
            before = incident.covered
            for signal in chunk:
                incident.add_signal(signal)
            if cover:
                incident.covered = covered
            incident.version += 1
            commit = Commit(incidents=[IncidentWrite(incident, incident.version - 1)])
            commit.members = {s.id: incident.id for s in chunk}
            if not self._store.commit(commit):
                continue  # lost a race: read the incident again
            self.changed.add(incident.id)
            pending = rest
            if cover:
                # Read the newly covered ranges once more: a signal another writer stored before this commit,
                # having read the links before it, did not join by itself; it is in these ranges now.
                pending += self._pull(before, covered)
                pull = False
            if not pending and not pull:
                # Done: reading the incident again only to find nothing left cost a read and a membership
                # look-up for every signal that joined as context.
                return target
        raise StateError(f"incident {target}: signals not committed after {_MAX_ATTEMPTS} conflicting writes")

    def _live(self, incident_id: str) -> Incident:
        incident = self._store.get_incident(incident_id)
        while incident is not None and incident.merged_into is not None:
            incident = self._store.get_incident(incident.merged_into)
        if incident is None:
            raise StateError(f"incident {incident_id} is in the links but not in the store")
        return incident

    def _coverage(self, incident: Incident) -> Coverage:
        start, end = incident.core_first - self._window, incident.core_last + self._window
        return dict.fromkeys(incident.links, (start, end))

    def _pull(self, had: Coverage, covered: Coverage) -> list[Signal]:
        """Signals of the incident's links in the ranges `covered` adds to what it `had` covered."""
        found: dict[str, Signal] = {}
        for key, (start, end) in covered.items():
            before = had.get(key)
            ranges = [(start, end)] if before is None else [(start, before[0]), (before[1], end)]
            for low, high in ranges:
                if low < high:
                    for signal in self._store.signals(entity_partition(key), low, high):
                        found.setdefault(signal.id, signal)
        return list(found.values())

    def _not_members(self, signals: Iterable[Signal]) -> list[Signal]:
        unique = {s.id: s for s in signals}
        counted = self._store.members(unique)
        return sorted((s for i, s in unique.items() if i not in counted), key=lambda s: s.sort_key)
