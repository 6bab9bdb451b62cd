"""`make bench`: replay throughput and memory, apart from the tests.

Replays a synthetic CloudTrail stream (S3 data events by many principals over training data, with the built-in
rules and the public SigmaHQ rules loaded) through the core, in memory and on SQLite, and prints events per
second and peak memory. Targets (DESIGN: a correlator Lambda keeps up with an account's CloudTrail): at least
1,000 events/s in memory and 300 events/s on SQLite on one core; peak RSS under 512 MiB for 50,000 events.
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
    if len(sys.argv) > 2:  # a child: one store
        sys.exit(0 if run(sys.argv[2], sys.argv[3]) else 1)
    print(f"{EVENTS} CloudTrail events through the built-in rules and the {SIGMAHQ.name} SigmaHQ rules", flush=True)
    failed = False
    with tempfile.TemporaryDirectory() as folder:
        for label, url in (("memory", "memory://"), ("sqlite", f"sqlite:///{folder}/bench.db")):
            child = subprocess.run([sys.executable, __file__, str(EVENTS), label, url], check=False)  # noqa: S603
            failed |= child.returncode != 0
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
