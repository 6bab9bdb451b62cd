"""The state-store interface every store implements (in-memory, SQLite; DynamoDB in the deployment)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import datetime

from correlators.signals import Incident, Signal


class StateStore(ABC):
    # True for a store that drops expired items by itself (DynamoDB's TTL): its `expire_signals` and `evict_stalest`
    # do nothing and return 0, and the pipeline skips housekeeping for it.
    expires_by_itself: bool = False

    # --- signals: append-only, written once under every partition they belong to ----------------------------
    @abstractmethod
    def put_signal(self, signal: Signal, partitions: Iterable[str], expires: datetime) -> bool:
        """Store a signal under each partition until `expires` (event time; DynamoDB's TTL in AWS); False (and
        nothing written) when it is already stored."""

    @abstractmethod
    def signals(self, partition: str, start: datetime, end: datetime) -> list[Signal]:
        """Signals of one partition with start <= time <= end, oldest first."""

    @abstractmethod
    def signal_count(self) -> int: ...

    @abstractmethod
    def expire_signals(self, now: datetime) -> int:
        """Drop signals whose `expires` is before `now` (the latest event time seen); how many went."""

    @abstractmethod
    def evict_stalest(self, keep: int) -> int:
        """Drop the oldest signals (by event time) until at most `keep` remain; how many went."""

    # --- de-duplication of deliveries ---------------------------------------------------------------------------
    @abstractmethod
    def remember_event(self, key: str, time: datetime) -> bool:
        """Record a delivery key; False when it was seen before (at-least-once delivery, duplicated files)."""

    @abstractmethod
    def forget_events(self, before: datetime) -> int: ...

    # --- incidents ----------------------------------------------------------------------------------------------
    @abstractmethod
    def put_incident(self, incident: Incident) -> None: ...

    @abstractmethod
    def get_incident(self, incident_id: str) -> Incident | None: ...

    @abstractmethod
    def incidents(self, *, since: datetime | None = None) -> list[Incident]:
        """Live (not merged) incidents whose last signal is at or after `since`, oldest first."""

    # --- small values that survive runs (the watermark, the change counter) -------------------------------------
    @abstractmethod
    def get_meta(self, key: str) -> str | None: ...

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook; the in-memory store has nothing to release
        """Release resources."""
