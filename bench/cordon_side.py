"""Cordon's side: the whole core over the same JSON lines, by the path `cordon replay` takes (cordon/replay.py):
read (JSON decoding, record checks), normalize, detect, store signals, correlate, keep incidents up to date, in
the store the URL names. Built-in rules and the vendored SigmaHQ rules; start-up (loading rules, opening the
store) is outside the clock.
"""

from __future__ import annotations

import io
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from bench.paths import SIGMAHQ_RULES, SITE_CONFIG, sigmahq_rule_files
from cordon.replay import load_ruleset
from correlators.config import Config, load_config
from correlators.detect import Detector
from correlators.ingest import RawRecord, read_stream
from correlators.model import NormalizedEvent
from correlators.normalize import normalize_screened
from correlators.pipeline import Pipeline, Stats
from correlators.sigma.loader import RuleSet
from correlators.state import open_store


@dataclass(frozen=True)
class Core:
    config: Config
    rules: RuleSet


@dataclass
class CordonRun:
    cpu_s: float
    events: int
    stats: Stats
    incidents: int

    @property
    def eps(self) -> float:
        return self.events / self.cpu_s


def load_core() -> Core:
    sigmahq_rule_files()  # fails naming the folder if the vendored rules are missing
    config = load_config(SITE_CONFIG)
    return Core(config, load_ruleset(config, [SIGMAHQ_RULES]))


def pipeline(core: Core, state_url: str = "memory://") -> Pipeline:
    return Pipeline(core.config, core.rules, open_store(state_url))


def run(core: Core, lines: Sequence[bytes], state_url: str = "memory://") -> CordonRun:
    data = b"".join(lines)
    core_pipeline = pipeline(core, state_url)
    try:
        began = time.process_time()
        for item in read_stream(io.BytesIO(data), "bench"):
            core_pipeline.take(item)
        core_pipeline.flush()
        cpu = time.process_time() - began
        incidents = len(core_pipeline.store.incidents())
    finally:
        core_pipeline.store.close()
    return CordonRun(cpu, len(lines), core_pipeline.stats, incidents)


def stage_cpu(core: Core, lines: Sequence[bytes]) -> dict[str, float]:
    """CPU seconds of the first stages of the core alone, over the same lines: reading (JSON decoding with the
    checks that refuse a hostile line), and reading, normalizing and asking the rule index of each record (a
    CloudTrail call screened, any other event built): what target 2 is bounded by before any event is stored,
    deduplicated or correlated."""
    data = b"".join(lines)
    detector = Detector(core.rules)
    began = time.process_time()
    for _ in read_stream(io.BytesIO(data), "bench"):
        pass
    read = time.process_time() - began
    began = time.process_time()
    for item in read_stream(io.BytesIO(data), "bench"):
        if isinstance(item, RawRecord):
            normalize_screened(item, core.config, detector.may_match)
    screened = time.process_time() - began
    return {"read": read, "read_normalize_screen": screened}


def detections(core: Core, lines: Sequence[bytes], rule_ids: set[str]) -> dict[str, set[str]]:
    """Which events each of `rule_ids` flags, by the path the pipeline takes (outside any clock): a CloudTrail call
    the rule index screens out is not built, and flags nothing."""
    detector = Detector(core.rules)
    flagged: dict[str, set[str]] = defaultdict(set)
    for item in read_stream(io.BytesIO(b"".join(lines)), "bench"):
        if not isinstance(item, RawRecord):
            continue
        for event in normalize_screened(item, core.config, detector.may_match):
            if not isinstance(event, NormalizedEvent):
                continue
            for signal in detector.detect(event):
                if signal.rule in rule_ids:
                    flagged[signal.rule].add(str(item.payload.get("eventID")))
    return {rule: flagged.get(rule, set()) for rule in rule_ids}
