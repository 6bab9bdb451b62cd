"""Failed actions are retried on purpose, each once (issue 7, "Execution and guards"): `cordon retry` attempts
what failed for a transient reason (throttled or unavailable past botocore's retries, a connection lost) through
the same claim and every guard; a permanent failure waits for `--include-permanent`; two retries at once apply
once; a retried notification tells the incident with its actions as they stand."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from cordon.audit import SqliteAuditLog, Status
from cordon.cli import main
from cordon.execute import ActionRefusedError, Executor, SessionFactory
from correlators.state import SqliteStore
from tests.functional.test_execute import RESPONDERS, World, _credentials, _statuses, aws
from tests.functional.test_execution_faults import _error, _fault

__all__ = ["_credentials", "aws"]  # fixtures, used by name


def _refuse(code: str, status: int, operation: str) -> Callable[[Callable[[], Any], dict[str, Any]], Any]:
    def refuse(call: Callable[[], Any], params: dict[str, Any]) -> Any:
        raise _error(code, status, operation)

    return refuse


def _failing_world(aws: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, code: str, status: int) -> World:
    """A run whose UpdateAccessKey failed with `code` (past botocore's retries); AWS answers normally after it."""
    world = World(aws, tmp_path)
    world.audit = SqliteAuditLog(str(tmp_path / "state.db"))
    world.executor = Executor(
        world.config, world.audit, RESPONDERS, sessions=SessionFactory(None, "CordonResponderRole", aws)
    )
    with monkeypatch.context() as patch:
        _fault(patch, "UpdateAccessKey", _refuse(code, status, "UpdateAccessKey"))
        actions = world.run()
    assert _statuses(actions)[0] == ("deactivate-key", "failed")
    assert world.key_status()[world.key] == "Active"
    return world


def _failed_id(world: World) -> str:
    [record] = [r for r in world.audit.records() if r.status is Status.FAILED]
    return record.id


@pytest.mark.parametrize(
    ("code", "status", "transient"),
    [
        ("Throttling", 400, True),
        ("ServiceUnavailable", 503, True),
        ("InternalError", 500, True),
        ("AccessDenied", 403, False),
        ("NoSuchEntity", 404, False),
    ],
)
def test_a_failure_is_recorded_transient_or_permanent(aws, tmp_path, monkeypatch, code, status, transient) -> None:
    world = _failing_world(aws, tmp_path, monkeypatch, code, status)
    assert world.audit.get(_failed_id(world)).transient is transient


def test_retry_applies_a_failed_action_once(aws, tmp_path, monkeypatch) -> None:
    # GIVEN a deactivation that was throttled
    world = _failing_world(aws, tmp_path, monkeypatch, "Throttling", 400)
    failed = _failed_id(world)
    # WHEN it is retried
    record = world.executor.retry(failed)
    # THEN it is applied, the state before the first attempt kept, and a second retry is refused
    assert record.status is Status.APPLIED and record.attempts == 2
    assert record.before["status"] == "Active" and world.key_status()[world.key] == "Inactive"
    with pytest.raises(ActionRefusedError, match=r"is applied, not failed: only a failed action is retried"):
        world.executor.retry(failed)
    assert world.audit.applied_count(incident_id="inc-1") == 2


def test_eight_retries_at_once_apply_once(aws, tmp_path, monkeypatch) -> None:
    world = _failing_world(aws, tmp_path, monkeypatch, "Throttling", 400)
    failed = _failed_id(world)
    calls: list[str] = []
    _fault(monkeypatch, "UpdateAccessKey", lambda call, params: (calls.append("UpdateAccessKey"), call())[1])
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def retry() -> None:
        start.wait()
        try:
            outcomes.append(world.executor.retry(failed).status.value)
        except ActionRefusedError as refused:
            outcomes.append("refused: " + str(refused).split(": ", 1)[0])

    threads = [threading.Thread(target=retry) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes).count("applied") == 1 and len(outcomes) == 8
    assert calls == ["UpdateAccessKey"]


def test_a_retry_passes_every_guard_again(aws, tmp_path, monkeypatch) -> None:
    world = _failing_world(aws, tmp_path, monkeypatch, "Throttling", 400)
    monkeypatch.setenv("CORDON_KILL_SWITCH", "on")
    record = world.executor.retry(_failed_id(world))
    assert record.status is Status.SKIPPED and "kill switch is on" in (record.reason or "")
    assert world.key_status()[world.key] == "Active"


def test_a_retried_notification_tells_the_incident_and_its_actions(aws, tmp_path, monkeypatch) -> None:
    # GIVEN the SNS alert failed (SNS unavailable) after both changes were applied
    world = World(aws, tmp_path)
    with monkeypatch.context() as patch:
        _fault(patch, "Publish", _refuse("ServiceUnavailable", 503, "Publish"))
        actions = world.run()
    assert _statuses(actions) == [
        ("deactivate-key", "applied"),
        ("deny-ml-data", "applied"),
        ("notify:notify.sns", "failed"),
    ]
    notification = actions[2]["id"]
    # WHEN it is retried without the incident, it is refused; with it, it is sent
    with pytest.raises(ActionRefusedError, match=r"not in this state: nothing was sent"):
        world.executor.retry(notification)
    record = world.executor.retry(notification, {**world.incident, "actions": []})
    # THEN the alert tells the incident and the actions the audit holds
    assert record.status is Status.APPLIED
    [alert] = world.alerts()
    assert alert["id"] == "inc-1"
    assert {(a["step"], a["status"]) for a in alert["actions"]} == {
        ("deactivate-key", "applied"),
        ("deny-ml-data", "applied"),
    }


def test_cordon_retry_takes_transient_failures_and_leaves_permanent_ones(aws, tmp_path, monkeypatch, capsys) -> None:
    # GIVEN one action throttled and one refused, in one SQLite state
    world = World(aws, tmp_path)
    state = tmp_path / "state.db"
    SqliteStore(str(state)).close()
    world.audit = SqliteAuditLog(str(state))
    world.executor = Executor(world.config, world.audit, RESPONDERS, sessions=SessionFactory(None, "Cordon", aws))
    with monkeypatch.context() as patch:
        _fault(patch, "UpdateAccessKey", _refuse("Throttling", 400, "UpdateAccessKey"))
        _fault(patch, "PutUserPolicy", _refuse("AccessDenied", 403, "PutUserPolicy"))
        actions = world.run()
    assert [a["status"] for a in actions[:2]] == ["failed", "failed"]
    url = f"sqlite:///{state}"

    # WHEN `cordon retry` runs, THEN only the throttled action is attempted, and applied
    assert main(["retry", "--state", url]) == 0
    out = capsys.readouterr().out
    assert f"{actions[0]['id']} iam.deactivate-access-key {world.key}: applied" in out
    assert actions[1]["id"] not in out and world.key_status()[world.key] == "Inactive"

    # WHEN it runs again, nothing fits; with --include-permanent the refused one is tried (and refused again)
    assert main(["retry", "--state", url]) == 0
    assert "nothing to retry" in capsys.readouterr().out
    with monkeypatch.context() as patch:
        _fault(patch, "PutUserPolicy", _refuse("AccessDenied", 403, "PutUserPolicy"))
        assert main(["retry", "--state", url, "--include-permanent"]) == 1
    assert f"{actions[1]['id']} iam.quarantine-principal" in capsys.readouterr().out
    # and an unknown action is a usage error naming it
    assert main(["retry", "--state", url, "act-0000000000000000"]) == 2
    assert "no action act-0000000000000000 in the audit log" in capsys.readouterr().err
