"""Correlation state: signals by partition and time, incidents, and the ids of events already seen.

The interface is shaped for an append-only signal table (DynamoDB in AWS: partition key = entity or
correlation-group key, sort key = event time + signal id), so concurrent writers never lose an update.
"""

from __future__ import annotations

from correlators.errors import StateError
from correlators.state.base import StateStore
from correlators.state.memory import MemoryStore
from correlators.state.sqlite import SqliteStore


def sqlite_path(url: str) -> str:
    """The file of a `sqlite://` URL, as SQLAlchemy reads them: `sqlite:///rel/state.db` is relative to the
    working directory, `sqlite:////abs/state.db` absolute, `sqlite://` alone an in-memory database."""
    path = url.removeprefix("sqlite://")
    return path.removeprefix("/") or ":memory:"


def open_store(url: str) -> StateStore:
    """`memory://` or `sqlite:///path/to/state.db` (`sqlite://:memory:` for a throwaway database)."""
    if url in ("memory", "memory://"):
        return MemoryStore()
    if url.startswith("sqlite://"):
        # One process working through a stream: its writes are committed in batches (SqliteStore).
        return SqliteStore(sqlite_path(url), batched=True)
    raise StateError(f"unknown state store {url!r}: use memory:// or sqlite:///path/to/state.db")


__all__ = ["MemoryStore", "SqliteStore", "StateStore", "open_store", "sqlite_path"]
