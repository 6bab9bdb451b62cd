"""Reading event files: every layout, and bad input that must never stop the stream."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from correlators.ingest import (
    _LONG_NUMBER,
    _SCAN_MAP,
    MAX_RECORD_BYTES,
    RawRecord,
    Rejection,
    _holds_long_number,
    read_inputs,
)


def _read(*paths: Path | str, stdin: bytes | None = None) -> list[RawRecord | Rejection]:
    return list(read_inputs([str(p) for p in paths], stdin=io.BytesIO(stdin) if stdin is not None else None))


def _where(items: list[RawRecord | Rejection]) -> list[tuple[str, str]]:
    return [(type(item).__name__, item.where) for item in items]


def _event(n: int) -> dict[str, object]:
    return {"eventVersion": "1.08", "eventID": f"id-{n}", "eventName": "GetObject"}


def test_json_lines_broken_line_is_rejected_and_neighbours_survive(tmp_path: Path) -> None:
    # GIVEN a JSON Lines file whose third line is cut short
    lines = [json.dumps(_event(1)), json.dumps(_event(2)), '{"eventID": "id-3", "eventName":', json.dumps(_event(4))]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")

    # WHEN it is read
    items = _read(path)

    # THEN line 3 is rejected where it is, and lines 1, 2 and 4 are read
    assert _where(items) == [
        ("RawRecord", f"{path}:1"),
        ("RawRecord", f"{path}:2"),
        ("Rejection", f"{path}:3"),
        ("RawRecord", f"{path}:4"),
    ]
    assert isinstance(items[2], Rejection)
    assert items[2].reason.startswith("invalid JSON at column 33: Expecting value")
    assert [item.payload["eventID"] for item in items if isinstance(item, RawRecord)] == ["id-1", "id-2", "id-4"]


def test_json_lines_with_a_broken_first_line_is_still_read_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_text('{"eventID": \n' + json.dumps(_event(2)) + "\n\n" + json.dumps(_event(4)) + "\n")

    assert _where(_read(path)) == [("Rejection", f"{path}:1"), ("RawRecord", f"{path}:2"), ("RawRecord", f"{path}:4")]


def test_json_lines_rejects_trailing_garbage_and_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    path.write_bytes(b'{"a": 1} x\n{"b": "\xff"}\n{"c": 3}\n')

    items = _read(path)

    assert [(type(i).__name__, getattr(i, "reason", "")) for i in items] == [
        ("Rejection", "invalid JSON at column 10: extra data after the value"),
        ("Rejection", "not UTF-8: invalid start byte at byte 7"),
        ("RawRecord", ""),
    ]


def test_cloudtrail_log_file_gzipped_on_one_line_is_expanded_with_element_index(tmp_path: Path) -> None:
    # CloudTrail writes each S3 log object as one line: the records share line 1, so `#N` tells them apart.
    path = tmp_path / "123456789012_CloudTrail_us-east-1_20230710T1145Z_abc.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"Records": [_event(0), _event(1), _event(2)]}).encode()))

    items = _read(path)

    assert _where(items) == [("RawRecord", f"{path}:1#{n}") for n in range(3)]
    assert [item.payload["eventID"] for item in items if isinstance(item, RawRecord)] == ["id-0", "id-1", "id-2"]


def test_gzip_is_detected_by_magic_bytes_not_by_name(tmp_path: Path) -> None:
    path = tmp_path / "plain-name.json"
    path.write_bytes(gzip.compress(json.dumps({"Records": [_event(0)]}, indent=2).encode()))

    assert _where(_read(path)) == [("RawRecord", f"{path}:3")]


def test_pretty_printed_records_file_names_the_line_each_record_starts_on(tmp_path: Path) -> None:
    path = tmp_path / "trail.json"
    path.write_text(json.dumps({"Records": [_event(0), _event(1)]}, indent=2))

    assert _where(_read(path)) == [("RawRecord", f"{path}:3"), ("RawRecord", f"{path}:8")]


def test_array_of_objects_and_non_objects(tmp_path: Path) -> None:
    path = tmp_path / "array.json"
    path.write_text('[\n  {"a": 1},\n  42,\n  "text",\n  {"b": 2}\n]\n')

    items = _read(path)

    assert _where(items) == [
        ("RawRecord", f"{path}:2"),
        ("Rejection", f"{path}:3"),
        ("Rejection", f"{path}:4"),
        ("RawRecord", f"{path}:5"),
    ]
    assert [i.reason for i in items if isinstance(i, Rejection)] == [
        "expected a JSON object, got number",
        "expected a JSON object, got string",
    ]


def test_one_line_array_uses_element_index(tmp_path: Path) -> None:
    path = tmp_path / "array.json"
    path.write_text('[{"a": 1}, {"b": 2}]')

    assert _where(_read(path)) == [("RawRecord", f"{path}:1#0"), ("RawRecord", f"{path}:1#1")]


def test_single_object_and_concatenated_objects(tmp_path: Path) -> None:
    # `jq '.Records[]' file` prints pretty objects one after another: each is a record.
    path = tmp_path / "jq-output.json"
    path.write_text('{\n  "a": 1\n}\n{\n  "b": 2\n}\n')

    assert _where(_read(path)) == [("RawRecord", f"{path}:1"), ("RawRecord", f"{path}:4")]


def test_getfindings_response_is_a_container_of_findings(tmp_path: Path) -> None:
    # As recorded by cloud-custodian's placebo: the API response under "data".
    path = tmp_path / "securityhub.GetFindings_1.json"
    response = {"status_code": 200, "data": {"Findings": [{"Id": "f-1"}, {"Id": "f-2"}], "NextToken": "x"}}
    path.write_text(json.dumps(response, indent=4))

    items = _read(path)

    assert _where(items) == [("RawRecord", f"{path}:5"), ("RawRecord", f"{path}:8")]
    assert [item.payload["Id"] for item in items if isinstance(item, RawRecord)] == ["f-1", "f-2"]


def test_duplicate_container_key_uses_the_last_one_like_json_loads(tmp_path: Path) -> None:
    path = tmp_path / "dup.json"
    path.write_text('{\n"Records": [{"a": 1}],\n"Records": [\n{"b": 2},\n{"c": 3}\n]\n}\n')

    items = _read(path)

    assert _where(items) == [("RawRecord", f"{path}:4"), ("RawRecord", f"{path}:5")]


def test_unparseable_array_keeps_the_elements_before_the_break_and_names_line_and_column(tmp_path: Path) -> None:
    # Reading resumes only at an element that looks like a record ({"c": 3} does not): see test_bad_input.py.
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"a": 1},\n  {"b": 2\n  {"c": 3}\n]\n')

    items = _read(path)

    assert items == [
        RawRecord({"a": 1}, f"{path}:2"),
        Rejection(f"{path}:3", "invalid JSON at line 4 column 3: Expecting ',' delimiter; element skipped"),
    ]


def test_unparseable_object_is_one_rejection_naming_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "a": 1,\n  "b": 2\n  "c": 3\n}\n')

    items = _read(path)

    assert items == [Rejection(f"{path}:4", "invalid JSON at line 4 column 3: Expecting ',' delimiter")]


def test_scalar_document_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "scalar.json"
    path.write_text("42\n")

    assert _read(path) == [Rejection(f"{path}:1", "expected a JSON object, got number")]


def test_stdin_is_read_with_its_own_name() -> None:
    data = (json.dumps(_event(1)) + "\n" + json.dumps(_event(2)) + "\n").encode()

    assert _where(_read("-", stdin=data)) == [("RawRecord", "<stdin>:1"), ("RawRecord", "<stdin>:2")]


def test_gzipped_stdin() -> None:
    data = gzip.compress(json.dumps([_event(1), _event(2)], indent=1).encode())

    assert _where(_read("-", stdin=data)) == [("RawRecord", "<stdin>:2"), ("RawRecord", "<stdin>:7")]


def test_oversized_record_is_rejected_and_the_next_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    big = {"eventID": "big", "requestParameters": {"blob": "x" * MAX_RECORD_BYTES}}
    path.write_text(json.dumps(big) + "\n" + json.dumps(_event(2)) + "\n")

    items = _read(path)

    assert _where(items) == [("Rejection", f"{path}:1"), ("RawRecord", f"{path}:2")]
    assert isinstance(items[0], Rejection)
    assert items[0].reason == "record is 262,193 bytes, over the 262,144-byte event size limit"


def test_record_of_exactly_the_limit_is_accepted(tmp_path: Path) -> None:
    overhead = len(json.dumps({"k": ""}, separators=(",", ":")))
    path = tmp_path / "edge.json"
    path.write_text(json.dumps({"k": "x" * (MAX_RECORD_BYTES - overhead)}))

    assert _where(_read(path)) == [("RawRecord", f"{path}:1")]


def test_missing_file_and_bad_gzip_are_rejections_and_reading_goes_on(tmp_path: Path) -> None:
    bad_gzip = tmp_path / "bad.json.gz"
    bad_gzip.write_bytes(b"\x1f\x8b\x08\x00 definitely not deflate")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_event(1)))

    items = _read(tmp_path / "missing.json", bad_gzip, good)

    assert _where(items) == [
        ("Rejection", str(tmp_path / "missing.json")),
        ("Rejection", f"{bad_gzip}:1"),
        ("RawRecord", f"{good}:1"),
    ]
    assert isinstance(items[0], Rejection) and items[0].reason == "cannot read: No such file or directory"
    assert isinstance(items[1], Rejection) and items[1].reason.startswith(
        "cannot read: damaged gzip stream from this line on: "
    )


def test_truncated_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl.gz"
    whole = gzip.compress(("\n".join(json.dumps(_event(n)) for n in range(2000)) + "\n").encode())
    path.write_bytes(whole[: len(whole) // 2])

    items = _read(path)

    assert isinstance(items[-1], Rejection)
    assert items[-1].where == f"{path}:{len(items)}"
    assert items[-1].reason == (
        "cannot read: damaged gzip stream from this line on: "
        "compressed file ended before the end-of-stream marker was reached"
    )
    assert all(isinstance(item, RawRecord) for item in items[:-1]) and len(items) > 1


def test_folders_are_read_recursively_in_order_skipping_hidden_and_non_event_files(tmp_path: Path) -> None:
    # GIVEN a folder with events, docs, rules, hidden files and a nested folder
    (tmp_path / "b").mkdir()
    (tmp_path / ".git").mkdir()
    for name in (
        "b/2.jsonl",
        "a.json",
        "c.json.gz",
        ".hidden.json",
        ".git/x.json",
        "README.md",
        "rule.yml",
        "conf.yaml",
        "notes.txt",
        "LICENSE",
    ):
        content = json.dumps({"name": name}).encode()
        (tmp_path / name).write_bytes(gzip.compress(content) if name.endswith(".gz") else content)
    explicit = tmp_path / "notes.txt"

    # WHEN the folder and, explicitly, a .txt file are read
    items = _read(tmp_path, explicit)

    # THEN only event files come from the folder, sorted, and the named file is read whatever its suffix
    assert [item.payload["name"] for item in items if isinstance(item, RawRecord)] == [
        "a.json",
        "c.json.gz",
        "b/2.jsonl",
        "notes.txt",
    ]


def test_empty_and_blank_files_yield_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("")
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n  \n\n")

    assert _read(empty, blank) == []


def test_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(_event(1), indent=2).encode())

    assert _where(_read(path)) == [("RawRecord", f"{path}:1")]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=300)
    | st.lists(
        st.sampled_from(['{"a": 1}', "[", "]", "{", "}", ",", "\n", '"Records":', '"x"', "1", " ", "\x1f\x8b", "\xff"])
    ).map(lambda parts: "".join(parts).encode("utf-8", "surrogateescape"))
)
def test_any_bytes_give_records_or_rejections_never_an_exception(data: bytes) -> None:
    items = list(read_inputs(["-"], stdin=io.BytesIO(data)))

    assert all(isinstance(item, RawRecord | Rejection) and item.where.startswith("<stdin>") for item in items)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=8), _JSON, max_size=4), max_size=6))
def test_json_lines_round_trip(objects: list[dict[str, object]]) -> None:
    objects = [o for o in objects if not _is_container(o)]
    data = "".join(json.dumps(o) + "\n" for o in objects).encode()

    items = list(read_inputs(["-"], stdin=io.BytesIO(data)))

    assert [item.payload for item in items if isinstance(item, RawRecord)] == objects
    assert [item.where for item in items] == [f"<stdin>:{n}" for n in range(1, len(objects) + 1)]


def _is_container(value: dict[str, object]) -> bool:
    data = value.get("data")
    return any(isinstance(v, list) for v in (value.get("Records"), value.get("Findings"))) or (
        isinstance(data, dict) and isinstance(data.get("Findings"), list)
    )


def test_json_lines_read_fast_give_the_values_json_gives(tmp_path: Path) -> None:
    # GIVEN lines orjson reads differently from json (a 25-digit integer, NaN, a BOM) beside plain ones
    lines = [
        '{"eventVersion": "1.08", "n": 1234567890123456789012345, "f": 1e15, "s": "caf\\u00e9 \\ud83d\\ude00"}',
        '{"eventVersion": "1.08", "n": -9223372036854775809, "x": NaN}',
        '\ufeff{"eventVersion": "1.08", "n": 18446744073709551615}',
        '{"eventVersion": "1.08", "a": 1, "a": 2}',
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # WHEN they are read
    items = _read(path)
    # THEN each record holds exactly what json.loads makes of its line
    expected = [json.loads(line.lstrip("\ufeff")) for line in lines]
    payloads = [item.payload for item in items if isinstance(item, RawRecord)]
    assert [json.dumps(p, sort_keys=True) for p in payloads] == [json.dumps(e, sort_keys=True) for e in expected]
    assert isinstance(payloads[0]["n"], int) and isinstance(payloads[1]["n"], int)


# Numbers of 19 digits and more, where JSON allows them: after a colon, a comma or a bracket, behind whitespace.
_LONG_NUMBERS = st.builds(
    lambda sign, digits, tail: f"{sign}{digits}{tail}",
    st.sampled_from(["", "-"]),
    st.integers(min_value=10**18, max_value=10**40).map(str),
    st.sampled_from(["", ".5", "e3", "E+2", ".12345678901234567890"]),
) | st.builds(lambda digits: f"1.{digits}", st.integers(min_value=10**18, max_value=10**30).map(str))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(['{"n": %s}', '{"n":%s}', '{"l": [%s]}', '{"l": [1,%s]}', '{"l": [ \t%s ]}']),
            _LONG_NUMBERS,
        ).map(lambda pair: pair[0] % pair[1])
        | st.integers(min_value=10**18, max_value=10**30).map(
            lambda n: json.dumps({"s": f"aws-go-sdk-{n}", "arn": f"arn:aws:iam::{n}:role/x"})
        ),
        min_size=1,
        max_size=5,
    )
)
def test_long_numbers_read_as_json_reads_them_and_digits_in_strings_too(lines: list[str]) -> None:
    # GIVEN lines with long numbers (an int past 64 bits, long fractions and exponents) and long runs of digits
    # inside strings (SDK session names, where the fast reader must not give up)
    data = "".join(line + "\n" for line in lines).encode()

    # WHEN they are read
    items = list(read_inputs(["-"], stdin=io.BytesIO(data)))

    # THEN every value, and its type, is what json.loads makes of its line
    payloads = [item.payload for item in items if isinstance(item, RawRecord)]
    expected = [json.loads(line) for line in lines]
    assert [json.dumps(p, sort_keys=True) for p in payloads] == [json.dumps(e, sort_keys=True) for e in expected]
    assert [repr(p) for p in payloads] == [repr(e) for e in expected]


# Pieces of lines where a run of digits is or is not part of a number: separators, whitespace, number characters,
# string text, long runs of digits, and stretches of number characters longer than the context the judge reads.
_NUMBER_CONTEXT_PIECES = (
    st.sampled_from(
        [":", ",", "[", "{", '"', " ", "\t", "\n", "-", "+", ".", "e", "E", "a", "x", "0", "7", "12", "/", "\\"]
    )
    | st.integers(min_value=10**17, max_value=10**25).map(str)
    | st.sampled_from(["1e" * 40, " " * 70, "-" * 65])
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(_NUMBER_CONTEXT_PIECES, max_size=30).map("".join))
def test_long_numbers_are_told_as_the_regular_expression_tells_them(text: str) -> None:
    # GIVEN a line of digits, separators, whitespace and number characters in any order
    line = text.encode()
    # WHEN the fast reader judges whether it could hold a number of 19 digits
    judged = _holds_long_number(line, line.translate(_SCAN_MAP))
    # THEN it judges as the regular expression over the whole line does
    assert judged == (_LONG_NUMBER.search(line) is not None)
