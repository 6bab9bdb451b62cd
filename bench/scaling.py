"""Targets 3 and 4: per-event CPU and peak memory at 1x and 4x the stream length, each size in a fresh process.

The stream (bench/streams.py) repeats its hours, so identities recur, and the hoarder reads 10,000 distinct
training objects over the 1x stream (the same objects again beyond it): an incident that grows. The child reads
the stream from a file, line by line as `cordon replay` does, so its peak RSS is the core's state, not the
benchmark's copy of the input. The peak is the one reached WHILE the stream runs: loading the rules (pySigma)
peaks higher than a day of state, so the process's lifetime peak would say nothing about the state. Linux resets
a process's peak (VmHWM) when "5" is written to /proc/self/clear_refs; the child does so once the rules are loaded.

    python -m bench.scaling STREAM.jsonl     # a child: prints {"cpu_s", "events", "rss_mb"} as JSON
"""

from __future__ import annotations

import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import streams
from bench.cordon_side import load_core, pipeline
from correlators.ingest import read_file


@dataclass(frozen=True)
class SizeRun:
    hours: int
    events: int
    cpu_s: float
    rss_mb: float  # peak RSS while the stream ran
    loaded_mb: float  # peak RSS while loading, before the first event (not part of `rss_mb`)
    end_mb: float  # resident at the end

    @property
    def eps(self) -> float:
        return self.events / self.cpu_s


def measure_file(path: Path) -> dict[str, float]:
    core = load_core()
    core_pipeline = pipeline(core)
    loaded_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # interpreter, libraries, rules
    Path("/proc/self/clear_refs").write_text("5")  # from here VmHWM is the peak of the streaming alone
    events = 0
    began = time.process_time()
    for item in read_file(path):
        core_pipeline.take(item)
        events += 1
    core_pipeline.flush()
    cpu = time.process_time() - began
    return {
        "cpu_s": cpu,
        "events": events,
        "rss_mb": _status_mb("VmHWM"),
        "loaded_mb": loaded_mb,
        "end_mb": resident_mb(),
    }


def resident_mb() -> float:
    """Resident memory now (VmRSS): the state the run keeps."""
    return _status_mb("VmRSS")


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status: the memory targets need Linux")


def write_stream(hours: int, path: Path) -> None:
    """The stream of `hours` hours, written hour by hour (the 4x stream is never held whole in memory)."""
    real = streams.real_records()
    with path.open("wb") as out:
        for hour in range(hours):
            for record in streams.hour_records(hour, real):
                out.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")


def run_size(hours: int, path: Path) -> SizeRun:
    """One fresh process over the stream of `hours` hours written at `path`."""
    child = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bench.scaling", str(path)], check=True, capture_output=True, text=True
    )
    measured = json.loads(child.stdout.strip().splitlines()[-1])
    return SizeRun(
        hours, int(measured["events"]), measured["cpu_s"], measured["rss_mb"], measured["loaded_mb"], measured["end_mb"]
    )


def run_sizes(factor: int = 4, hours_1x: int = streams.HOURS_1X, rounds: int = 2) -> tuple[SizeRun, SizeRun]:
    """Each size `rounds` times, alternately, each run in a fresh process: the best CPU time of each size (one run
    of each swung the slowdown from 1.02x to 1.15x on one commit), with the largest peak RSS any of its runs
    reached (the state is the same every time: the peaks agree within 0.1 MB)."""
    sizes = (hours_1x, hours_1x * factor)
    runs: dict[int, list[SizeRun]] = {hours: [] for hours in sizes}
    with tempfile.TemporaryDirectory() as folder:
        paths = {hours: Path(folder) / f"stream-{hours}h.jsonl" for hours in sizes}
        for hours, path in paths.items():
            write_stream(hours, path)
        for _ in range(rounds):
            for hours in sizes:
                runs[hours].append(run_size(hours, paths[hours]))
    return _best(runs[sizes[0]]), _best(runs[sizes[1]])


def _best(runs: list[SizeRun]) -> SizeRun:
    fastest = min(runs, key=lambda run: run.cpu_s)
    return dataclasses.replace(fastest, rss_mb=max(run.rss_mb for run in runs))


if __name__ == "__main__":
    print(json.dumps(measure_file(Path(sys.argv[1]))))
