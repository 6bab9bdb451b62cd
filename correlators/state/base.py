"""The state-store interface every store implements (memory, SQLite, DynamoDB): the store is the truth.

Lambda delivers at least once, runs invocations side by side and may die mid-batch, so nothing that decides an
incident lives in a process: signals, the entity > incident links, incident versions, signal membership and the
events already seen are all items here, and every change to incidents goes through one atomic, conditional
`commit`. A commit that lost a race returns False and changes nothing; the caller re-reads and tries again
(optimistic concurrency, as DynamoDB's conditional writes and transactions give it).

Item shapes (DynamoDB's in brackets):
- signal: one per (signal, partition) [pk = partition, sk = event time + signal id, TTL = expiry]; idempotent.
- seen event: the delivery key of an event, written only after every signal and incident change of that event.
- incident: the bounded incident document and its `version` [pk = incident id]; the version is the condition.
- entity links: per linking entity, the incidents it ties together and their raising spans, with a version
  [pk = entity key]. Every commit that changes an incident's links or span rewrites these items under their
  version condition, so two writers that would each open an incident for one identity conflict, and the loser
  re-reads and joins the winner.
- membership: signal id > incident id, created (never overwritten: a commit that would count a signal already
  counted anywhere fails) with the incident version that counts it, so a signal is counted once, in one incident,
  however often and wherever in parallel its event is processed. A merge leaves memberships pointing at the merged
  incident, whose `merged_into` leads to the survivor.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from correlators.signals import Incident, Signal


@dataclass(frozen=True)
class Span:
    """The event-time span of an incident's raising signals (its core; context around it does not widen it)."""

    first: datetime
    last: datetime


@dataclass
class EntityLinks:
    """The link item of one entity: which incidents it ties signals to, and their raising spans."""

    entity: str
    version: int = 0  # 0: the item does not exist yet
    incidents: dict[str, Span] = field(default_factory=dict)


@dataclass
class IncidentWrite:
    incident: Incident  # carries its new version
    expected_version: int  # 0: must not exist yet (conditional create on the deterministic id)


@dataclass
class LinksWrite:
    links: EntityLinks  # carries its new version
    expected_version: int  # 0: must not exist yet


@dataclass
class Commit:
    """Everything one step of incident upkeep changes, applied all together or not at all."""

    incidents: list[IncidentWrite] = field(default_factory=list)
    links: list[LinksWrite] = field(default_factory=list)
    members: dict[str, str] = field(default_factory=dict)  # signal id > incident id; each must not exist yet

    # DynamoDB transactions take 100 items; the upkeep splits bigger changes into several commits.
    MAX_ITEMS = 100

    @property
    def size(self) -> int:
        return len(self.incidents) + len(self.links) + len(self.members)


