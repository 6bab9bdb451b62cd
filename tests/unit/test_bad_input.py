"""Bad input must never cost good input (issue 7): every hostile record is one rejection naming `file:line` and a
reason, its valid neighbours are accepted, and nothing from an event can crash or restyle the output.

The last test is the bounded fuzz run: real sample events (../shared/samples when present, examples/ always)
mutated in each of those ways, interleaved with valid canaries, through ingest, normalize, the pipeline and both
outputs.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from rich.console import Console

from cordon.cli import main
from cordon.render import render_text
from cordon.replay import ReplayResult, load_ruleset
from correlators.config import Config, CorrelationConfig
from correlators.errors import EventRejectedError
from correlators.ingest import RawRecord, Rejection, read_inputs
from correlators.normalize import normalize
from correlators.pipeline import Pipeline
from correlators.state.memory import MemoryStore

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "examples" / "scenarios"
EXAMPLES = REPO / "examples"
CONFIG = EXAMPLES / "cordon.yaml"
SAMPLES = REPO.parent / "shared" / "samples"
NOW = datetime(2026, 12, 1, tzinfo=UTC)  # after every example and sample event


def _read(path: Path) -> list[RawRecord | Rejection]:
    return list(read_inputs([str(path)]))


def _kinds(items: list[RawRecord | Rejection]) -> list[tuple[str, str]]:
    return [(type(item).__name__, item.where) for item in items]


def _cloudtrail(n: int, time: str = "2026-11-20T09:00:00Z") -> dict[str, Any]:
    return {
        "eventVersion": "1.08",
        "eventTime": time,
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "eventID": f"evt-{n}",
        "awsRegion": "us-east-1",
        "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/ml-contractor"},
        "requestParameters": {"bucketName": "acme-fraud-training", "key": f"datasets/part-{n}.parquet"},
    }


def _jsonl(tmp_path: Path, lines: list[str], name: str = "events.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- JSON the parser or a consumer cannot handle ---------------------------------------------------------


@pytest.mark.parametrize(
    ("hostile", "reason"),
    [
        ('{"a": ' + "[" * 1000 + "]" * 1000 + "}", "refused: JSON nested too deeply (more than 64 levels)"),
        ('{"a": ' + "[" * 200 + "]" * 200 + "}", "refused: JSON nested 65 levels deep (more than 64)"),
        ('{"a": ' + "7" * 4301 + "}", "refused: an integer of 4,301 digits (more than 400)"),
        ('{"eventVersion": "1.08", "key": "x\\ud800y"}', "refused: a string holds a lone UTF-16 surrogate (\\ud800)"),
        ('{"\\udfff": 1}', "refused: a string holds a lone UTF-16 surrogate (\\udfff)"),
    ],
    ids=["nested-1000", "nested-200", "int-4301-digits", "lone-surrogate-value", "lone-surrogate-key"],
)
def test_hostile_json_line_is_one_rejection_and_its_neighbours_are_read(
    tmp_path: Path, hostile: str, reason: str
) -> None:
    # GIVEN a JSON Lines file with a hostile line between two valid events
    path = _jsonl(tmp_path, [json.dumps(_cloudtrail(1)), hostile, json.dumps(_cloudtrail(2))])

    # WHEN it is read
    items = _read(path)

    # THEN the hostile line is one rejection naming its line, and both neighbours are read
    assert _kinds(items) == [("RawRecord", f"{path}:1"), ("Rejection", f"{path}:2"), ("RawRecord", f"{path}:3")]
    assert isinstance(items[1], Rejection) and items[1].reason.startswith(reason)


@pytest.mark.parametrize(
    "hostile",
    ["[" * 1000 + "]" * 1000, "9" * 5000, '"\\ud800"'],
    ids=["nested-1000", "int-5000-digits", "lone-surrogate"],
)
def test_hostile_value_in_a_cloudtrail_log_file_costs_only_its_record(tmp_path: Path, hostile: str) -> None:
    # GIVEN a CloudTrail log file (one line, as CloudTrail writes it) whose second record holds a hostile value
    records = [json.dumps(_cloudtrail(n)) for n in range(3)]
    records[1] = records[1][:-1] + f', "hostile": {hostile}}}'
    path = tmp_path / "logfile.json"
    path.write_text('{"Records": [' + ",".join(records) + "]}")

    # WHEN it is read
    items = _read(path)

    # THEN only that record is rejected
    assert _kinds(items) == [
        ("RawRecord", f"{path}:1#0"),
        ("Rejection", f"{path}:1#1"),
        ("RawRecord", f"{path}:1#2"),
    ]
    assert isinstance(items[1], Rejection) and items[1].reason.startswith("refused: ")


def test_hostile_lines_reach_neither_output_and_the_run_completes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the demo scenarios plus a file of hostile lines between valid events
    shutil.copytree(SCENARIOS, tmp_path / "scenarios")
    hostile = ["[" * 1000 + "]" * 1000, '{"a": ' + "1" * 5000 + "}", '{"eventName": "\\ud800"}']
    lines = [json.dumps(_cloudtrail(n)) if n % 2 == 0 else hostile[n // 2] for n in range(6)]
    _jsonl(tmp_path / "scenarios", lines, "05_hostile.jsonl")

    # WHEN it is replayed with JSON output, then with text output
    assert main(["replay", str(tmp_path / "scenarios"), "--config", str(CONFIG), "--output", "json"]) == 0
    output = json.loads(capsys.readouterr().out)
    assert main(["replay", str(tmp_path / "scenarios"), "--config", str(CONFIG)]) == 0
    text = capsys.readouterr().out

    # THEN each hostile line is one rejection with its line and a reason, and the valid events went on
    hostile_rejections = [r for r in output["rejected"] if "05_hostile" in r["where"]]
    assert [r["where"].rsplit("/", 1)[-1] for r in hostile_rejections] == [
        "05_hostile.jsonl:2",
        "05_hostile.jsonl:4",
        "05_hostile.jsonl:6",
    ]
    assert all(r["reason"].startswith("refused: ") for r in hostile_rejections)
    assert output["stats"]["rejected"] == 2 + 3  # the demo's two broken records, and these
    assert {"ml_training_read_then_model_download", "ml_credential_finding_then_ml_access"} <= {
        rule for incident in output["incidents"] for rule in incident["rules"]
    }
    assert "5 event(s) rejected" in text


# --- layouts: gzip, BOM, a broken CloudTrail log file ----------------------------------------------------


def test_damaged_gzip_with_a_broken_first_line_keeps_every_line_that_decompressed(tmp_path: Path) -> None:
    # GIVEN a gzipped JSON Lines file whose first line is broken and whose last bytes are lost
    lines = ['{"eventVersion": "1.08", "eventTime":'] + [json.dumps(_cloudtrail(n)) for n in range(1, 21)]
    whole = gzip.compress(("\n".join(lines) + "\n").encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[:-8])  # the CRC and size trailer: every event decompresses, the stream is damaged

    # WHEN it is read
    items = _read(path)

    # THEN line 1 is rejected where it is, the 20 events are read, and the damage is named with its line
    assert _kinds(items) == [
        ("Rejection", f"{path}:1"),
        *(("RawRecord", f"{path}:{n}") for n in range(2, 22)),
        ("Rejection", f"{path}:22"),
    ]
    assert isinstance(items[-1], Rejection)
    assert items[-1].reason.startswith("cannot read: damaged gzip stream from this line on: ")


def test_corrupt_gzip_rejection_names_the_line_where_the_damage_starts(tmp_path: Path) -> None:
    lines = [json.dumps(_cloudtrail(n)) for n in range(2000)]
    whole = bytearray(gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1))
    whole[len(whole) // 2 : len(whole) // 2 + 64] = b"\xff" * 64
    path = tmp_path / "corrupt.json.gz"
    path.write_bytes(bytes(whole))

    items = _read(path)

    good = [item for item in items if isinstance(item, RawRecord)]
    assert 0 < len(good) < 2000
    assert isinstance(items[-1], Rejection) and re.fullmatch(rf"{re.escape(str(path))}:\d+", items[-1].where)
    assert items[-1].where == f"{path}:{len(items)}"


def test_byte_order_mark_in_the_middle_of_json_lines_costs_nothing(tmp_path: Path) -> None:
    # GIVEN two JSON Lines files concatenated, the second starting with a BOM, and a BOM alone on a line
    path = tmp_path / "joined.jsonl"
    path.write_text(
        "\ufeff" + json.dumps(_cloudtrail(1)) + "\n\ufeff" + json.dumps(_cloudtrail(2)) + "\n\ufeff\n",
        encoding="utf-8",
    )

    assert _kinds(_read(path)) == [("RawRecord", f"{path}:1"), ("RawRecord", f"{path}:2")]


def test_byte_order_mark_between_concatenated_documents_costs_nothing(tmp_path: Path) -> None:
    path = tmp_path / "joined.json"
    document = json.dumps({"Records": [_cloudtrail(1)]}, indent=2)
    path.write_text(document + "\n\ufeff" + document.replace("evt-1", "evt-2") + "\n", encoding="utf-8")

    assert [item.payload["eventID"] for item in _read(path) if isinstance(item, RawRecord)] == ["evt-1", "evt-2"]


def _pretty_logfile(records: list[dict[str, Any]]) -> list[str]:
    return json.dumps({"Records": records}, indent=2).split("\n")


def _stratus_records() -> list[dict[str, Any]]:
    """Records from a real Stratus Red Team detonation log when the samples are present, else synthetic ones."""
    for path in sorted((SAMPLES / "datadog-stratus-red-team").rglob("*.json")):
        records = json.loads(path.read_text())
        records = records.get("Records", records) if isinstance(records, dict) else records
        if isinstance(records, list) and len(records) >= 6:
            return records[:6]
    return [_cloudtrail(n) for n in range(6)]


def test_cloudtrail_log_file_with_a_missing_comma_keeps_every_record(tmp_path: Path) -> None:
    # GIVEN a pretty-printed CloudTrail export whose third record lacks the comma after it (as a public Stratus
    # export does at its line 112)
    records = _stratus_records()
    lines = _pretty_logfile(records)
    closers = [n for n, line in enumerate(lines) if line == "    },"]
    lines[closers[2]] = "    }"
    path = tmp_path / "export.json"
    path.write_text("\n".join(lines))

    # WHEN it is read
    items = _read(path)

    # THEN all six records are read, and the syntax error is reported on the line after the third record
    assert [item.payload for item in items if isinstance(item, RawRecord)] == records
    [rejection] = [item for item in items if isinstance(item, Rejection)]
    assert rejection.where == f"{path}:{closers[2] + 2}"
    assert "expected ',' or ']' after element 2" in rejection.reason


def test_cloudtrail_log_file_with_a_broken_record_keeps_the_records_around_it(tmp_path: Path) -> None:
    # GIVEN a pretty-printed log file whose third record is missing a comma between two of its fields
    records = _stratus_records()
    lines = _pretty_logfile(records)
    starts = [n for n, line in enumerate(lines) if line == "    {"]
    broken = next(n for n in range(starts[2], starts[3]) if lines[n].endswith('",'))
    lines[broken] = lines[broken].removesuffix(",")
    path = tmp_path / "export.json"
    path.write_text("\n".join(lines))

    # WHEN it is read
    items = _read(path)

    # THEN the five intact records are read, and the broken one is rejected at its first line
    assert [item.payload for item in items if isinstance(item, RawRecord)] == records[:2] + records[3:]
    [rejection] = [item for item in items if isinstance(item, Rejection)]
    assert rejection.where == f"{path}:{starts[2] + 1}"
    assert rejection.reason.startswith(f"invalid JSON at line {broken + 2} column ")
    assert rejection.reason.endswith("Expecting ',' delimiter; element skipped")


def test_one_line_cloudtrail_log_file_with_a_truncated_record_keeps_the_others(tmp_path: Path) -> None:
    records = [json.dumps(_cloudtrail(n)) for n in range(4)]
    records[1] = records[1][: len(records[1]) // 2]
    path = tmp_path / "logfile.json"
    path.write_text('{"Records": [' + ",".join(records) + "]}")

    items = _read(path)

    assert _kinds(items) == [
        ("RawRecord", f"{path}:1#0"),
        ("Rejection", f"{path}:1#1"),
        ("RawRecord", f"{path}:1#2"),
        ("RawRecord", f"{path}:1#3"),
    ]


# --- values that would be misread ------------------------------------------------------------------------


def _guardduty(severity: Any) -> dict[str, Any]:
    return {
        "id": "gd-1",
        "type": "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
        "severity": severity,
        "updatedAt": "2026-11-20T09:00:00Z",
        "service": {"serviceName": "guardduty"},
    }


def _asff(normalized: Any) -> dict[str, Any]:
    return {
        "SchemaVersion": "2018-10-08",
        "Id": "f-1",
        "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty",
        "Severity": {"Normalized": normalized},
        "UpdatedAt": "2026-11-20T09:00:00Z",
    }


@pytest.mark.parametrize("score", ["NaN", "Infinity", "-Infinity", "1e999"])
@pytest.mark.parametrize("finding", [_guardduty, _asff], ids=["guardduty", "asff"])
def test_non_finite_severity_is_rejected_not_read_as_critical(
    tmp_path: Path, finding: Callable[[Any], dict[str, Any]], score: str
) -> None:
    # GIVEN a finding whose severity is NaN or infinite, as a JSON literal and as a string
    for literal in (score, json.dumps(score)):
        path = _jsonl(tmp_path, [json.dumps(finding("SEVERITY")).replace('"SEVERITY"', literal)])
        [record] = _read(path)
        assert isinstance(record, RawRecord)

        # WHEN it is normalized, THEN it is rejected naming the field
        with pytest.raises(EventRejectedError, match="finite number") as raised:
            normalize(record, Config())
        assert raised.value.where == f"{path}:1"


def test_finite_severity_is_still_read() -> None:
    [event] = normalize(RawRecord(_guardduty(9.5), "f:1"), Config())
    assert event.finding is not None and event.finding.severity.value == "critical"


# --- output: everything from an event is text ------------------------------------------------------------

HOSTILE_KEY = "datasets/[/][link=https://evil.example]x[/link][bold]b\u001b]8;;https://evil.example\u001b\\y"


def test_markup_and_escape_sequences_in_an_s3_key_print_literally(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the demo scenarios, with every training object the contractor reads renamed to a hostile key
    shutil.copytree(SCENARIOS, tmp_path / "scenarios")
    logfile = tmp_path / "scenarios" / "01_cloudtrail_logfile_0900-0935.json"
    hostile = json.dumps(HOSTILE_KEY)[1:-1]
    logfile.write_text(logfile.read_text().replace("datasets/2026-11/", hostile))

    # WHEN it is replayed with the default text output
    assert main(["replay", str(tmp_path / "scenarios"), "--config", str(CONFIG)]) == 0
    out = capsys.readouterr().out

    # THEN the key prints as its characters, the ESC shown escaped: no markup applied, no link planted
    assert "[/][link=https://evil.example]x[/link][bold]b\\x1b]8;;https://evil.example\\x1b\\y" in out
    assert "\x1b" not in out


def test_rejection_reasons_and_file_names_print_literally(tmp_path: Path) -> None:
    result = ReplayResult(incidents=[])
    result.rejected = [Rejection("[link=https://evil]f[/link]:1", "unsupported detail-type '[/]\x1b[31m'")]
    console = Console(file=io.StringIO(), force_terminal=True, width=200)

    render_text(result, console)

    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "[link=https://evil]f[/link]:1: unsupported detail-type '[/]\\x1b[31m'" in out
    assert "\x1b]8;" not in out


# --- clock skew: an event from the future cannot move the watermark ----------------------------------------


def _pipeline(config: Config, store: MemoryStore | None = None) -> Pipeline:
    return Pipeline(config, load_ruleset(Config(builtin_rules=False)), store or MemoryStore(), now=lambda: NOW)


def test_event_dated_far_ahead_of_its_reading_is_rejected_and_leaves_the_watermark(tmp_path: Path) -> None:
    # GIVEN an event dated 2099 among events of today
    store = MemoryStore()
    pipeline = _pipeline(Config(), store)
    before = RawRecord(_cloudtrail(1, "2026-11-30T23:00:00Z"), "f:1")
    future = RawRecord(_cloudtrail(2, "2099-01-01T00:00:00Z"), "f:2")
    within = RawRecord(_cloudtrail(3, "2026-12-01T00:14:59Z"), "f:3")  # a clock 14m59s fast: within the skew

    # WHEN they are taken
    rejections = [pipeline.take(item) for item in (before, future, within)]
    pipeline.flush()

    # THEN the 2099 event is rejected with the reason, and the watermark is the latest acceptable time
    assert rejections == [
        None,
        Rejection(
            "f:2",
            "event time 2099-01-01T00:00:00+00:00 is more than 15m (correlation.max_clock_skew) after it was read, "
            "at 2026-12-01T00:00:00+00:00",
        ),
        None,
    ]
    assert pipeline.stats.accepted == 2 and pipeline.stats.rejected == 1
    assert store.get_meta("max_event_time") == "2026-12-01T00:14:59+00:00"


def test_clock_skew_is_configurable_and_bounded() -> None:
    pipeline = _pipeline(Config(correlation=CorrelationConfig.model_validate({"max_clock_skew": "2h"})))
    assert pipeline.take(RawRecord(_cloudtrail(1, "2026-12-01T01:59:00Z"), "f:1")) is None

    with pytest.raises(ValidationError, match="duration '2d' is longer than the maximum of 1d"):
        CorrelationConfig.model_validate({"max_clock_skew": "2d"})


def test_an_event_ahead_of_an_earlier_reading_is_judged_by_a_fresh_reading_of_the_clock() -> None:
    # GIVEN a clock that moves on an hour between records (the pipeline reads it only when an event is later than
    # its last reading allowed)
    readings = iter([NOW, NOW + timedelta(hours=1), NOW + timedelta(hours=1)])
    pipeline = Pipeline(Config(), load_ruleset(Config(builtin_rules=False)), MemoryStore(), now=lambda: next(readings))
    timely = RawRecord(_cloudtrail(1, "2026-11-30T23:00:00Z"), "f:1")
    an_hour_on = RawRecord(_cloudtrail(2, "2026-12-01T01:10:00Z"), "f:2")  # 70 minutes after the first reading
    too_far = RawRecord(_cloudtrail(3, "2026-12-01T01:20:00Z"), "f:3")  # 20 minutes after the latest

    # WHEN they are taken in turn
    rejections = [pipeline.take(item) for item in (timely, an_hour_on, too_far)]

    # THEN the second is within the skew of the clock as it reads now, and the third is not, by that same reading
    assert rejections[:2] == [None, None]
    assert rejections[2] == Rejection(
        "f:3",
        "event time 2026-12-01T01:20:00+00:00 is more than 15m (correlation.max_clock_skew) after it was read, "
        "at 2026-12-01T01:00:00+00:00",
    )
    assert next(readings, None) is None  # the clock was read for the first record and for each one ahead of it


def test_replay_of_old_files_is_unaffected_by_the_skew_check() -> None:
    pipeline = Pipeline(Config(), load_ruleset(Config(builtin_rules=False)), MemoryStore())  # the wall clock
    assert pipeline.take(RawRecord(_cloudtrail(1, "2014-01-01T00:00:00Z"), "f:1")) is None


# --- the bounded fuzz run ----------------------------------------------------------------------------------


def _seed_events() -> list[dict[str, Any]]:
    """Records that read and normalize cleanly: every example, and up to 40 per sample folder."""
    folders = [EXAMPLES] + (sorted(p for p in SAMPLES.iterdir() if p.is_dir()) if SAMPLES.is_dir() else [])
    seeds: list[dict[str, Any]] = []
    for folder in folders:
        taken = 0
        for item in read_inputs([str(folder)]):
            if taken >= 40 and folder != EXAMPLES:
                break
            if not isinstance(item, RawRecord):
                continue
            try:
                events = normalize(item, Config())
            except EventRejectedError:
                continue
            if events and all(event.time <= NOW for event in events):
                seeds.append(_on_one_day(item.payload))
                taken += 1
    return seeds


def _on_one_day(payload: dict[str, Any]) -> dict[str, Any]:
    """The record moved to one day (its time of day kept): samples span years, and a record older than the
    state's horizon after a later one is refused as too late, which is not what this test is about."""
    return dict(json.loads(re.sub(r'"20[0-9]{2}-[01][0-9]-[0-3][0-9]T', '"2026-11-20T', json.dumps(payload))))


