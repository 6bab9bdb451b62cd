"""Read event files (and stdin) into raw records, one per event, each remembering where it came from.

Accepted layouts, plain or gzipped (detected by magic bytes, not by name):

- JSON Lines: one JSON value per line (`.jsonl`, `.ndjson`, or a `.log` of EventBridge events);
- one JSON document: an object, an array of objects, or several pretty-printed objects one after another
  (what `jq '.Records[]'` prints);
- containers, expanded wherever they appear: a CloudTrail S3 log file `{"Records": [...]}`, a Security Hub
  `GetFindings` response `{"Findings": [...]}`, and a recorded API response `{"data": {"Findings": [...]}}`.

Bad input never stops the stream: each problem becomes a `Rejection` naming `path:line` and the reason, and
reading goes on with the next line, element or file. What is refused, and why:

- JSON nested deeper than `MAX_DEPTH` (a parser or any recursive consumer would overflow the stack), integers of
  more than `MAX_INT_DIGITS` digits (no AWS field holds one; Python refuses to convert those over 4,300), strings
  with a lone UTF-16 surrogate (`"\\ud800"`: not Unicode, so nothing could encode it again), records over 256 KB;
- a byte-order mark is skipped wherever a line or a top-level value starts (files concatenated together);
- a damaged gzip stream gives what decompressed before the damage, then one rejection naming the line it stopped at;
- a container (`{"Records": [...]}`) or an array with a syntax error is not lost whole: every element that parses
  is read, a broken one is rejected with its line, and reading resumes at the next element that looks like a record
  (an object with `eventVersion`, `eventTime`, `detail-type` or `SchemaVersion`); a missing comma between two intact
  records is reported on its line and both records are read.
"""

from __future__ import annotations

import bisect
import io
import json
import os
import re
import sys
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import IO, Any

import orjson

# EventBridge refuses events over 256 KB; a bigger "event" is a mistake (or an attack on the parser).
MAX_RECORD_BYTES = 262_144
STDIN_NAME = "<stdin>"
# Inside folders only these are read; a file named on the command line is always read.
EVENT_FILE_SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".gz", ".log")

# Real events nest about ten levels; orjson and the recursion limit fail far deeper. Bounded well before both.
MAX_DEPTH = 64
# A float's largest value has 309 digits; no AWS field holds an integer anywhere near that.
MAX_INT_DIGITS = 400

_GZIP_MAGIC = b"\x1f\x8b"
_WHITESPACE = " \t\n\r"
_BOM = "\ufeff"
_SEPARATORS = _WHITESPACE + _BOM  # between top-level values: whitespace, and a BOM where files were concatenated


class _Unparseable(ValueError):
    """A value the JSON decoder could read but Cordon refuses (an integer too long to be a number)."""


def _parse_int(digits: str) -> int:
    if len(digits) - digits.startswith("-") > MAX_INT_DIGITS:
        raise _Unparseable(f"an integer of {len(digits):,} digits (more than {MAX_INT_DIGITS})")
    return int(digits)


_DECODER = json.JSONDecoder(parse_int=_parse_int)


def _decode(text: str, pos: int) -> tuple[Any, int]:
    """`_DECODER.raw_decode`, every failure a JSONDecodeError or `_Unparseable` with a reason."""
    try:
        return _DECODER.raw_decode(text, pos)
    except RecursionError:
        raise _Unparseable(f"JSON nested too deeply (more than {MAX_DEPTH} levels)") from None


def _reason(error: ValueError, with_line: bool = False) -> str:
    if isinstance(error, json.JSONDecodeError):
        at = f"line {error.lineno} column {error.colno}" if with_line else f"column {error.colno}"
        return f"invalid JSON at {at}: {error.msg}"
    return f"refused: {error}"


# One per event: slots (one object fewer to allocate and collect), and not frozen, as a frozen dataclass sets each
# field through object.__setattr__ (600 ns a record instead of 250). Nothing assigns to a record once read.
@dataclass(slots=True)
class RawRecord:
    payload: dict[str, Any]
    where: str  # "path:line", or "path:line#N" when several records start on that line


@dataclass(frozen=True)
class Rejection:
    where: str
    reason: str


Item = RawRecord | Rejection


def read_inputs(paths: Sequence[str], stdin: IO[bytes] | None = None) -> Iterator[Item]:
    """Every record in `paths` (files, folders read recursively, `-` for stdin), in order."""
    for path in paths:
        if path == "-":
            yield from read_stream(stdin if stdin is not None else sys.stdin.buffer, STDIN_NAME)
        elif os.path.isdir(path):
            yield from _read_folder(Path(path))
        else:
            yield from read_file(Path(path))


