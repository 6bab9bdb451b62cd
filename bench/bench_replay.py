"""`make bench`: replay throughput and memory, apart from the tests.

Replays a synthetic CloudTrail stream (S3 data events by many principals over training data, with the built-in
rules and the public SigmaHQ rules loaded) through the core, in memory and on SQLite, and prints events per
second and peak memory. Targets (DESIGN: a correlator Lambda keeps up with an account's CloudTrail): at least
1,000 events/s in memory and 300 events/s on SQLite on one core; peak RSS under 512 MiB for 50,000 events.
"""

from __future__ import annotations

import resource
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
TARGETS = {"memory://": 1_000, "sqlite": 300}


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


def main() -> None:
    config = load_config(REPO / "examples" / "cordon.yaml")
    rules = load_ruleset(config, [SIGMAHQ] if SIGMAHQ.is_dir() else [])
    start = datetime(2026, 11, 20, tzinfo=UTC)
    events = [e for n in range(EVENTS) for e in normalize(RawRecord(_record(n, start), f"bench:{n}"), config)]
    print(f"{EVENTS} CloudTrail events, {len(rules.detections)} detection and {len(rules.correlations)} correlation rules")
    failed = False
    with tempfile.TemporaryDirectory() as folder:
        for label, url in (("memory://", "memory://"), ("sqlite", f"sqlite:///{folder}/bench.db")):
            pipeline = Pipeline(config, rules, open_store(url))
            began = time.perf_counter()
            for event in events:
                pipeline.submit(event)
            pipeline.flush()
            elapsed = time.perf_counter() - began
            rate = EVENTS / elapsed
            ok = rate >= TARGETS[label]
            failed |= not ok
            stats = pipeline.stats
            print(
                f"{label:10} {rate:9,.0f} events/s (target {TARGETS[label]:,}) {'ok' if ok else 'MISSED'}"
                f"  signals {stats.signals}  incidents {stats.incidents}  expired {stats.expired}"
                f"  evicted {stats.evicted}"
            )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mib:,.0f} MiB (target 512 MiB) {'ok' if peak_mib < 512 else 'MISSED'}")
    sys.exit(1 if failed or peak_mib >= 512 else 0)


if __name__ == "__main__":
    main()
