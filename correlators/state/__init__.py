"""Correlation state: signals by partition and time, incidents, and the ids of events already seen.

The interface is shaped for an append-only signal table (DynamoDB in AWS: partition key = entity or
correlation-group key, sort key = event time + signal id), so concurrent writers never lose an update.
"""

from __future__ import annotations

from correlators.errors import StateError
from correlators.state.base import StateStore
from correlators.state.memory import MemoryStore
from correlators.state.sqlite import SqliteStore


def open_store(url: str) -> StateStore:
    """`memory://` or `sqlite:///path/to/state.db` (`sqlite://:memory:` for a throwaway database)."""
    if url in ("memory", "memory://"):
        return MemoryStore()
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        path = path.removeprefix("/") if path.startswith("//") else path
        return SqliteStore(path or ":memory:")
    raise StateError(f"unknown state store {url!r}: use memory:// or sqlite:///path/to/state.db")


__all__ = ["MemoryStore", "SqliteStore", "StateStore", "open_store"]