def read_file(path: Path) -> Iterator[Item]:
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed below, after the generator is drained
    except OSError as error:
        yield Rejection(str(path), f"cannot read: {error.strerror or error}")
        return
    with stream:
        yield from read_stream(stream, str(path))


def read_stream(stream: IO[bytes], name: str) -> Iterator[Item]:
    """Records from one byte stream; `name` is used in `where`."""
    try:
        compressed = _starts_with_gzip_magic(stream)
    except OSError as error:
        yield Rejection(name, f"cannot read: {error}")
        return
    lines = _LinesUntilError(_gunzip(stream) if compressed else stream)
    yield from _read_text_lines(iter(lines), name)
    if lines.error is not None:
        kind = "damaged gzip stream" if compressed else "read error"
        yield Rejection(f"{name}:{lines.count + 1}", f"cannot read: {kind} from this line on: {lines.error}")


_GZIP_CHUNK = 2048  # small: a corrupt block loses the output of its chunk, so of at most 2 KB of input


def _gunzip(stream: IO[bytes]) -> Iterator[bytes]:
    """The decompressed lines of a gzip stream (members one after another, as `gzip` reads them), streamed.
    Unlike `gzip.GzipFile`, every line that decompressed before damage is given out before the error is raised."""
    decompressor = zlib.decompressobj(wbits=31)
    in_member = False  # bytes of a member were fed and its end not reached yet
    pending = b""
    while data := stream.read(_GZIP_CHUNK):
        while data:
            if not in_member and not data.strip(b"\x00"):
                break  # gzip ignores zero padding after the last member
            pending += decompressor.decompress(data)
            in_member, data = not decompressor.eof, b""
            if decompressor.eof:
                data, decompressor = decompressor.unused_data, zlib.decompressobj(wbits=31)
            *complete, pending = pending.split(b"\n")
            yield from (line + b"\n" for line in complete)
    if in_member:
        raise EOFError("compressed file ended before the end-of-stream marker was reached")
    if pending:
        yield pending


class _LinesUntilError:
    """The lines of a stream up to the first read error (a damaged gzip member), which is kept, not raised:
    what decompressed before the damage is still read, and the rejection can name the line it stopped at."""

    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream
        self.count = 0
        self.error: Exception | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            for line in self._stream:
                self.count += 1
                yield line
        except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
            self.error = error


def _read_folder(folder: Path) -> Iterator[Item]:
    unlistable: list[OSError] = []
    for root, dirs, files in os.walk(folder, onerror=unlistable.append):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and name.lower().endswith(EVENT_FILE_SUFFIXES):
                yield from read_file(Path(root) / name)
        while unlistable:
            error = unlistable.pop()
            yield Rejection(str(error.filename), f"cannot read folder: {error.strerror or error}")


def _starts_with_gzip_magic(stream: IO[bytes]) -> bool:
    if hasattr(stream, "peek"):
        return bool(stream.peek(2)[:2] == _GZIP_MAGIC)
    if stream.seekable():
        head = stream.read(2)
        stream.seek(-len(head), io.SEEK_CUR)
        return head == _GZIP_MAGIC
    raise OSError("stream is neither peekable nor seekable")


def _read_text_lines(lines: Iterator[bytes], name: str) -> Iterator[Item]:
    """JSON Lines when the first line is a whole JSON value (streamed: a log can be large); else one document,
    unless that fails to parse and most lines are whole objects (a log whose first line is broken)."""
    head: list[bytes] = []
    for line in lines:
        head.append(line)
        if line.strip():
            break
    if not head or not head[-1].strip():
        return
    if _parses(head[-1]):
        yield from _read_json_lines(chain(head, lines), name)
        return
    data = b"".join(chain(head, lines))
    document = _read_document(data, name)
    first = next(document, None)
    if isinstance(first, Rejection) and _mostly_json_lines(data):
        yield from _read_json_lines(iter(io.BytesIO(data)), name)
        return
    if first is not None:
        yield first
    yield from document


def _mostly_json_lines(data: bytes) -> bool:
    # Lines after the first, since that one is known to be broken. A pretty-printed document has few lines
    # that parse alone (and those are small nested objects, never half of them).
    rest = [line for line in data.split(b"\n") if line.strip()][1:]
    return bool(rest) and 2 * sum(isinstance(_loads(line), dict | list) for line in rest) >= len(rest)


