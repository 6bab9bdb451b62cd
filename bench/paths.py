"""Where the benchmark's inputs live, and a check that fails loudly, naming the path, when one is missing.

The SigmaHQ rules are vendored (bench/rules/); the real CloudTrail samples are read from ../shared/samples, as the
tests read them. `CORDON_SAMPLES` points elsewhere when the samples folder is not beside the clone.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
SIGMAHQ_RULES = BENCH / "rules" / "sigmahq-cloudtrail"
SAMPLES = Path(os.environ.get("CORDON_SAMPLES", str(REPO.parent / "shared" / "samples")))
INVICTUS = SAMPLES / "invictus-aws_dataset" / "CloudTrail"
STRATUS = SAMPLES / "datadog-stratus-red-team" / "docs" / "detonation-logs"
SITE_CONFIG = REPO / "examples" / "cordon.yaml"
TEMPLATE = REPO / "template.yaml"
OUT = BENCH / "out"  # generated inputs (the rules converted to EQL); not committed
EQL_RULES = OUT / "sigmahq_eql.json"
RESULTS = BENCH / "results.json"
DOC = REPO / "docs" / "benchmarks.md"

SIGMAHQ_RULE_COUNT = 57


class MissingInputError(RuntimeError):
    """An input the benchmark needs is not there: it stops instead of measuring something else."""


def require(path: Path, what: str, pattern: str = "*") -> list[Path]:
    """The files matching `pattern` under `path` (sorted), or MissingInputError naming the path and what it holds."""
    found = sorted(path.glob(pattern)) if path.is_dir() else []
    if not found:
        raise MissingInputError(f"missing input: {path} ({what}) is not there or holds no {pattern}")
    return found


def sigmahq_rule_files() -> list[Path]:
    files = require(SIGMAHQ_RULES, "the vendored SigmaHQ CloudTrail rules", "*.yml")
    if len(files) != SIGMAHQ_RULE_COUNT:
        raise MissingInputError(f"{SIGMAHQ_RULES} holds {len(files)} rules, expected {SIGMAHQ_RULE_COUNT}")
    return files
