"""What `cordon test` found, and the two ways it tells it: a summary a person reads in a second, and JUnit XML
for a CI (GitHub Actions reporters, GitLab's `artifacts:reports:junit`).

One suite per rule or playbook file, one case per fixture. A file without fixtures is one skipped case, so a CI
shows it untested rather than silently absent. JUnit's `error` (the test could not run) is not used: a fixture
that cannot be read, an invalid `expect.yaml` or a rule file that does not load are failures of that file, with
the place to fix named in the message.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from correlators.errors import InputError

SuiteKind = Literal["rule", "playbook"]


def shown(path: Path) -> str:
    """The path as a person typed it: relative to the working directory when it is under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def shown_where(where: str) -> str:
    """`path:line` (or `path:line#N`, or a bare path) with the path as `shown` prints it."""
    path, colon, line = where.rpartition(":")
    if colon and line.split("#")[0].isdigit():
        return f"{shown(Path(path))}:{line}"
    return shown(Path(where))


def located(error: InputError) -> str:
    """An input error as a failure line: `path:line: reason`, the path as `shown` prints it."""
    return f"{shown_where(error.where)}: {error.reason}" if error.where else error.reason


@dataclass(frozen=True)
class Case:
    """One fixture's outcome. `failure` is one line that starts with the place to look (`file:line` or the
    fixture's path); `details` is what a person needs to fix it (what was raised or planned, in full)."""

    name: str
    path: Path
    seconds: float = 0.0
    failure: str | None = None
    details: str = ""
    skipped: str | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None and self.skipped is None


@dataclass
class Suite:
    kind: SuiteKind
    path: Path  # the rule or playbook file
    cases: list[Case] = field(default_factory=list)

    @property
    def failures(self) -> list[Case]:
        return [case for case in self.cases if case.failure is not None]

    @property
    def skipped(self) -> list[Case]:
        return [case for case in self.cases if case.skipped is not None]


def fixture_count(suites: list[Suite]) -> int:
    return sum(1 for suite in suites for case in suite.cases if case.skipped is None)


def summary(suites: list[Suite], *, verbose: bool = False) -> list[str]:
    """One line per failure, one per file without fixtures, then the count; with `verbose`, each failure's
    details under it."""
    lines: list[str] = []
    for suite in suites:
        for case in suite.cases:
            if case.failure is not None:
                lines.append(f"FAIL {case.failure}")
                if verbose and case.details:
                    lines.extend(f"     {line}" for line in case.details.splitlines())
            elif case.skipped is not None:
                lines.append(f"SKIP {shown(suite.path)}: {case.skipped}")
    rules = sum(suite.kind == "rule" for suite in suites)
    playbooks = sum(suite.kind == "playbook" for suite in suites)
    failed = sum(len(suite.failures) for suite in suites)
    outcome = f"{failed} failed" if failed else "all passed"
    files = f"{_count(rules, 'rule file')}, {_count(playbooks, 'playbook file')}"
    lines.append(f"{files}, {_count(fixture_count(suites), 'fixture')}: {outcome}")
    return lines


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def junit_xml(suites: list[Suite], *, timestamp: datetime | None = None) -> bytes:
    """JUnit XML in the shape CI reporters read (Jenkins' schema, which GitLab and the GitHub Actions reporters
    follow): `testsuites` > `testsuite` (name, tests, failures, errors, skipped, time, timestamp, hostname) >
    `testcase` (name, classname, file, time) > `failure` (message, type; the details as text) or `skipped`."""
    stamp = (timestamp or datetime.now(UTC)).replace(microsecond=0).isoformat()
    root = ET.Element("testsuites", name="cordon test")
    for suite in suites:
        if not suite.cases:  # a file of building blocks only (00_ml_signals.yml): nothing ran, nothing to show
            continue
        seconds = sum(case.seconds for case in suite.cases)
        element = ET.SubElement(
            root,
            "testsuite",
            name=shown(suite.path),
            tests=str(len(suite.cases)),
            failures=str(len(suite.failures)),
            errors="0",
            skipped=str(len(suite.skipped)),
            time=f"{seconds:.3f}",
            timestamp=stamp,
            hostname=socket.gethostname(),
        )
        for case in suite.cases:
            testcase = ET.SubElement(
                element,
                "testcase",
                name=case.name,
                classname=f"{suite.kind}s.{suite.path.stem}",
                file=shown(case.path),
                time=f"{case.seconds:.3f}",
            )
            if case.failure is not None:
                failure = ET.SubElement(testcase, "failure", message=case.failure, type=f"{suite.kind} fixture")
                failure.text = case.details or case.failure
            elif case.skipped is not None:
                ET.SubElement(testcase, "skipped", message=case.skipped)
    root.set("tests", str(sum(len(suite.cases) for suite in suites)))
    root.set("failures", str(sum(len(suite.failures) for suite in suites)))
    root.set("errors", "0")
    root.set("skipped", str(sum(len(suite.skipped) for suite in suites)))
    root.set("time", f"{sum(case.seconds for suite in suites for case in suite.cases):.3f}")
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"
