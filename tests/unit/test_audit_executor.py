"""The executor's claims: runners racing in threads and in processes, a runner killed mid-apply, a stale owner,
concurrent approvals, and the enforcement ceiling.

The responder is a test double in a local registry that counts its `apply` calls (in memory, or in a file when
several processes share it): the thing under test is the claim, not AWS. tests/functional/test_audit_dynamodb.py
runs the same race against DynamoDB on moto.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from cordon.audit import AuditLog, MemoryAuditLog, SqliteAuditLog, Status
from cordon.cli import main
from cordon.execute import ActionRefusedError, Executor, SessionFactory
from cordon.playbooks.model import Mode, OnError
from cordon.playbooks.plan import PlannedAction
from correlators.config import Config, GuardsConfig
from responders.base import ActionContext, Responder, ResponderError, ResponderParams, Target

REPO = Path(__file__).resolve().parents[2]
CONFIG = Config(guards=GuardsConfig(max_actions_per_incident=100, max_actions_per_hour=100))
INCIDENT = {"id": "inc-1", "actions": []}


class Applies:
    """Counts apply calls per target, in memory or appended to a file (shared by processes)."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()

    def hit(self, target: str) -> None:
        if self._path is None:
            with self._lock:
                self._calls[target] += 1
            return
        with self._path.open("a") as file:  # one short append per call: atomic enough for lines this size
            file.write(target + "\n")

    def counts(self) -> Counter[str]:
        if self._path is None:
            with self._lock:
                return Counter(self._calls)
        return Counter(self._path.read_text().split()) if self._path.exists() else Counter()


def counting_registry(
    applies: Applies,
    *,
    delay: float = 0.02,
    marker: str = "read",
    in_apply: Callable[[int], None] | None = None,
) -> dict[str, type[Responder]]:
    """`test.count`: reads `{"read": marker}`, counts each apply, sleeps `delay` in it (widening any race)."""
    calls = iter(range(1_000_000))

    class Counting(Responder):
        permissions = ("test:Count",)
        target_types = frozenset({"instance"})
        reversible = True

        def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> dict[str, Any]:
            return {"read": marker}

        def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: Any) -> dict[str, Any]:
            applies.hit(target.id)
            if in_apply is not None:
                in_apply(next(calls))
            time.sleep(delay)
            return {"applied": True}

        def rollback(self, ctx: ActionContext, target: Target, params: Any, before: Any, after: Any) -> dict[str, Any]:
            return {"rolled_back": True}

    Counting.name = "test.count"
    return {"test.count": Counting}


class OfflineSessions(SessionFactory):
    """Sessions that never call AWS: the counting responder needs none."""

    def __init__(self) -> None:
        base = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
        super().__init__(None, "CordonResponderRole", base)

    def caller_account(self) -> str:
        return "123456789012"

    def session(self, account: str | None, region: str) -> boto3.session.Session:
        return self._base

    def parameter(self, name: str) -> str | None:
        return None


def plans(count: int, mode: Mode = Mode.ENFORCE, incident: str = "inc-1") -> list[PlannedAction]:
    return [
        PlannedAction(
            playbook="contain",
            step="isolate",
            responder="test.count",
            target=Target(type="instance", id=f"i-{n:03d}", region="us-east-1"),
            params={},
            mode=mode,
            on_error=OnError.CONTINUE,
            key=f"{incident}|isolate|i-{n:03d}",
        )
        for n in range(count)
    ]


def executor(store: AuditLog, registry: dict[str, type[Responder]], **options: Any) -> Executor:
    return Executor(CONFIG, store, registry, sessions=OfflineSessions(), **options)


def race_runners(stores: Callable[[], AuditLog], *, threads: int = 8, actions: int = 12) -> tuple[Applies, AuditLog]:
    """`threads` runners, each with its own store handle, run the same plans (shuffled) at once."""
    applies = Applies()
    registry = counting_registry(applies)
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def runner(seed: int) -> None:
        store = stores()
        mine = plans(actions)
        random.Random(seed).shuffle(mine)
        barrier.wait()
        try:
            for status in {a["status"] for a in executor(store, registry).run(INCIDENT, mine)}:
                assert status in {"applied", "in_progress"}, status
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=runner, args=(seed,)) for seed in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    return applies, stores()


def assert_applied_once(applies: Applies, store: AuditLog, actions: int = 12) -> None:
    assert applies.counts() == Counter({f"i-{n:03d}": 1 for n in range(actions)})
    records = store.records()
    assert len(records) == actions  # one record per key
    assert {r.status for r in records} == {Status.APPLIED}
    assert {r.key for r in records} == {p.key for p in plans(actions)}