_INVALID = object()


def _loads(line: bytes) -> Any:
    try:
        text = line.decode("utf-8")
        start = _skip_separators(text, 0)
        value, end = _decode(text, start)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError and _Unparseable are all ValueErrors
        return _INVALID
    return value if _skip_separators(text, end) == len(text) else _INVALID


def _parses(line: bytes) -> bool:
    return _loads(line) is not _INVALID


# A line this short cannot re-serialize over the record limit: compact JSON is at most 4.5 times its source
# (`1e15` becomes `1000000000000000.0`; strings, escapes and whitespace only shrink).
_SHORT_LINE = MAX_RECORD_BYTES * 2 // 9
# Two things are judged on one map of the line, made in C: every digit becomes `0`, every `{` and `[` becomes `{`,
# everything else a space. Then substring search and counting, also in C (a regular expression over every
# CloudTrail line costs ten times more):
# - orjson reads an integer past 64 bits as a float; json keeps it exact (and `_parse_int` refuses the longest).
#   Lines with a number of 19 digits are left to json. Runs of 19 digits are mostly inside strings (SDK session
#   names end in a nanosecond clock), so a line with one goes to json only if a run could be part of a number:
#   after `:`, `,` or `[`, whitespace, and the characters of a number (`_LONG_NUMBER`; a string that merely holds
#   such a run after a colon goes to json too, which is only slower);
# - a line with at most MAX_DEPTH openings cannot nest deeper.
_SCAN_MAP = bytes(48 if 48 <= byte <= 57 else 123 if byte in b"{[" else 32 for byte in range(256))
_LONG_DIGITS = b"0" * 19
_LONG_NUMBER = re.compile(rb"[:,\[][ \t\r\n]*[-+.eE0-9]*[0-9]{19}")
_NUMBER_CHARACTERS = b"-+.eE0123456789"
_JSON_WHITESPACE = b" \t\r\n"
_BEFORE_A_VALUE = b":,["
# How far before a run of digits its context is read; a longer stretch of number characters and whitespace (only
# ever in a crafted line) is judged by `_LONG_NUMBER` over the whole line.
_CONTEXT_BYTES = 64


def _holds_long_number(line: bytes, scanned: bytes) -> bool:
    """Whether `_LONG_NUMBER` matches `line`, told from the few bytes before each run of 19 digits (found in
    `scanned`, the line's map) instead of a regular expression over the line: 10 us -> under 1 on a line whose
    run of digits is inside a string, as a twentieth of CloudTrail lines have. A match needs the run's own
    digits, the number characters before them, whitespace, then `:`, `,` or `[`; every run of a line is asked."""
    run = scanned.find(_LONG_DIGITS)
    while run >= 0:
        start = run - _CONTEXT_BYTES
        before = line[max(start, 0) : run].rstrip(_NUMBER_CHARACTERS).rstrip(_JSON_WHITESPACE)
        if before:
            if before[-1] in _BEFORE_A_VALUE:
                return True
        elif start > 0:
            return _LONG_NUMBER.search(line) is not None  # the context runs further back than was read
        # The run's own digits are the number characters of any later window of it: the next run starts after.
        run = scanned.find(_LONG_DIGITS, run + len(_LONG_DIGITS))
    return False


def _plain_record(line: bytes, where: str) -> RawRecord | None:
    """The record on a line that holds one short, plainly valid JSON object, parsed by orjson; None leaves the
    line to the careful path, which explains every refusal. orjson is strict where json is lenient (NaN, a BOM,
    lone surrogates, huge numbers all fail here and are judged there) and gives the same values otherwise."""
    if len(line) > _SHORT_LINE:
        return None
    scanned = line.translate(_SCAN_MAP)
    if scanned.count(b"{") > MAX_DEPTH or (_LONG_DIGITS in scanned and _holds_long_number(line, scanned)):
        return None
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    # A line holding any key of a container is left to the careful path, which expands it or reads it as it is.
    if not isinstance(value, dict) or not value.keys().isdisjoint(_CONTAINER_KEYS):
        return None
    return RawRecord(value, where)


