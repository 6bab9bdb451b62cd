"""The `cordon test` and `cordon new` subcommands: their arguments and what they print.

Exit codes: `test` 0 when every fixture passed, 1 when one failed (a rule or playbook that does not load, or an
unreadable fixture, is a failure of its file); both 2 on bad usage or an invalid `--config`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

COMMANDS = ("test", "new")


def add_commands(commands: Any) -> None:
    """Add `test` and `new` to the `cordon` parser's subcommands."""
    test = commands.add_parser(
        "test", help="run the fixtures beside rules and playbooks; a summary, exit 1 on a failure, JUnit XML"
    )
    test.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="rule or playbook files/folders (default: those cordon validate checks)",
    )
    test.add_argument("--config", type=Path, help="site configuration (cordon.yaml); fixtures may name their own")
    test.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML here, for CI")
    test.add_argument("-v", "--verbose", action="store_true", help="print what each failing fixture raised or planned")

    new = commands.add_parser("new", help="write a commented rule or playbook skeleton with its fixture folder")
    kinds = new.add_subparsers(dest="kind", required=True)
    rule = kinds.add_parser("rule", help="a Sigma rule NAME.yml and NAME.tests/ (positive, negative, expect.yaml)")
    rule.add_argument("name", metavar="NAME")
    rule.add_argument("--dir", type=Path, default=Path(), help="where to write (default: the current folder)")
    playbook = kinds.add_parser("playbook", help="a playbook NAME.yaml and NAME.tests/ (two cases)")
    playbook.add_argument("name", metavar="NAME")
    playbook.add_argument("--dir", type=Path, default=Path(), help="where to write (default: the current folder)")
    playbook.add_argument("--rule", help="the rule whose incidents it answers (trigger.rules)")


def run(args: argparse.Namespace) -> int:
    return _test(args) if args.command == "test" else _new(args)


def _test(args: argparse.Namespace) -> int:
    from cordon.authoring.results import junit_xml, summary
    from cordon.authoring.run import run_tests
    from correlators.config import load_config
    from responders.catalog import builtin_responders

    suites = run_tests(load_config(args.config), args.paths, builtin_responders())
    if args.junit is not None:
        args.junit.parent.mkdir(parents=True, exist_ok=True)
        args.junit.write_bytes(junit_xml(suites))
    for line in summary(suites, verbose=args.verbose):
        print(line)
    return 1 if any(suite.failures for suite in suites) else 0


def _new(args: argparse.Namespace) -> int:
    from cordon.authoring.skeletons import new_playbook, new_rule

    written = new_rule(args.name, args.dir) if args.kind == "rule" else new_playbook(args.name, args.dir, args.rule)
    for path in written.files:
        print(f"wrote {path}")
    print("next:", file=sys.stdout)
    for step in written.next_steps:
        print(f"  {step}")
    return 0
