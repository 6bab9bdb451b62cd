"""Profiles for the targets a run misses: where the CPU goes (cProfile, cumulative time, CPU clock) and, for cold
start, which imports cost most (`python -X importtime`)."""

from __future__ import annotations

import cProfile
import io
import pstats
import subprocess
import sys
import time
from collections.abc import Sequence

from bench import cordon_side
from bench.cordon_side import Core
from bench.paths import REPO


def core_profile(core: Core, lines: Sequence[bytes], top: int = 30) -> str:
    """The top functions by cumulative CPU of the whole core over `lines` (in memory)."""
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    cordon_side.run(core, lines)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    text = out.getvalue()
    table = text[text.index("ncalls") :] if "ncalls" in text else text
    return "\n".join(line.replace(str(REPO) + "/", "").rstrip() for line in table.splitlines() if line.strip())


def import_profile(module: str, top: int = 15) -> str:
    """The imports of `module` that cost most, cumulative microseconds, from a fresh interpreter."""
    child = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True, check=True
    )
    rows: list[tuple[int, str]] = []
    for line in child.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        # "import time:   self [us] | cumulative | imported package"
        _, cumulative_us, name = line.removeprefix("import time:").split("|", 2)
        rows.append((int(cumulative_us), name.rstrip()))
    rows.sort(reverse=True)
    return "\n".join(f"{us / 1000:8.1f} ms  {name}" for us, name in rows[:top])
