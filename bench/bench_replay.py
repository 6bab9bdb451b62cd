"""`make bench`: replay throughput and memory, apart from the tests.

Replays a synthetic CloudTrail stream (S3 data events by many principals over training data, with the built-in
rules and the public SigmaHQ rules loaded) through the core, in memory and on SQLite, and prints events per
second and peak memory. Targets (DESIGN: a correlator Lambda keeps up with an account's CloudTrail): at least
1,000 events/s in memory and 300 events/s on SQLite on one core; peak RSS under 512 MiB for 50,000 events.

Then a busy account's worst case, side by side in one process and measured in CPU time: one principal reading
10,000 distinct training objects (its bulk-read correlation holds for every one of them, and one incident grows
to 10,000 signals) against the quiet stream, per store. Targets: the busy stream costs at most twice the quiet
one per event, and the incident item stays under 64 KB.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cordon.replay import load_ruleset
from correlators.config import load_config
from correlators.ingest import RawRecord
from correlators.normalize import normalize
from correlators.pipeline import Pipeline
from correlators.state import open_store

REPO = Path(__file__).resolve().parent.parent
SIGMAHQ = REPO.parent / "shared" / "samples" / "sigmahq-sigma" / "rules" / "cloud" / "aws" / "cloudtrail"
EVENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
TARGETS = {"memory": 1_000, "sqlite": 300}
MEMORY_MIB = 512
BUSY_EVENTS = 10_000
BUSY_COST_RATIO = 2.0  # CPU per event, busy / quiet
ITEM_LIMIT = 64 * 1024


def _record(n: int, start: datetime) -> dict[str, object]:
    user = f"analyst-{n % 200}"
    return {
        "eventVersion": "1.09",
        "eventID": str(uuid.UUID(int=n)),
        "eventTime": (start + timedelta(milliseconds=250 * n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.10",
        "userAgent": "aws-cli/2.15",
        "recipientAccountId": "111122223333",
        "userIdentity": {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::111122223333:user/{user}",
            "accountId": "111122223333",
            "userName": user,
            "accessKeyId": f"AKIA{n % 200:016d}",
        },
        "requestParameters": {"bucketName": "acme-fraud-training", "key": f"datasets/part-{n % 5000:05d}.parquet"},
        "eventCategory": "Data",
    }


def _busy_record(n: int, start: datetime) -> dict[str, object]:
    """One principal reading distinct training objects, four a second: correlation's worst case."""
    record = _record(n, start)
    record["userIdentity"] = {
        "type": "IAMUser",
        "arn": "arn:aws:iam::111122223333:user/hoarder",
        "accountId": "111122223333",
        "userName": "hoarder",
        "accessKeyId": "AKIAHOARDER000000001",
    }
    record["requestParameters"] = {"bucketName": "acme-fraud-training", "key": f"datasets/obj-{n:06d}.parquet"}
    return record


def _cpu_per_event(url: str, make: object, count: int) -> tuple[float, Pipeline]:
    config = load_config(REPO / "examples" / "cordon.yaml")
    rules = load_ruleset(config, [SIGMAHQ] if SIGMAHQ.is_dir() else [])
    start = datetime(2026, 11, 20, tzinfo=UTC)
    pipeline = Pipeline(config, rules, open_store(url))
    began = time.process_time()
    for n in range(count):
        for event in normalize(RawRecord(make(n, start), f"bench:{n}"), config):  # type: ignore[operator]
            pipeline.submit(event)
    return (time.process_time() - began) / count, pipeline


def busy(label: str, folder: str) -> bool:
    """The busy principal against the quiet stream, one store kind, in one process."""
    urls = ("memory://", "memory://") if label == "memory" else (f"sqlite:///{folder}/q.db", f"sqlite:///{folder}/b.db")
    quiet, _ = _cpu_per_event(urls[0], _record, BUSY_EVENTS)
    hot, pipeline = _cpu_per_event(urls[1], _busy_record, BUSY_EVENTS)
    incidents = pipeline.store.incidents()
    biggest = max((len(i.model_dump_json()) for i in incidents), default=0)
    ratio = hot / quiet
    ok = ratio <= BUSY_COST_RATIO and biggest < ITEM_LIMIT and len(incidents) == 1
    print(
        f"{label:10} busy principal: {1e3 * hot:.2f} ms CPU/event vs quiet {1e3 * quiet:.2f} ms: ratio {ratio:.2f}"
        f" (target <= {BUSY_COST_RATIO})  incident {incidents[0].signal_count if incidents else 0} signals,"
        f" {biggest / 1024:.1f} KiB (target < 64)  {'ok' if ok else 'MISSED'}",
        flush=True,
    )
    return ok


def run(label: str, url: str) -> bool:
    """One store, in its own process so its peak memory is its own."""
    config = load_config(REPO / "examples" / "cordon.yaml")
    rules = load_ruleset(config, [SIGMAHQ] if SIGMAHQ.is_dir() else [])
    start = datetime(2026, 11, 20, tzinfo=UTC)
    pipeline = Pipeline(config, rules, open_store(url))
    began = time.perf_counter()
    for n in range(EVENTS):  # normalizing is part of the work measured, as in the correlator
        for event in normalize(RawRecord(_record(n, start), f"bench:{n}"), config):
            pipeline.submit(event)
    pipeline.flush()
    rate = EVENTS / (time.perf_counter() - began)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ok = rate >= TARGETS[label] and peak_mib < MEMORY_MIB
    stats = pipeline.stats
    print(
        f"{label:10} {rate:7,.0f} events/s (target {TARGETS[label]:,})  peak RSS {peak_mib:4,.0f} MiB"
        f" (target {MEMORY_MIB})  {'ok' if ok else 'MISSED'}  signals {stats.signals}  expired {stats.expired}"
        f"  evicted {stats.evicted}",
        flush=True,
    )
    return ok


def main() -> None:
    if len(sys.argv) > 3 and sys.argv[2] == "busy":  # a child: the busy principal on one store kind
        sys.exit(0 if busy(sys.argv[3], sys.argv[4]) else 1)
    if len(sys.argv) > 2:  # a child: one store
        sys.exit(0 if run(sys.argv[2], sys.argv[3]) else 1)
    print(f"{EVENTS} CloudTrail events through the built-in rules and the {SIGMAHQ.name} SigmaHQ rules", flush=True)
    failed = False
    with tempfile.TemporaryDirectory() as folder:
        for label, url in (("memory", "memory://"), ("sqlite", f"sqlite:///{folder}/bench.db")):
            child = subprocess.run([sys.executable, __file__, str(EVENTS), label, url], check=False)  # noqa: S603
            failed |= child.returncode != 0
        for label in ("memory", "sqlite"):
            command = [sys.executable, __file__, str(EVENTS), "busy", label, folder]
            failed |= subprocess.run(command, check=False).returncode != 0  # noqa: S603
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