# --- racing runners ---------------------------------------------------------------------------------------------------
def test_eight_threads_on_one_memory_store_apply_every_action_once() -> None:
    shared = MemoryAuditLog()
    applies, store = race_runners(lambda: shared)
    assert_applied_once(applies, store)


def test_eight_threads_on_one_sqlite_file_apply_every_action_once(tmp_path) -> None:
    path = str(tmp_path / "state.db")
    applies, store = race_runners(lambda: SqliteAuditLog(path))  # a connection of its own per runner
    assert_applied_once(applies, store)


def child(arguments: list[str]) -> None:
    """A runner in its own process: `python -c ... DB COUNTS run|die [COUNT]`."""
    database, counts, what = arguments[:3]
    actions = int(arguments[3]) if len(arguments) > 3 else 1

    def die(call: int) -> None:
        os._exit(9)  # killed mid-apply: the claim is written, the outcome never is

    registry = counting_registry(
        Applies(Path(counts)), delay=0.01, marker="first", in_apply=die if what == "die" else None
    )
    store = SqliteAuditLog(database)
    executor(store, registry, lease=timedelta(seconds=60)).run(INCIDENT, plans(actions))
    store.close()


def spawn(*arguments: str) -> subprocess.Popen[bytes]:
    code = "import sys; from tests.unit.test_audit_executor import child; child(sys.argv[1:])"
    return subprocess.Popen([sys.executable, "-c", code, *arguments], cwd=REPO)


def test_two_processes_on_one_sqlite_file_apply_every_action_once(tmp_path) -> None:
    database, counts = str(tmp_path / "state.db"), tmp_path / "applies.txt"
    runners = [spawn(database, str(counts), "run", "30") for _ in range(2)]
    assert [runner.wait(timeout=120) for runner in runners] == [0, 0]
    assert Applies(counts).counts() == Counter({f"i-{n:03d}": 1 for n in range(30)})
    store = SqliteAuditLog(database)
    assert len(store.records()) == 30
    assert {r.status for r in store.records()} == {Status.APPLIED}


def test_a_runner_killed_mid_apply_leaves_its_claim_which_is_retried_once_after_the_lease(tmp_path, capsys) -> None:
    # GIVEN a runner that claimed an action, read its state, and was killed inside apply
    database, counts = str(tmp_path / "state.db"), tmp_path / "applies.txt"
    assert spawn(database, str(counts), "die").wait(timeout=60) == 9
    assert Applies(counts).counts() == Counter({"i-000": 1})
    # THEN the audit shows the action in progress, with the state read before the attempt
    assert main(["audit", "--state", f"sqlite:///{database}", "--output", "json"]) == 0
    [shown] = json.loads(capsys.readouterr().out)
    assert (shown["status"], shown["before"]) == ("in_progress", {"read": "first"})

    # WHEN the next run comes before the lease expires, THEN it does not act
    applies = Applies()
    store = SqliteAuditLog(database)
    [action] = executor(store, counting_registry(applies, marker="second")).run(INCIDENT, plans(1))
    assert action["status"] == "in_progress"
    assert applies.counts() == Counter()

    # WHEN a run comes after the lease expired, THEN it applies once, and keeps the state before the first attempt
    later = datetime.now(UTC) + timedelta(minutes=2)
    retry = executor(store, counting_registry(applies, marker="second"), clock=lambda: later)
    [action] = retry.run(INCIDENT, plans(1))
    assert action["status"] == "applied"
    assert applies.counts() == Counter({"i-000": 1})
    [record] = store.records()
    assert (record.before, record.attempts) == ({"read": "first"}, 2)
    assert retry.run(INCIDENT, plans(1))[0]["status"] == "applied"  # settled now: no third apply
    assert applies.counts() == Counter({"i-000": 1})


def test_a_runner_whose_lease_ran_out_cannot_overwrite_the_new_owners_outcome() -> None:
    # GIVEN runner A's apply outlives its lease and then fails, while runner B takes the action over and applies it
    store, applies = MemoryAuditLog(), Applies()
    took_over = threading.Event()

    def slow_then_fail(call: int) -> None:
        if call == 0:
            took_over.wait(timeout=10)
            raise ResponderError("timed out")

    registry = counting_registry(applies, delay=0, in_apply=slow_then_fail)
    results: list[list[dict[str, Any]]] = []
    runner_a = threading.Thread(
        target=lambda: results.append(executor(store, registry, lease=timedelta(seconds=0.2)).run(INCIDENT, plans(1)))
    )
    runner_a.start()
    time.sleep(0.4)
    assert executor(store, registry).run(INCIDENT, plans(1))[0]["status"] == "applied"
    took_over.set()
    runner_a.join()
    # THEN A reports B's record, and the audit keeps B's outcome
    assert results[0][0]["status"] == "applied"
    [record] = store.records()
    assert record.status is Status.APPLIED and record.reason is None


