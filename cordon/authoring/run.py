"""`cordon test`: which rule and playbook files to test, and running their fixtures.

Without paths it tests what `cordon validate` checks: the built-in rules and playbooks and those the site
configuration adds. With paths (rule or playbook files or folders), only those; the rules they may reference
(a correlation over a built-in detection) still load from the configuration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from cordon.authoring.context import Context
from cordon.authoring.playbook_fixtures import playbook_suite
from cordon.authoring.results import Suite
from cordon.authoring.rule_fixtures import rule_suite
from cordon.playbooks.loader import playbook_files
from cordon.replay import rule_paths
from cordon.respond import playbook_paths
from cordon.validate import split_rules_and_playbooks
from correlators.config import Config
from correlators.errors import InputError
from correlators.sigma.documents import rule_files
from correlators.sigma.loader import load_rules
from responders.base import Responder


def run_tests(config: Config, paths: Sequence[Path], responders: Mapping[str, type[Responder]]) -> list[Suite]:
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise InputError(f"no such file or folder: {', '.join(missing)}")
    if paths:
        rule_targets, playbook_targets = split_rules_and_playbooks(paths)
    else:
        rule_targets, playbook_targets = [], playbook_files(playbook_paths(config))
    ruleset = load_rules(rule_paths(config, rule_targets), collect_errors=True)
    tested_rules = rule_files(rule_targets, []) if paths else rule_files(rule_paths(config), [])
    context = Context(ruleset, config)
    suites = [rule_suite(file, context, _errors_of(file, ruleset.errors)) for file in tested_rules]
    suites += [playbook_suite(file, context, responders) for file in _unique(playbook_targets)]
    return suites


def _errors_of(rule_file: Path, errors: Sequence[InputError]) -> list[InputError]:
    """The load errors that name this file (`path:line` or `path`)."""
    here = rule_file.resolve()
    found = []
    for error in errors:
        where = error.where or ""
        path, colon, line = where.rpartition(":")
        named = Path(path if colon and line.isdigit() else where)
        if where and named.resolve() == here:
            found.append(error)
    return found


def _unique(files: Sequence[Path]) -> list[Path]:
    """Each file once, however many of the given paths lead to it."""
    seen: dict[Path, Path] = {}
    for file in files:
        seen.setdefault(file.resolve(), file)
    return list(seen.values())