SEEDS = _seed_events()
RULES = load_ruleset(Config())
_TIME = re.compile(r'"(20[0-9]{2})-([01][0-9])-')
_STRING_VALUE = re.compile(r'": "')


def _severity_field(seed: dict[str, Any]) -> str | None:
    text = json.dumps(seed)
    for field in ('"severity": ', '"Normalized": '):
        if re.search(re.escape(field) + r"[0-9.]+", text):
            return field
    return None


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[str, str]:
    """(kind, line): a sample event broken in one way; kind says what must become of it."""
    seed = json.dumps(SEEDS[draw(st.integers(0, len(SEEDS) - 1))])
    kind = draw(st.sampled_from(["deep", "int", "surrogate", "truncate", "markup", "severity", "future", "bom"]))
    if kind == "deep":
        depth = draw(st.integers(65, 3000))
        return "reject", '{"fuzz": ' + "[" * depth + "]" * depth + ", " + seed[1:]
    if kind == "int":
        return "reject", '{"fuzz": ' + draw(st.sampled_from(["", "-"])) + "9" * draw(
            st.integers(401, 9000)
        ) + ", " + seed[1:]
    if kind == "surrogate":
        spots = [m.end() for m in _STRING_VALUE.finditer(seed)]
        at = spots[draw(st.integers(0, len(spots) - 1))] if spots else 1
        surrogate = draw(st.sampled_from(["\\ud800", "\\udfff", "\\ud83d"]))
        if not spots:
            return "reject", '{"fuzz": "' + surrogate + '", ' + seed[1:]
        return "reject", seed[:at] + surrogate + seed[at:]
    if kind == "truncate":
        return "reject", seed[: draw(st.integers(1, len(seed) - 1))]
    if kind == "markup":
        spots = [m.end() for m in _STRING_VALUE.finditer(seed)] or [len(seed) - 1]
        at = spots[draw(st.integers(0, len(spots) - 1))]
        markup = draw(
            st.sampled_from(["[/]", "[link=https://evil.example]x[/link]", "[bold", "\\u001b]8;;x\\u001b\\\\"])
        )
        return "any", seed[:at] + markup + seed[at:]
    if kind == "severity" and (field := _severity_field(json.loads(seed))):
        value = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", '"NaN"', '"Infinity"']))
        return "reject", re.sub(re.escape(field) + r"[0-9.]+", field + value, seed)
    if kind == "future":
        return "reject", _TIME.sub(r'"2099-\2-', seed)
    return "accept", "\ufeff" + seed  # "bom", and "severity" on an event without one: still valid


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mutations=st.lists(_mutated(), min_size=1, max_size=8),
    canaries=st.lists(st.integers(0, 10**6), min_size=8, max_size=8),
    compressed=st.booleans(),
)
def test_fuzz_mutated_samples_never_cost_a_valid_neighbour(
    tmp_path_factory: pytest.TempPathFactory,
    mutations: list[tuple[str, str]],
    canaries: list[int],
    compressed: bool,
) -> None:
    if not SEEDS:
        pytest.skip("no seed events")
    # GIVEN mutated sample events, each followed by a valid canary (a seed event, as it is)
    lines: list[str] = []
    expected: dict[int, str] = {}
    for (kind, line), canary in zip(mutations, canaries, strict=False):
        lines.append(line)
        expected[len(lines)] = kind
        lines.append(json.dumps(SEEDS[canary % len(SEEDS)]))
        expected[len(lines)] = "accept"
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path = tmp_path_factory.mktemp("fuzz") / ("events.jsonl.gz" if compressed else "events.jsonl")
    path.write_bytes(gzip.compress(data) if compressed else data)

    # WHEN it is read, correlated (a fresh store: canaries may repeat, and a duplicate is still accepted) and
    # rendered both ways
    pipeline = Pipeline(Config(), RULES, MemoryStore(), now=lambda: NOW)
    result = ReplayResult(incidents=[], stats=pipeline.stats)
    accepted: set[int] = set()
    rejected: set[int] = set()
    for item in read_inputs([str(path)]):
        line = int(item.where.rsplit(":", 1)[1].split("#")[0])
        rejection = pipeline.take(item)
        if rejection is None:
            accepted.add(line)
        else:
            result.rejected.append(rejection)
            rejected.add(line)
            # THEN every rejection names the file and the line, with a reason
            assert re.fullmatch(rf"{re.escape(str(path))}:\d+(#\d+)?", rejection.where), rejection
            assert rejection.reason.strip(), rejection
    pipeline.flush()
    result.incidents = list(pipeline.store.incidents())
    json.dumps(result.to_json(), default=str).encode("utf-8")
    render_text(result, Console(file=io.StringIO(), force_terminal=True, width=140))

    # THEN every canary, and every event that only gained a BOM, is accepted; every broken one rejected
    must_accept = {line for line, kind in expected.items() if kind == "accept"}
    must_reject = {line for line, kind in expected.items() if kind == "reject"}
    assert must_accept <= accepted and not must_accept & rejected, (sorted(must_accept - accepted), lines)
    assert must_reject <= rejected and not must_reject & accepted, (sorted(must_reject - rejected), lines)
