"""What one SQLite connection knows of the state file, valid until another connection commits to it.

SQLite's `PRAGMA data_version` changes exactly when another connection (another process, or another handle in this
one) has committed since the last look; this connection's own commits leave it as it is. So as long as it holds,
what the connection read or wrote itself is still what the file holds, and a read can be answered from here
instead of a query: the windows of partitions already read, link items, incident versions, memberships, meta. The
store clears all of it when the version moves, and never looks while its own write transaction is open (that
transaction holds the file's write lock: nobody else can commit).

Everything here is filled from reads and from the connection's own writes after they succeed; nothing is a guess.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from correlators.state.base import EntityLinks

# Beyond this many entries of one kind, the kind is dropped and refilled from the file: a bound on memory in a
# long run, not a working-set size (the signal window's working set is the partitions it reads).
MAX_ENTRIES = 200_000


def copy_links(links: EntityLinks) -> EntityLinks:
    return EntityLinks(links.entity, links.version, dict(links.incidents))


@dataclass
class Known:
    # Every (event time, signal id) row of each partition read so far, sorted as the table's key sorts them.
    windows: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    links: dict[str, EntityLinks] = field(default_factory=dict)  # version 0: no item
    incident_versions: dict[str, int] = field(default_factory=dict)  # 0: no incident
    members: dict[str, str] = field(default_factory=dict)
    not_members: set[str] = field(default_factory=set)  # signals known to be counted nowhere
    meta: dict[str, str | None] = field(default_factory=dict)

    def clear(self) -> None:
        for kind in (self.windows, self.links, self.incident_versions, self.members, self.not_members, self.meta):
            kind.clear()

    def bound(self) -> None:
        for kind in (self.windows, self.links, self.incident_versions, self.members, self.not_members):
            if len(kind) > MAX_ENTRIES:
                kind.clear()

    def window(
        self, partition: str, start: float, end: float, *, newest_first: bool, limit: int | None
    ) -> list[tuple[float, str]] | None:
        """The (time, signal id) rows of a partition read before with start <= time <= end, oldest first, at most
        `limit` of them from the end asked for; None when the partition was not read yet."""
        rows = self.windows.get(partition)
        if rows is None:
            return None
        # (t,) sorts before every (t, id): the first row at or after `start`, the first after `end`.
        low = bisect.bisect_left(rows, (start,))
        high = bisect.bisect_left(rows, (math.nextafter(end, math.inf),), lo=low)
        if limit is not None:
            low, high = (max(low, high - limit), high) if newest_first else (low, min(high, low + limit))
        return rows[low:high]

    def signal_added(self, partitions: list[str], time: float, signal_id: str) -> None:
        for partition in partitions:
            rows = self.windows.get(partition)
            if rows is not None:
                bisect.insort(rows, (time, signal_id))

    def signal_dropped(self, partitions: list[str], time: float, signal_id: str) -> None:
        for partition in partitions:
            rows = self.windows.get(partition)
            if rows is not None:
                at = bisect.bisect_left(rows, (time, signal_id))
                if at < len(rows) and rows[at] == (time, signal_id):
                    del rows[at]
        self.members.pop(signal_id, None)
        self.not_members.discard(signal_id)