def _read_json_lines(lines: Iterable[bytes], name: str) -> Iterator[Item]:
    for number, line in enumerate(lines, start=1):
        where = f"{name}:{number}"
        if (plain := _plain_record(line, where)) is not None:
            yield plain
            continue
        try:
            text = line.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as error:
            yield Rejection(where, f"not UTF-8: {error.reason} at byte {error.start}")
            continue
        start = _skip_separators(text, 0)  # a BOM starts the first line, or any line where files were joined
        if start == len(text):
            continue
        try:
            value, end = _decode(text, start)
        except ValueError as error:
            yield Rejection(where, _reason(error))
            continue
        if (extra := _skip_separators(text, end)) != len(text):
            yield Rejection(where, f"invalid JSON at column {extra + 1}: extra data after the value")
            continue
        yield from _expand(value, text, start, name, _LineIndex(text, first_line=number))


def _read_document(data: bytes, name: str) -> Iterator[Item]:
    """One document, or several concatenated: each top-level value is expanded into records."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        yield Rejection(f"{name}:{line}", f"not UTF-8: {error.reason} at byte {error.start}")
        return
    lines = _LineIndex(text)
    pos = _skip_separators(text, 0)
    while pos < len(text):
        try:
            value, end = _decode(text, pos)
        except ValueError as error:
            opening = _ELEMENTS_OPEN.match(text, pos)
            if opening is None:
                line = error.lineno if isinstance(error, json.JSONDecodeError) else lines.line_of(pos)
                yield Rejection(f"{name}:{line}", _reason(error, with_line=True))
                return
            yield from _recover_elements(text, opening.end(), name, lines)
            return
        yield from _expand(value, text, pos, name, lines)
        pos = _skip_separators(text, end)


# A container or an array that failed to parse as a whole: its elements are read one by one.
_ELEMENTS_OPEN = re.compile(r'\{\s*"(?:Records|Findings)"\s*:\s*\[|\[')
# An object that starts a record: where reading resumes after a broken element.
_RECORD_KEYS = frozenset({"eventVersion", "eventTime", "detail-type", "SchemaVersion", "schemaVersion"})
_NEXT_ELEMENT = re.compile(r"[,\[]\s*(\{)")


def _recover_elements(text: str, pos: int, name: str, lines: _LineIndex) -> Iterator[Item]:
    """The elements of an array starting at `pos` (just past its `[`) that is known to be broken somewhere."""
    found: list[tuple[int, int, Any]] = []  # (line, element index, element or the Rejection of it)
    index = 0
    while (pos := _skip_separators(text, pos)) < len(text) and text[pos] != "]":
        line = lines.line_of(pos)
        try:
            element, end = _decode(text, pos)
        except ValueError as error:
            found.append((line, index, Rejection("", f"{_reason(error, with_line=True)}; element skipped")))
            resume = _resume_at(text, pos + 1)  # a truncated element may have swallowed the next one's start
            if resume is None:
                break
            pos, index = resume, index + 1
            continue
        found.append((line, index, element))
        pos, index = _skip_separators(text, end), index + 1
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos < len(text) and text[pos] != "]":
            at = lines.line_of(pos)
            reason = f"invalid JSON at line {at}: expected ',' or ']' after element {index - 1}; both sides are read"
            found.append((at, -1, Rejection(f"{name}:{at}", reason)))
    per_line = Counter(line for line, index, _ in found if index >= 0)
    for line, index, element in found:
        where = f"{name}:{line}#{index}" if per_line[line] > 1 else f"{name}:{line}"
        if index < 0:
            yield element
        elif isinstance(element, Rejection):
            yield Rejection(where, element.reason)
        elif isinstance(element, dict):
            yield _record(element, where)
        else:
            yield Rejection(where, f"expected a JSON object, got {_json_type(element)}")


def _resume_at(text: str, pos: int) -> int | None:
    """Where the next whole record starts after `pos`, or None."""
    for match in _NEXT_ELEMENT.finditer(text, max(pos, 1) - 1):
        start = match.start(1)
        try:
            candidate, end = _decode(text, start)
        except ValueError:
            continue
        after = _skip_separators(text, end)
        if isinstance(candidate, dict) and _RECORD_KEYS & candidate.keys() and text[after : after + 1] in (",", "]"):
            return start
    return None


# Containers whose elements are the records: CloudTrail log files, Security Hub GetFindings responses
# (`Findings`), and API responses as recorded by placebo / botocore stubs (`data.Findings`).
_CONTAINER_PATHS: tuple[tuple[str, ...], ...] = (("Records",), ("Findings",), ("data", "Findings"))


_CONTAINER_KEYS = tuple(dict.fromkeys(path[0] for path in _CONTAINER_PATHS))


def _container_path(value: dict[str, Any]) -> tuple[str, ...] | None:
    if value.keys().isdisjoint(_CONTAINER_KEYS):
        return None  # a record, as almost every line is: told in C (three look-ups), without walking the paths
    for path in _CONTAINER_PATHS:
        node: Any = value
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, list):
            return path
    return None


def _expand(value: Any, text: str, start: int, name: str, lines: _LineIndex) -> Iterator[Item]:
    """The records in one top-level value, each with its `where`."""
    path = _container_path(value) if isinstance(value, dict) else None
    if isinstance(value, dict) and path is None:
        yield _record(value, f"{name}:{lines.line_of(start)}")
        return
    if isinstance(value, dict):
        assert path is not None
        elements = _follow(value, path)
        starts = _element_starts(text, _value_start(text, start, path))
    elif isinstance(value, list):
        elements, starts = value, _element_starts(text, start)
    else:
        yield Rejection(f"{name}:{lines.line_of(start)}", f"expected a JSON object, got {_json_type(value)}")
        return
    element_lines = [lines.line_of(s) for s in starts]
    per_line = Counter(element_lines)
    for index, (element, line) in enumerate(zip(elements, element_lines, strict=True)):
        where = f"{name}:{line}#{index}" if per_line[line] > 1 else f"{name}:{line}"
        if isinstance(element, dict):
            yield _record(element, where)
        else:
            yield Rejection(where, f"expected a JSON object, got {_json_type(element)}")


def _record(payload: dict[str, Any], where: str) -> Item:
    if (depth := _depth(payload)) > MAX_DEPTH:
        return Rejection(where, f"refused: JSON nested {depth} levels deep (more than {MAX_DEPTH})")
    try:
        size = len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    except UnicodeEncodeError as error:
        surrogate = error.object[error.start : error.end].encode("unicode_escape").decode("ascii")
        return Rejection(where, f"refused: a string holds a lone UTF-16 surrogate ({surrogate}), which is not Unicode")
    if size > MAX_RECORD_BYTES:
        return Rejection(where, f"record is {size:,} bytes, over the {MAX_RECORD_BYTES:,}-byte event size limit")
    return RawRecord(payload, where)


def _depth(value: Any) -> int:
    """How deeply `value` nests, iteratively (the point is to refuse what recursion could not handle); stops
    counting past MAX_DEPTH."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                return depth
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _follow(value: dict[str, Any], path: tuple[str, ...]) -> list[Any]:
    node: Any = value
    for key in path:
        node = node[key]
    return node  # type: ignore[no-any-return]


