"""`cordon replay`: the core run over event files, in one process."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from cordon.documents import incident_json
from correlators.config import Config
from correlators.ingest import Rejection, read_inputs
from correlators.pipeline import Pipeline, Stats
from correlators.sigma.loader import RuleSet, load_rules
from correlators.signals import Incident
from correlators.state import StateStore, open_store

if TYPE_CHECKING:  # the shell's AWS side; replay itself stays boto3-free
    from cordon.respond import IncidentResponse

BUILTIN_RULES = Path(str(files("correlators") / "rules"))  # package data: a folder in the installed package


@dataclass
class ReplayResult:
    incidents: list[Incident]
    rejected: list[Rejection] = field(default_factory=list)
    stats: Stats = field(default_factory=Stats)
    actions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # incident id -> its actions

    def incident_json(self, incident: Incident) -> dict[str, Any]:
        return {**incident_json(incident), "actions": self.actions.get(incident.id, [])}

    def to_json(self) -> dict[str, Any]:
        return {
            "incidents": [self.incident_json(i) for i in self.incidents],
            "rejected": [{"where": r.where, "reason": r.reason} for r in self.rejected],
            "stats": asdict(self.stats),
        }


def rule_paths(config: Config, extra: Sequence[Path] = ()) -> list[Path]:
    return ([BUILTIN_RULES] if config.builtin_rules else []) + list(config.rules) + list(extra)


def load_ruleset(config: Config, extra: Sequence[Path] = ()) -> RuleSet:
    return load_rules(rule_paths(config, extra))


def replay(
    paths: Sequence[str],
    config: Config,
    rules: RuleSet,
    state_url: str = "memory://",
    stdin: IO[bytes] | None = None,
    response: IncidentResponse | None = None,
    after: Callable[[StateStore, ReplayResult], None] | None = None,
) -> ReplayResult:
    """Correlate the files; with `response`, plan (and maybe apply) each touched incident's playbooks; `after` is
    handed the store, still open, and the result (the incident reports read the stored signals)."""
    store = open_store(state_url)
    try:
        pipeline = Pipeline(config, rules, store)
        result = ReplayResult(incidents=[], stats=pipeline.stats)
        for item in read_inputs(paths, stdin=stdin):
            rejection = pipeline.take(item)
            if rejection is not None:
                result.rejected.append(rejection)
        pipeline.flush()
        # What this run changed, and what an earlier run changed but died before handling: the store says which.
        unhandled = {i.id: i for i in store.unhandled_incidents()}
        changed = pipeline.incidents.changed
        result.incidents = [i for i in store.incidents() if i.id in changed or i.id in unhandled]
        if response is not None:
            for incident in result.incidents:
                result.actions[incident.id] = response.respond(incident_json(incident))
                store.mark_handled(incident.id, incident.version)
        if after is not None:
            after(store, result)
        return result
    finally:
        store.close()
