"""The `cordon` command.

Exit codes: 0 the command completed (rejected events included); 2 bad usage, or an invalid config, rule or
playbook file (the message names file:line); 1 an internal error.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from cordon.authoring import commands as authoring
from correlators.config import Config, load_config
from correlators.errors import CordonError, InputError, StateError

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2
DEFAULT_STATE = "sqlite:///.cordon/state.db"
STATE_HELP = "sqlite:///path/state.db, or dynamodb://?audit=AUDIT_TABLE&region=REGION: a deployed stack's audit"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cordon", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    replay = commands.add_parser("replay", help="correlate event files into incidents and plan their playbooks")
    replay.add_argument("paths", nargs="+", metavar="PATH", help="event files or folders; - reads stdin")
    replay.add_argument("--rules", type=Path, action="append", default=[], help="extra Sigma rule file or folder")
    replay.add_argument("--state", default="memory://", help="memory:// (default) or sqlite:///path/state.db")
    replay.add_argument("--output", choices=("text", "json"), default="text")
    replay.add_argument("--execute", action="store_true", help="apply the plan through boto3 (default: plan only)")
    _common(replay)

    validate = commands.add_parser("validate", help="lint config, rules and playbooks; print every error")
    validate.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="extra rule or playbook files/folders")
    validate.add_argument("--config", type=Path, help="site configuration (cordon.yaml)")

    audit = commands.add_parser("audit", help="list the audit trail of actions")
    audit.add_argument("--state", default=DEFAULT_STATE, help=STATE_HELP)
    audit.add_argument("--endpoint-url", help="AWS endpoint for the DynamoDB audit table (e.g. a moto server)")
    audit.add_argument("--incident", help="only this incident's actions")
    audit.add_argument("--output", choices=("text", "json"), default="text")

    for name, text in (("approve", "apply one action waiting for approval"), ("rollback", "undo an applied action")):
        command = commands.add_parser(name, help=text)
        command.add_argument("action_id", metavar="ACTION_ID")
        command.add_argument("--state", default=DEFAULT_STATE, help=STATE_HELP)
        _common(command)

    coverage = commands.add_parser(
        "coverage", help="the techniques the rules detect, the playbooks that contain them, the scenarios that show it"
    )
    coverage.add_argument("--config", type=Path, help="site configuration (cordon.yaml)")
    coverage.add_argument("--rules", type=Path, action="append", default=[], help="extra Sigma rule file or folder")
    coverage.add_argument(
        "--scenarios", type=Path, default=Path("examples"), help="folder searched for scenario.yaml (default: examples)"
    )
    coverage.add_argument(
        "--format",
        choices=("text", "json", "navigator", "readme"),
        default="text",
        help="navigator: MITRE ATT&CK/ATLAS Navigator layers; readme: the README's rule table",
    )
    coverage.add_argument("-o", "--output", type=Path, help="write here instead of stdout")

    retry = commands.add_parser(
        "retry", help="attempt failed actions again, once each (by default those that failed for a transient reason)"
    )
    retry.add_argument("action_ids", nargs="*", metavar="ACTION_ID", help="these actions (default: all that fit)")
    retry.add_argument("--state", default=DEFAULT_STATE, help=STATE_HELP + " (&state=STATE_TABLE for notifications)")
    retry.add_argument("--incident", help="only this incident's actions")
    retry.add_argument(
        "--include-permanent",
        action="store_true",
        help="also actions that failed for a permanent reason (AccessDenied, NotFound): once the cause is fixed",
    )
    _common(retry)
    authoring.add_commands(commands)  # cordon test, cordon new

    from cordon.report.cli import add_replay_option, add_report_command

    add_report_command(commands, DEFAULT_STATE)
    add_replay_option(replay)
    return parser


def _common(command: argparse.ArgumentParser) -> None:
    command.add_argument("--config", type=Path, help="site configuration (cordon.yaml)")
    command.add_argument("--endpoint-url", help="AWS endpoint for every call (e.g. a moto server)")


def _replay(args: argparse.Namespace, config: Config) -> int:
    from cordon.render import render_text
    from cordon.replay import load_ruleset, replay

    missing = [p for p in args.paths if p != "-" and not Path(p).exists()]
    if missing:
        raise InputError(f"no such file or folder: {', '.join(missing)}")
    rules = load_ruleset(config, args.rules)
    if args.execute and not args.state.startswith("sqlite://"):
        print(
            "cordon: warning: --execute with memory:// state keeps no audit trail and no pending approvals after"
            " this run; pass --state sqlite:///path/state.db",
            file=sys.stderr,
        )
    response, audit = _response(args, config, rules)
    try:
        from cordon.report.cli import replay_reports

        after = replay_reports(args.report, audit, rules, args.state) if args.report else None
        result = replay(
            args.paths, config, rules, state_url=args.state, stdin=sys.stdin.buffer, response=response, after=after
        )
    finally:
        audit.close()
    if args.output == "json":
        _print_json(result.to_json())
    else:
        render_text(result, _console())
    return EXIT_OK


def _response(args: argparse.Namespace, config: Config, rules: Any) -> tuple[Any, Any]:
    from cordon.respond import audit_log_for, build_responder
    from responders.catalog import builtin_responders

    audit = audit_log_for(args.state, args.endpoint_url)
    response = build_responder(
        config, rules, builtin_responders(), audit, execute=args.execute, endpoint_url=args.endpoint_url
    )
    return response, audit


def _validate(args: argparse.Namespace) -> int:
    from cordon.validate import validate

    errors = validate(args.config, args.paths)
    for error in errors:
        print(error, file=sys.stderr)
    print(f"{len(errors)} error(s)" if errors else "ok: config, rules and playbooks are valid")
    return EXIT_USAGE if errors else EXIT_OK


def _audit(args: argparse.Namespace) -> int:
    from cordon.render import render_audit
    from cordon.respond import audit_log_for

    audit = audit_log_for(args.state, args.endpoint_url)
    try:
        records = audit.records(args.incident)
    finally:
        audit.close()
    if args.output == "json":
        _print_json([json.loads(r.model_dump_json()) for r in records])
    else:
        render_audit(records, _console())
    return EXIT_OK


def _act(args: argparse.Namespace, config: Config) -> int:
    from cordon.execute import Executor, SessionFactory
    from cordon.respond import audit_log_for
    from responders.catalog import builtin_responders

    audit = audit_log_for(args.state, args.endpoint_url)
    sessions = SessionFactory(args.endpoint_url, config.execution.assume_role_name)
    executor = Executor(config, audit, builtin_responders(), sessions=sessions)
    try:
        record = executor.approve(args.action_id) if args.command == "approve" else executor.rollback(args.action_id)
    finally:
        audit.close()
    print(f"{record.id} {record.responder} {record.target['id']}: {record.status.value}")
    if record.reason:
        print(f"  {record.reason}")
    return EXIT_OK if record.status.value in {"applied", "rolled_back"} else EXIT_INTERNAL


def _coverage(args: argparse.Namespace, config: Config) -> int:
    from cordon import coverage
    from cordon.playbooks.loader import load_playbooks
    from cordon.replay import load_ruleset
    from cordon.respond import known_rules, playbook_paths
    from responders.catalog import builtin_responders

    rules = load_ruleset(config, args.rules)
    playbooks, _ = load_playbooks(playbook_paths(config), builtin_responders(), known_rules(rules))
    if args.format == "readme":
        text = coverage.readme_table(rules, Path.cwd()) + "\n"
    else:
        scenarios = coverage.load_scenarios(args.scenarios) if args.scenarios.is_dir() else []
        rows = coverage.matrix(
            rules, playbooks, scenarios, Path.cwd(), min_severity=config.correlation.standalone_min_severity
        )
        if args.format == "text":
            from cordon.render import render_coverage

            render_coverage(rows, _console())
            return EXIT_OK
        document = coverage.as_json(rows) if args.format == "json" else coverage.navigator_layers(rows)
        text = json.dumps(document, indent=2) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _retry(args: argparse.Namespace, config: Config) -> int:
    from cordon.execute import Executor, SessionFactory
    from cordon.respond import audit_log_for, retry_candidates, stored_incident
    from responders.catalog import builtin_responders

    audit = audit_log_for(args.state, args.endpoint_url)
    sessions = SessionFactory(args.endpoint_url, config.execution.assume_role_name)
    executor = Executor(config, audit, builtin_responders(), sessions=sessions)
    failed = 0
    try:
        chosen = retry_candidates(audit, args.action_ids, args.incident, include_permanent=args.include_permanent)
        if not chosen:
            print("nothing to retry: no failed action fits (cordon audit lists them)")
        for record in chosen:
            try:
                incident = stored_incident(args.state, args.endpoint_url, record.incident_id)
                outcome = executor.retry(record.id, incident)
            except CordonError as error:  # refused (taken by another retry meanwhile, ...): the others go on
                print(f"{record.id} {record.responder} {record.target['id']}: not retried: {error}")
                failed += 1
                continue
            print(f"{outcome.id} {outcome.responder} {outcome.target['id']}: {outcome.status.value}")
            if outcome.reason:
                print(f"  {outcome.reason}")
            failed += outcome.status.value == "failed"
    finally:
        audit.close()
    return EXIT_INTERNAL if failed else EXIT_OK


def _console() -> Console:
    console = Console()
    # Piped into a file or a CI log, rich falls back to 80 columns, which folds every ARN: use a readable width.
    return console if console.is_terminal else Console(width=140)


def _print_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in authoring.COMMANDS:
            return authoring.run(args)
        if args.command == "validate":
            return _validate(args)
        if args.command == "audit":
            return _audit(args)
        config = load_config(args.config)
        if args.command == "replay":
            return _replay(args, config)
        if args.command == "retry":
            return _retry(args, config)
        if args.command == "coverage":
            return _coverage(args, config)
        if args.command == "report":
            from cordon.report.cli import run_report

            return run_report(args, config)
        return _act(args, config)
    except (InputError, StateError) as error:
        print(f"cordon: {error}", file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.DatabaseError as error:  # damage found after the state file was opened and checked
        state = getattr(args, "state", "")
        print(
            f"cordon: state {state} failed: {error}: move the file aside (or pass another --state) to start a new"
            " state, or restore it from a backup",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except CordonError as error:  # an action that could not be carried out (approve/rollback)
        print(f"cordon: {error}", file=sys.stderr)
        return EXIT_INTERNAL
    except BrokenPipeError:
        return EXIT_OK
    except Exception as error:
        traceback.print_exc(file=sys.stderr)
        print(f"cordon: internal error: {error}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
