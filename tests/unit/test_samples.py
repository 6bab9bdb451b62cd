"""Every real event sample in ../shared/samples is read and normalized without an exception escaping.

Counts are pinned per folder: a change in what is accepted or rejected must be deliberate. The numbers agree with
samples/README.md: Invictus 2,900 records and Stratus 310 (all CloudTrail, all accepted); 38 ASFF findings in the
cloud-custodian placebo GetFindings responses (each response `{"status_code", "data": {"Findings": [...]}}` is
read as a container of findings, like a CloudTrail log file's Records); in cloud-custodian/cwe the Health, Config,
EC2-state, scheduled and Insight events, and a Bedrock record without eventTime, are rejected.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from correlators.config import Config
from correlators.errors import EventRejectedError
from correlators.ingest import RawRecord, Rejection, read_inputs
from correlators.normalize import normalize

SAMPLES = Path(__file__).parents[2].parent / "shared" / "samples"


@dataclass
class Tally:
    records: int = 0  # what ingest read: records and rejections
    events: int = 0  # normalized events (a Security Hub event with n findings gives n)
    rejected: int = 0  # records rejected by ingest or normalize
    reasons: Counter[str] = field(default_factory=Counter)


def _group(where: str) -> str:
    parts = Path(where).relative_to(SAMPLES).parts
    if parts[0] == "cloud-custodian":
        return f"cloud-custodian/{parts[3]}"  # tests/data/cwe or tests/data/placebo
    return parts[0]


@pytest.fixture(scope="module")
def tallies() -> dict[str, Tally]:
    if not SAMPLES.is_dir():
        pytest.skip(f"no samples folder at {SAMPLES} (it sits beside the checkout, as ../shared/samples)")
    found: dict[str, Tally] = {}
    for item in read_inputs([str(SAMPLES)]):
        tally = found.setdefault(_group(item.where.rsplit(":", 1)[0]), Tally())
        tally.records += 1
        if isinstance(item, Rejection):
            tally.rejected += 1
            tally.reasons[f"ingest: {item.reason}"] += 1
            continue
        assert isinstance(item, RawRecord)
        try:
            events = normalize(item, Config())
        except EventRejectedError as error:
            assert error.where == item.where
            tally.rejected += 1
            tally.reasons[_short(error.reason)] += 1
            continue
        for event in events:
            assert event.time.utcoffset() is not None and event.origin == item.where
        tally.events += len(events)
    return found


def _short(reason: str) -> str:
    # The list of supported detail-types, and of expected shapes, is the same in every such reason.
    reason = reason.split(" (supported:")[0]
    return "not a security event" if reason.startswith("not a security event:") else reason


def _table(tallies: dict[str, Tally]) -> str:
    rows = [f"{'folder':<45} {'records':>8} {'events':>8} {'rejected':>8}"]
    rows += [f"{name:<45} {t.records:>8,} {t.events:>8,} {t.rejected:>8,}" for name, t in sorted(tallies.items())]
    for name, tally in sorted(tallies.items()):
        rows += [f"  {name}: {count} x {reason}" for reason, count in tally.reasons.most_common()]
    return "\n".join(rows)


# folder -> (records read, events accepted, records rejected)
EXPECTED = {
    "aws-samples-guardduty": (4, 4, 0),
    "aws-solutions-automated-security-response": (20, 22, 0),  # multi-select custom actions carry 2-3 findings
    "awsdocs-cloudtrail-user-guide": (21, 21, 0),  # 20 files; one holds the Start and End of an Insight
    "awsdocs-cloudwatch-user-guide": (11, 5, 6),  # 6 alarm configuration changes
    "awsdocs-s3-userguide": (4, 4, 0),
    "awsdocs-sagemaker-developer-guide": (2, 2, 0),
    "awsdocs-security-hub-user-guide": (6, 6, 0),
    "cloud-custodian/cwe": (37, 28, 9),
    "cloud-custodian/placebo": (38, 38, 0),
    "datadog-stratus-red-team": (310, 310, 0),
    "invictus-aws_dataset": (2900, 2900, 0),
    "sumologic-aws-lambda": (2, 2, 0),
}


def test_every_sample_folder_gives_the_pinned_counts(
    tallies: dict[str, Tally], capsys: pytest.CaptureFixture[str]
) -> None:
    table = _table(tallies)
    with capsys.disabled():  # shown with or without -s
        print(f"\n{table}")

    measured = {name: (t.records, t.events, t.rejected) for name, t in tallies.items()}

    assert measured == EXPECTED, table


def test_no_sample_file_is_unreadable(tallies: dict[str, Tally]) -> None:
    ingest_problems = {name: [r for r in t.reasons if r.startswith("ingest:")] for name, t in tallies.items()}

    assert all(not problems for problems in ingest_problems.values()), ingest_problems


def test_non_security_events_are_rejected_with_a_clear_reason(tallies: dict[str, Tally]) -> None:
    assert tallies["cloud-custodian/cwe"].reasons == Counter(
        {
            "unsupported detail-type 'EC2 Instance Launch Unsuccessful'": 1,
            "unsupported detail-type 'EC2 Instance State-change Notification'": 1,
            "unsupported detail-type 'AWS Health Event'": 1,
            "unsupported detail-type 'Scheduled Event'": 1,
            "unsupported detail-type 'Security Hub Insight Results'": 1,
            "unsupported detail-type 'Config Configuration Item Change'": 1,
            "not a security event": 2,  # Config rule invocations
            "CloudTrail record: eventTime: missing": 1,  # the Bedrock record, trimmed of time and identity
        }
    )
    assert tallies["awsdocs-cloudwatch-user-guide"].reasons == Counter(
        {"unsupported detail-type 'CloudWatch Alarm Configuration Change'": 6}
    )