# --- approvals ------------------------------------------------------------------------------------------------------
@pytest.fixture
def pending() -> Iterator[tuple[MemoryAuditLog, Applies, dict[str, type[Responder]], str]]:
    store, applies = MemoryAuditLog(), Applies()
    registry = counting_registry(applies, delay=0.2)
    [action] = executor(store, registry).run(INCIDENT, plans(1, Mode.APPROVAL))
    assert action["status"] == "pending_approval"
    assert action["reason"] == f"waiting for approval: cordon approve {action['id']}"
    yield store, applies, registry, action["id"]


def test_two_approvals_at_once_apply_once(pending) -> None:
    store, applies, registry, action_id = pending
    outcomes: list[str] = []

    def approve() -> None:
        try:
            outcomes.append(executor(store, registry).approve(action_id).status.value)
        except ActionRefusedError as error:
            outcomes.append(str(error))

    approvers = [threading.Thread(target=approve) for _ in range(2)]
    for approver in approvers:
        approver.start()
    for approver in approvers:
        approver.join()
    assert applies.counts() == Counter({"i-000": 1})
    assert sorted(outcomes)[1] == "applied"
    assert sorted(outcomes)[0].startswith(f"action {action_id} (test.count on i-000) is")  # in progress or applied


def test_approving_an_applied_or_rolled_back_action_is_refused(pending) -> None:
    store, applies, registry, action_id = pending
    runner = executor(store, registry)
    runner.approve(action_id)
    with pytest.raises(ActionRefusedError, match=f"action {action_id} \\(test.count on i-000\\) is already applied"):
        runner.approve(action_id)
    assert runner.rollback(action_id).status is Status.ROLLED_BACK
    with pytest.raises(ActionRefusedError, match="was rolled back: it is not applied again; nothing was done"):
        runner.approve(action_id)
    with pytest.raises(ActionRefusedError, match="is already rolled back: nothing to roll back"):
        runner.rollback(action_id)
    assert applies.counts() == Counter({"i-000": 1})
    assert executor(store, registry).run(INCIDENT, plans(1, Mode.APPROVAL))[0]["status"] == "rolled_back"


def test_cordon_approve_of_a_rolled_back_action_says_why(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    database = str(tmp_path / "state.db")
    store, registry = SqliteAuditLog(database), counting_registry(Applies())
    [action] = executor(store, registry).run(INCIDENT, plans(1))
    executor(store, registry).rollback(action["id"])
    assert main(["approve", action["id"], "--state", f"sqlite:///{database}"]) == 1
    assert capsys.readouterr().err == (
        f"cordon: action {action['id']} (test.count on i-000) was rolled back: it is not applied again;"
        " nothing was done\n"
    )


# --- the enforcement ceiling --------------------------------------------------------------------------------------
def test_an_approval_ceiling_holds_enforce_steps_for_approval() -> None:
    store, applies = MemoryAuditLog(), Applies()
    registry = counting_registry(applies)
    [action] = executor(store, registry, max_mode=Mode.APPROVAL).run(INCIDENT, plans(1, Mode.ENFORCE))
    assert action["status"] == "pending_approval"
    assert action["reason"] == (
        f"waiting for approval: cordon approve {action['id']} (the enforcement ceiling is approval)"
    )
    assert applies.counts() == Counter()
    assert executor(store, registry, max_mode=Mode.APPROVAL).approve(action["id"]).status is Status.APPLIED


def test_a_dry_run_ceiling_plans_with_the_state_read_and_refuses_approvals() -> None:
    store, applies = MemoryAuditLog(), Applies()
    registry = counting_registry(applies)
    capped = executor(store, registry, max_mode=Mode.DRY_RUN)
    enforce, approval = capped.run(INCIDENT, plans(1, Mode.ENFORCE) + plans(1, Mode.APPROVAL, incident="inc-2"))
    assert (enforce["status"], enforce["current_state"]) == ("planned", {"read": "read"})
    assert enforce["reason"] == "the enforcement ceiling is dry_run: this enforce step is planned only"
    assert approval["status"] == "planned"
    assert applies.counts() == Counter()
    # the ceiling lifted, the planned action is retried and applied
    assert executor(store, registry).run(INCIDENT, plans(1))[0]["status"] == "applied"
    # an action waiting for approval is not approved under a dry_run ceiling
    [waiting] = executor(store, registry).run(INCIDENT, plans(1, Mode.APPROVAL, incident="inc-3"))
    with pytest.raises(ActionRefusedError, match=f"the enforcement ceiling is dry_run: approving {waiting['id']}"):
        capped.approve(waiting["id"])
    assert applies.counts() == Counter({"i-000": 1})