class StateStore(ABC):
    # True for a store that drops expired items by itself (DynamoDB's TTL): its `expire_signals` and `evict_stalest`
    # do nothing and return 0, and the pipeline skips housekeeping for it.
    expires_by_itself: bool = False

    # --- signals: append-only, written once under every partition they belong to ----------------------------
    @abstractmethod
    def put_signal(self, signal: Signal, partitions: Iterable[str], expires: datetime) -> bool:
        """Store a signal under each partition until `expires` (event time; DynamoDB's TTL in AWS); False when
        it was already stored (writing it again changes nothing)."""

    @abstractmethod
    def signals(
        self, partition: str, start: datetime, end: datetime, *, newest_first: bool = False, limit: int | None = None
    ) -> list[Signal]:
        """Signals of one partition with start <= time <= end, oldest first (by time, then signal id), or newest
        first; at most `limit` of them (strongly consistent)."""

    @abstractmethod
    def signal_count(self) -> int: ...

    @abstractmethod
    def expire_signals(self, now: datetime) -> int:
        """Drop signals whose `expires` is before `now`; how many went (DynamoDB's TTL does this by itself)."""

    @abstractmethod
    def evict_stalest(self, keep: int) -> int:
        """Drop the oldest signals (by event time) until at most `keep` remain; how many went."""

    # --- events already processed ---------------------------------------------------------------------------------
    @abstractmethod
    def seen(self, key: str) -> bool:
        """True when an event with this delivery key was completely processed before."""

    @abstractmethod
    def mark_seen(self, key: str, time: datetime) -> None:
        """Record that the event was completely processed: called after its signals and incidents are written."""

    def mark_new(self, key: str, time: datetime) -> bool:
        """`mark_seen` for an event whose processing writes nothing else (a CloudTrail call no rule can match),
        together with the look-up: True when it was not marked before. Stores with an atomic put-if-absent make it
        one step, so that of two processes taking one event side by side, one counts it."""
        if self.seen(key):
            return False
        self.mark_seen(key, time)
        return True

    @abstractmethod
    def forget_events(self, before: datetime) -> int:
        """Forget the marks made (stamped) before `before`; how many went. A store may keep a mark a little longer
        (the memory store forgets whole minutes, DynamoDB's TTL in its own time): the pipeline refuses an event
        beyond its horizon before it reads the event's mark, so a mark kept longer changes nothing."""

    # --- incidents ------------------------------------------------------------------------------------------------
    @abstractmethod
    def get_incident(self, incident_id: str) -> Incident | None:
        """The incident as last committed (strongly consistent), with its version."""

    @abstractmethod
    def get_links(self, entities: Iterable[str]) -> dict[str, EntityLinks]:
        """The link item of each entity key; an entity with none gets an empty item of version 0."""

    @abstractmethod
    def members(self, signal_ids: Iterable[str]) -> dict[str, str]:
        """Which incident each of these signals was counted in (signals counted nowhere are left out)."""

    @abstractmethod
    def commit(self, commit: Commit) -> bool:
        """Apply every write if every expected version still holds, else nothing; True when applied."""

    @abstractmethod
    def incidents(self, *, since: datetime | None = None) -> list[Incident]:
        """Live (not merged) incidents whose last signal is at or after `since`, oldest first."""

    @abstractmethod
    def unhandled_incidents(self) -> list[Incident]:
        """Live incidents changed since a shell last handled them (`mark_handled`): a run that died after a
        change and before its playbooks ran finds them here."""

    @abstractmethod
    def mark_handled(self, incident_id: str, version: int) -> None:
        """The shell handled this version (playbooks planned, or the incident event put on the bus); never
        moves backwards."""

    # --- the watermark: the latest event time taken into the state, by any process --------------------------------
    @abstractmethod
    def raise_watermark(self, time: datetime) -> datetime:
        """Raise the state's watermark to `time` unless it is later already, atomically (two processes raising at
        once end at the later of their times, never at the earlier), and return it as stored: the later of the
        stored one and `time`. It never goes down. Kept under the meta key `WATERMARK_KEY` as `watermark_text`
        writes it (what states written before this operation hold too); a batching store makes a raise visible to
        others at the latest when its batch commits."""

    def watermark(self) -> datetime | None:
        """The state's watermark as last stored; None before any event."""
        return parse_watermark(self.get_meta(WATERMARK_KEY))

    # --- small values that survive runs (correlation streaks, the watermark's text) -------------------------------
    @abstractmethod
    def get_meta(self, key: str) -> str | None: ...

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    def sync(self) -> None:  # noqa: B027 - optional hook; only a store that batches writes has any to commit
        """Make every write so far durable (and visible to other processes)."""

    def close(self) -> None:  # noqa: B027 - optional hook; the in-memory store has nothing to release
        """Release resources."""


# The meta key of the watermark. Its value is an ISO 8601 time in UTC, as `datetime.isoformat` writes it
# ("2026-11-20T09:00:00+00:00", or "...:00.250000+00:00"): as text, these sort in the order of their times (fixed
# width up to the seconds, then "+" before "."), so DynamoDB can compare them in a condition.
WATERMARK_KEY = "max_event_time"


def watermark_text(time: datetime) -> str:
    return time.astimezone(UTC).isoformat()


def parse_watermark(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def check_commit(
    commit: Commit, incident_versions: Mapping[str, int], link_versions: Mapping[str, int], members: Container[str]
) -> bool:
    """Whether every expected version of a commit holds against the current ones (missing items are version 0)
    and none of the signals it counts is counted already."""
    return (
        all(incident_versions.get(w.incident.id, 0) == w.expected_version for w in commit.incidents)
        and all(link_versions.get(w.links.entity, 0) == w.expected_version for w in commit.links)
        and not any(signal_id in members for signal_id in commit.members)
    )
