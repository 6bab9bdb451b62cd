"""What every fixture runs against: the loaded rules, the configuration `cordon test` was given, and the
configurations fixtures name themselves (loaded once each)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from correlators.config import Config, check_config
from correlators.errors import InputError
from correlators.sigma.rules import RuleSet

FIXTURE_SUFFIX = ".tests"  # `<rule>.yml` -> `<rule>.tests/`, `<playbook>.yaml` -> `<playbook>.tests/`


class FixtureError(InputError):
    """A fixture, or the expectations beside it, cannot be read."""


def fixture_folder(path: Path) -> Path:
    return path.with_suffix(FIXTURE_SUFFIX)


@dataclass
class Context:
    ruleset: RuleSet
    config: Config  # from --config: used where a fixture names no configuration of its own
    _named: dict[Path, Config] = field(default_factory=dict)

    def config_named(self, path: Path, where: str) -> Config:
        """The configuration at `path` (named at `where`); its errors are the fixture's failure."""
        path = path.resolve()
        if path not in self._named:
            if not path.is_file():
                raise FixtureError(f"configuration {path} not found", where=where)
            config, errors = check_config(path)
            if config is None:
                raise FixtureError(f"configuration {path} is invalid: {errors[0]}", where=where)
            self._named[path] = config
        return self._named[path]
