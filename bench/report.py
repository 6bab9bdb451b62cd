"""The verdicts: each target of issue 8 against what the run measured, PASS or MISS, into bench/results.json (the
issue's shape, plus `targets` with the verdicts and `run` with what the figures were measured on), onto stdout,
and into the generated part of docs/benchmarks.md (between its `bench:begin` / `bench:end` markers)."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.paths import DOC, RESULTS

BEGIN, END = "<!-- bench:begin (written by make bench) -->", "<!-- bench:end -->"


@dataclass(frozen=True)
class Target:
    number: int
    name: str
    measured: float
    goal: float
    higher_is_better: bool
    unit: str
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.measured >= self.goal if self.higher_is_better else self.measured <= self.goal

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "MISS"

    @property
    def wanted(self) -> str:
        return f"{'>=' if self.higher_is_better else '<='} {self.goal:g}{self.unit}"

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "measured": round(self.measured, 4),
            "target": self.wanted,
            "verdict": self.verdict,
            "note": self.note,
        }


def cpu_model() -> tuple[str, int]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return model, os.cpu_count() or 0


def write_results(results: dict[str, Any], targets: list[Target], run: dict[str, Any]) -> dict[str, Any]:
    model, cores = cpu_model()
    document = {
        **results,
        "targets": {target.name: target.as_json() for target in targets},
        "run": {**run, "cpu": model, "cores": cores, "python": platform.python_version(), "date": _today()},
    }
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    return document


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def table(targets: list[Target]) -> str:
    lines = ["| # | target | measured | wanted | verdict |", "|---|---|---|---|---|"]
    for t in targets:
        note = f" ({t.note})" if t.note else ""
        lines.append(f"| {t.number} | {t.name} | {t.measured:,.3g}{t.unit}{note} | {t.wanted} | **{t.verdict}** |")
    return "\n".join(lines)


def print_verdicts(targets: list[Target]) -> None:
    print("\nTargets of issue 8 (CPU time, same run, same machine):", flush=True)
    for t in targets:
        note = f"  ({t.note})" if t.note else ""
        print(f"  {t.verdict}  {t.number}. {t.name}: {t.measured:,.3g}{t.unit}, wanted {t.wanted}{note}", flush=True)


def write_doc(generated: str) -> None:
    """Replace the generated part of docs/benchmarks.md; the hand-written method and analysis stay."""
    text = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = f"{text.rstrip()}\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(f"{head}{BEGIN}\n{generated.strip()}\n{END}{tail}")
