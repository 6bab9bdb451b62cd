"""The reference engine of target 1: the `eql` package's `PythonEngine` running the SigmaHQ rules, converted to EQL
by pySigma's Elasticsearch backend (bench/sigma_to_eql.py), all of them in ONE engine, over the same JSON lines
Cordon reads, `json.loads` included.

Choices, each in eql's favour (the bench measures a floor under the reference, not a strawman):
- the queries are parsed and loaded before the clock starts (start-up excluded, as on Cordon's side);
- `time_unit` is set to milliseconds (eql's default is Windows FILETIME ticks); no rule uses a time window, so
  the event's time is left at 0 and never parsed: eql does no work it does not need;
- events are streamed one at a time with `stream_event`, as a streaming correlator would, and only the matches
  are kept (rule id, event id).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import eql

EVENT_TYPE = "generic"  # every converted query is `any where ...`
TIME_UNIT_MS = 1_000  # eql counts time in units per second; its default (10**7) is Windows FILETIME


@dataclass(frozen=True)
class EqlRules:
    queries: dict[str, str]  # SigmaHQ rule id -> EQL query
    titles: dict[str, str]  # every rule id -> title
    refused: dict[str, str]  # rule id -> why the backend could not convert it


@dataclass
class EqlRun:
    cpu_s: float
    events: int
    matches: dict[str, set[str]] = field(default_factory=dict)  # rule id -> event ids

    @property
    def eps(self) -> float:
        return self.events / self.cpu_s


def load_rules(path: Path) -> EqlRules:
    data = json.loads(path.read_text())
    converted: dict[str, dict[str, str]] = data["converted"]
    refused: dict[str, dict[str, str]] = data["refused"]
    titles = {rule: entry["title"] for rule, entry in (converted | refused).items()}
    return EqlRules(
        queries={rule: entry["query"] for rule, entry in converted.items()},
        titles=titles,
        refused={rule: entry["reason"] for rule, entry in refused.items()},
    )


def python_dialect(query: str) -> str:
    """The one spelling the Python parser reads differently: the backend escapes `/` in regular expressions as
    `\\/` (Elasticsearch's regex syntax), an escape eql's string literals refuse; `\\\\/` is the same two
    characters, which Python's `re` reads as `/`, as Elasticsearch does."""
    return query.replace("\\/", "\\\\/")


def build_engine(rules: EqlRules, matches: dict[str, set[str]]) -> Any:
    """One PythonEngine holding every query; each match adds the event's id under its rule in `matches`."""
    engine = eql.PythonEngine({"time_unit": TIME_UNIT_MS})
    # pySigma's backend writes Elasticsearch's EQL dialect (`field:"value"`, `like~`, `regex~`, `?field`).
    with eql.parser.elasticsearch_syntax, eql.parser.ignore_missing_functions:
        for rule, query in rules.queries.items():
            parsed = eql.parse_query(python_dialect(query))
            engine.add_analytic(eql.ast.EqlAnalytic(query=parsed, metadata={"id": rule}))

    def keep(output: Any) -> None:
        for event in output.events:
            matches[output.analytic_id].add(event.data.get("eventID"))

    engine.add_output_hook(keep)
    return engine


def run(rules: EqlRules, lines: Sequence[bytes]) -> EqlRun:
    matches: dict[str, set[str]] = defaultdict(set)
    engine = build_engine(rules, matches)
    stream, event, loads = engine.stream_event, eql.Event, json.loads
    began = time.process_time()
    for line in lines:
        stream(event(EVENT_TYPE, 0, loads(line)))
    engine.finalize()
    cpu = time.process_time() - began
    return EqlRun(cpu, len(lines), {rule: matches.get(rule, set()) for rule in rules.queries})
