"""Target 8: detection-to-action latency, in process: from the arrival of the event that completes an incident to
the first call into a responder, wall time (it is a latency, not a cost).

The stream runs through the core in memory; after each record, every incident that record created is planned
and executed at once by the executor `cordon replay --execute` builds, with a dry_run ceiling (so responders read
the target's state but change nothing) against a moto server on 127.0.0.1. The responders are the built-in ones,
each wrapped to note the moment it is first called. Claims, guards and the audit log (in memory) run as they do
in the runner; an incident whose playbooks call no responder (notifications only) has no action latency.
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from bench.cordon_side import Core, pipeline
from bench.moto_server import moto_server
from cordon.audit import MemoryAuditLog
from cordon.documents import incident_json
from cordon.playbooks.model import Mode
from cordon.respond import build_responder
from correlators.ingest import read_stream
from responders.base import Responder
from responders.catalog import builtin_responders


class _FirstCall:
    def __init__(self) -> None:
        self.at: float | None = None

    def note(self) -> None:
        if self.at is None:
            self.at = time.perf_counter()


def recording(responders: Mapping[str, type[Responder]], first: _FirstCall) -> dict[str, type[Responder]]:
    """Each responder class, subclassed so that its first read_state or apply notes the time, then runs as is."""

    def wrap(cls: type[Responder]) -> type[Responder]:
        def read_state(self: Responder, *args: Any) -> Any:
            first.note()
            return cls.read_state(self, *args)

        def apply(self: Responder, *args: Any) -> Any:
            first.note()
            return cls.apply(self, *args)

        return cast(type[Responder], type(cls.__name__, (cls,), {"read_state": read_state, "apply": apply}))

    return {name: wrap(cls) for name, cls in responders.items()}


@dataclass(frozen=True)
class Latency:
    samples_ms: list[float]
    incidents: int  # incidents created; those without a responder call give no sample

    def percentile(self, fraction: float) -> float:
        if not self.samples_ms:
            return float("nan")
        if len(self.samples_ms) == 1:
            return self.samples_ms[0]
        return statistics.quantiles(self.samples_ms, n=100, method="inclusive")[round(fraction * 100) - 1]


def measure(core: Core, lines: Sequence[bytes]) -> Latency:
    first = _FirstCall()
    samples: list[float] = []
    with moto_server() as endpoint:
        responders = recording(builtin_responders(), first)
        response = build_responder(
            core.config,
            core.rules,
            responders,
            MemoryAuditLog(),
            execute=True,
            endpoint_url=endpoint,
            max_mode=Mode.DRY_RUN,
        )
        core_pipeline = pipeline(core)
        seen: set[str] = set()
        for item in read_stream(io.BytesIO(b"".join(lines)), "bench"):
            arrived = time.perf_counter()
            core_pipeline.take(item)
            for incident_id in sorted(core_pipeline.incidents.changed - seen):
                seen.add(incident_id)
                incident = core_pipeline.store.get_incident(incident_id)
                if incident is None:
                    continue
                first.at = None
                response.respond(incident_json(incident))
                if first.at is not None:
                    samples.append(1000 * (first.at - arrived))
    return Latency(samples, len(seen))