def _json_type(value: Any) -> str:
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", type(None): "null"}
    return names.get(type(value), type(value).__name__)


# --- positions inside an already-validated document (so the scanners need no error handling) ---


class _LineIndex:
    """Offset -> 1-based line number, by binary search over the newline offsets."""

    def __init__(self, text: str, first_line: int = 1) -> None:
        self._newlines = [match.start() for match in re.finditer("\n", text)]
        self._first = first_line

    def line_of(self, offset: int) -> int:
        return self._first + bisect.bisect_left(self._newlines, offset)


def _skip_separators(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _SEPARATORS:
        pos += 1
    return pos


def _skip_whitespace(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WHITESPACE:
        pos += 1
    return pos


def _value_start(text: str, pos: int, path: tuple[str, ...]) -> int:
    """Offset where the value at `path` (a chain of object keys) starts, from the object at `pos`.
    With a duplicate key the last one counts, as it does for `json.loads`."""
    for wanted in path:
        found = pos = _skip_whitespace(text, pos) + 1  # past "{"
        while text[_skip_whitespace(text, pos)] != "}":
            key, pos = _DECODER.raw_decode(text, _skip_whitespace(text, pos))
            pos = _skip_whitespace(text, _skip_whitespace(text, pos) + 1)  # past ":"
            if key == wanted:
                found = pos
            _, pos = _DECODER.raw_decode(text, pos)
            pos = _skip_whitespace(text, pos)
            pos += text[pos] == ","
        pos = found
    return pos


def _element_starts(text: str, pos: int) -> list[int]:
    """Offsets where each element of the array at `pos` starts."""
    starts: list[int] = []
    pos = _skip_whitespace(text, _skip_whitespace(text, pos) + 1)  # past "["
    while text[pos] != "]":
        starts.append(pos)
        _, pos = _DECODER.raw_decode(text, pos)
        pos = _skip_whitespace(text, pos)
        if text[pos] == ",":
            pos = _skip_whitespace(text, pos + 1)
    return starts
