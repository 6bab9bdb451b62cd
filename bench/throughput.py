"""Targets 1, 2 and 5, side by side in one process on the same lines, in CPU time (time.process_time): Cordon's
whole core against the eql engine, the raw `orjson.loads` rate of the lines, and Cordon on SQLite against Cordon
in memory. The machine is shared: only ratios between runs of one process are compared with the targets."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench import cordon_side, eql_side
from bench.cordon_side import CordonRun, Core
from bench.eql_side import EqlRules, EqlRun


@dataclass(frozen=True)
class Throughput:
    cordon: CordonRun
    eql: EqlRun
    orjson_eps: float
    stage_eps: dict[str, float]  # the core's first stages alone (`cordon_side.stage_cpu`), events per CPU second


@dataclass(frozen=True)
class SqliteRate:
    memory: CordonRun
    sqlite: CordonRun


def stage_eps(core: Core, lines: Sequence[bytes], rounds: int = 3) -> dict[str, float]:
    """The best of a few rounds of each stage, as for the parse bound."""
    best: dict[str, float] = {}
    for _ in range(rounds):
        for stage, cpu in cordon_side.stage_cpu(core, lines).items():
            best[stage] = min(best.get(stage, float("inf")), cpu)
    return {stage: len(lines) / cpu for stage, cpu in best.items()}


def orjson_eps(lines: Sequence[bytes], rounds: int = 3) -> float:
    """The best of a few rounds: the parse bound is a ceiling, and one round takes well under a second."""
    best = float("inf")
    for _ in range(rounds):
        began = time.process_time()
        for line in lines:
            orjson.loads(line)
        best = min(best, time.process_time() - began)
    return len(lines) / best


def compare_engines(core: Core, rules: EqlRules, lines: Sequence[bytes], rounds: int = 3) -> Throughput:
    """Each engine `rounds` times, alternately, and the best CPU time of each: one round of each swung the ratio by
    a tenth from run to run on the shared machine (1.88x to 2.0x on one commit). Both engines get the same
    treatment; a later round of either finds the process's caches as its earlier rounds left them."""
    eql_run = cordon_run = None
    for _ in range(rounds):
        eql_now = eql_side.run(rules, lines)
        cordon_now = cordon_side.run(core, lines)
        eql_run = eql_now if eql_run is None or eql_now.cpu_s < eql_run.cpu_s else eql_run
        cordon_run = cordon_now if cordon_run is None or cordon_now.cpu_s < cordon_run.cpu_s else cordon_run
    assert eql_run is not None and cordon_run is not None, "at least one round"
    return Throughput(cordon_run, eql_run, orjson_eps(lines), stage_eps(core, lines))


def compare_stores(core: Core, lines: Sequence[bytes], rounds: int = 3) -> SqliteRate:
    """Memory and SQLite `rounds` times, alternately, each SQLite round on a new file, and the best CPU time of
    each, as `compare_engines` does: with one round of each, the fraction moved from 0.50 to 0.59 between two runs
    of one commit."""
    memory_run = sqlite_run = None
    for _ in range(rounds):
        memory_now = cordon_side.run(core, lines)
        with tempfile.TemporaryDirectory() as folder:
            sqlite_now = cordon_side.run(core, lines, f"sqlite:///{Path(folder) / 'state.db'}")
        memory_run = memory_now if memory_run is None or memory_now.cpu_s < memory_run.cpu_s else memory_run
        sqlite_run = sqlite_now if sqlite_run is None or sqlite_now.cpu_s < sqlite_run.cpu_s else sqlite_run
    assert memory_run is not None and sqlite_run is not None, "at least one round"
    return SqliteRate(memory_run, sqlite_run)
