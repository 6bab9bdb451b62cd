"""Read event files (and stdin) into raw records, one per event, each remembering where it came from.

Accepted layouts, plain or gzipped (detected by magic bytes, not by name):

- JSON Lines: one JSON value per line (`.jsonl`, `.ndjson`, or a `.log` of EventBridge events);
- one JSON document: an object, an array of objects, or several pretty-printed objects one after another
  (what `jq '.Records[]'` prints);
- containers, expanded wherever they appear: a CloudTrail S3 log file `{"Records": [...]}`, a Security Hub
  `GetFindings` response `{"Findings": [...]}`, and a recorded API response `{"data": {"Findings": [...]}}`.

Bad input never stops the stream: each problem becomes a `Rejection` naming `path:line` and the reason, and
reading goes on with the next line, element or file.
"""

from __future__ import annotations

import bisect
import gzip
import io
import json
import os
import re
import sys
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

# EventBridge refuses events over 256 KB; a bigger "event" is a mistake (or an attack on the parser).
MAX_RECORD_BYTES = 262_144
STDIN_NAME = "<stdin>"
# Inside folders only these are read; a file named on the command line is always read.
EVENT_FILE_SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".gz", ".log")

_GZIP_MAGIC = b"\x1f\x8b"
_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


@dataclass(frozen=True)
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
        if _starts_with_gzip_magic(stream):
            stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
        yield from _read_text_lines(iter(stream), name)
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        yield Rejection(name, f"cannot read: {error}")


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
        yield from _read_json_lines(_chain(head, lines), name)
        return
    data = b"".join(_chain(head, lines))
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


def _chain(head: list[bytes], lines: Iterator[bytes]) -> Iterator[bytes]:
    yield from head
    yield from lines


_INVALID = object()


def _loads(line: bytes) -> Any:
    try:
        return json.loads(line.decode("utf-8-sig"))
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return _INVALID


def _parses(line: bytes) -> bool:
    return _loads(line) is not _INVALID


def _read_json_lines(lines: Iterable[bytes], name: str) -> Iterator[Item]:
    for number, line in enumerate(lines, start=1):
        where = f"{name}:{number}"
        try:
            text = line.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n")
        except UnicodeDecodeError as error:
            yield Rejection(where, f"not UTF-8: {error.reason} at byte {error.start}")
            continue
        if not text.strip():
            continue
        try:
            value, end = _DECODER.raw_decode(text, _skip_whitespace(text, 0))
        except json.JSONDecodeError as error:
            yield Rejection(where, f"invalid JSON at column {error.colno}: {error.msg}")
            continue
        if (extra := _skip_whitespace(text, end)) != len(text):
            yield Rejection(where, f"invalid JSON at column {extra + 1}: extra data after the value")
            continue
        yield from _expand(value, text, _skip_whitespace(text, 0), name, _LineIndex(text, first_line=number))


def _read_document(data: bytes, name: str) -> Iterator[Item]:
    """One document, or several concatenated: each top-level value is expanded into records."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        yield Rejection(f"{name}:{line}", f"not UTF-8: {error.reason} at byte {error.start}")
        return
    lines = _LineIndex(text)
    pos = _skip_whitespace(text, 0)
    while pos < len(text):
        try:
            value, end = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError as error:
            yield Rejection(
                f"{name}:{error.lineno}", f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
            )
            return
        yield from _expand(value, text, pos, name, lines)
        pos = _skip_whitespace(text, end)


# Containers whose elements are the records: CloudTrail log files, Security Hub GetFindings responses
# (`Findings`), and API responses as recorded by placebo / botocore stubs (`data.Findings`).
_CONTAINER_PATHS: tuple[tuple[str, ...], ...] = (("Records",), ("Findings",), ("data", "Findings"))


def _container_path(value: dict[str, Any]) -> tuple[str, ...] | None:
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
    size = len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > MAX_RECORD_BYTES:
        return Rejection(where, f"record is {size:,} bytes, over the {MAX_RECORD_BYTES:,}-byte event size limit")
    return RawRecord(payload, where)


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
