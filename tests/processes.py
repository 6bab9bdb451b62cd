"""Several processes on one state at once, as the multi-process tests run them: spawned (a fresh interpreter each,
nothing inherited), started together, and awaited."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any

SPAWN = multiprocessing.get_context("spawn")


def exit_codes(
    runs: Sequence[tuple[Callable[..., None], tuple[Any, ...]]],
    *,
    timeout: float = 300,
    while_running: Callable[[], None] = lambda: None,
) -> list[int | None]:
    """Run each (target, args) in a process of its own, all at once; `while_running` is called once all have started
    (to drain a queue they write to before they can end), then each is awaited. Their exit codes, in order."""
    workers = [SPAWN.Process(target=target, args=args) for target, args in runs]
    for worker in workers:
        worker.start()
    while_running()
    for worker in workers:
        worker.join(timeout=timeout)
    return [worker.exitcode for worker in workers]
