"""The `cordon` command. Exit codes: 0 the run completed (rejected events included), 2 bad usage or an invalid
config or rule file, 1 an internal error."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from correlators.config import load_config
from correlators.errors import InputError, StateError

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cordon", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    replay = commands.add_parser("replay", help="correlate event files into incidents")
    replay.add_argument("paths", nargs="+", metavar="PATH", help="event files or folders; - reads stdin")
    replay.add_argument("--config", type=Path, help="site configuration (cordon.yaml)")
    replay.add_argument("--rules", type=Path, action="append", default=[], help="extra Sigma rule file or folder")
    replay.add_argument(
        "--state", default="memory://", help="state store: memory:// (default) or sqlite:///path/state.db"
    )
    replay.add_argument("--output", choices=("text", "json"), default="text")
    return parser


def _replay(args: argparse.Namespace) -> int:
    from cordon.render import render_text
    from cordon.replay import load_ruleset, replay

    missing = [p for p in args.paths if p != "-" and not Path(p).exists()]
    if missing:
        raise InputError(f"no such file or folder: {', '.join(missing)}")
    config = load_config(args.config)
    rules = load_ruleset(config, args.rules)
    result = replay(args.paths, config, rules, state_url=args.state, stdin=sys.stdin.buffer)
    if args.output == "json":
        json.dump(result.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render_text(result, Console())
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _replay(args)
    except (InputError, StateError) as error:
        print(f"cordon: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK
    except Exception as error:
        traceback.print_exc(file=sys.stderr)
        print(f"cordon: internal error: {error}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
