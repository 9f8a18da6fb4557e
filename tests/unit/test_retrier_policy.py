"""retry_decision and Backoff: the retry policy as a table, no AWS."""

from __future__ import annotations

from typing import Any

import pytest

from batchwire.retry_policy import Backoff, RetryPolicy, parse_rules, retry_decision
from batchwire.task_events import Attempt, TaskDetail, attempt_of, parse_task_state_change
from devtools.ecs_local import sample_event

ESSENTIAL = frozenset({"app"})
POLICY = RetryPolicy(max_attempts=3)


def detail(**changes: Any) -> TaskDetail:
    """The exit-1 sample's detail with ``changes`` applied (containers as name -> exit code)."""
    event = sample_event("ecs-task-stopped-exit1.json")
    raw = event["detail"]
    codes = changes.pop("codes", None)
    if codes is not None:
        raw["containers"] = [
            {"name": name, **({} if code is None else {"exitCode": code})}
            for name, code in codes.items()
        ]
    raw.update(changes)
    return parse_task_state_change(event).detail


@pytest.mark.parametrize(
    ("sample", "action", "reason_part"),
    [
        ("ecs-task-stopped-exit1.json", "retry", "container app exited 1"),
        ("ecs-task-stopped-exit3.json", "reject", "rejected its input"),
        ("ecs-task-stopped-exit4.json", "park", "did not process its input"),
        ("ecs-task-stopped-failedtostart.json", "retry", "could not start: CannotPullContainer"),
        ("ecs-task-stopped-userinitiated.json", "ignore", "UserInitiated"),
        ("ecs-task-stopped-service.json", "ignore", "service task"),
        ("ecs-task-stopped-no-exitcode.json", "retry", "no exit code from app (not a success)"),
    ],
)
def test_sample_events_get_the_contract_decision(sample: str, action: str, reason_part: str):
    # Given a sample ECS event, a first run
    task = parse_task_state_change(sample_event(sample)).detail

    # When the retrier decides
    decision = retry_decision(task, attempt_of(task).number, POLICY, ESSENTIAL)

    # Then the exit-code contract and stop codes decide, with a reason a person can read
    assert decision.action == action
    assert reason_part in decision.reason


@pytest.mark.parametrize(
    ("changes", "action"),
    [
        ({"codes": {"app": 0, "log-router": 0}}, "done"),
        ({"codes": {"app": 0, "log-router": 1}}, "done"),  # log-router is not essential
        ({"codes": {"app": 137, "log-router": 0}}, "retry"),
        ({"stopCode": "SpotInterruption", "codes": {"app": 143}}, "retry"),
        ({"stopCode": "TaskFailedToStart", "codes": {"app": None}}, "retry"),
        ({"stopCode": "TerminationNotice", "codes": {"app": None}}, "retry"),
        ({"stopCode": "ServiceSchedulerInitiated", "codes": {"app": 1}}, "ignore"),
        ({"stopCode": "UserInitiated", "codes": {"app": 1}}, "ignore"),
        ({"stoppedReason": "ResourceInitializationError: unable to pull secrets"}, "retry"),
        ({"stopCode": "SomethingNew", "codes": {"app": None}}, "reject"),
        ({"stopCode": None, "codes": {"app": None}}, "reject"),
        ({"stopCode": "SomethingNew", "codes": {"app": 2}}, "retry"),
        ({"codes": {"app": 3, "log-router": 1}}, "reject"),
        ({"codes": {"app": 1, "log-router": 4}}, "retry"),  # a non-essential 4 does not count
    ],
)
def test_decision_table(changes: dict[str, Any], action: str):
    # Given a stopped first run described by ``changes``
    task = detail(**changes)

    # When the retrier decides, counting the essential container only
    decision = retry_decision(task, 1, POLICY, ESSENTIAL)

    # Then
    assert decision.action == action, decision.reason


def test_unknown_stop_code_without_exit_code_is_retried_when_configured():
    # Given a policy that retries unknown stop codes
    policy = RetryPolicy(max_attempts=3, unknown_stop_code="RETRY")

    # When a task stops with a new stop code and no exit code
    decision = retry_decision(detail(stopCode="SomethingNew", codes={"app": None}), 1, policy)

    # Then it is retried
    assert decision.action == "retry"


def test_counting_all_containers_lets_a_sidecar_failure_retry():
    # Given the app succeeded but the (non-essential) log router exited 1
    task = detail(codes={"app": 0, "log-router": 1})

    # When every container counts
    decision = retry_decision(task, 1, POLICY, counted=None)

    # Then the task is retried because of the log router
    assert (decision.action, decision.container) == ("retry", "log-router")


def test_a_retry_on_the_last_attempt_is_exhausted():
    # Given the third run of a task with a cap of three
    task = detail(codes={"app": 1})

    # When it fails again
    decision = retry_decision(task, 3, POLICY, ESSENTIAL)

    # Then there are no attempts left
    assert decision.action == "exhausted"
    assert "run 3 of 3" in decision.reason


@pytest.mark.parametrize(
    ("rules", "changes", "action"),
    [
        ('[{"onExitCode": "1", "action": "EXIT"}]', {"codes": {"app": 1}}, "reject"),
        ('[{"onExitCode": "13*", "action": "exit"}]', {"codes": {"app": 137}}, "reject"),
        (
            '[{"onStopCode": "SomethingNew", "action": "RETRY"}]',
            {"stopCode": "SomethingNew", "codes": {"app": None}},
            "retry",
        ),
        (
            '[{"onReason": "OutOfMemory*", "action": "EXIT"}]',
            {"codes": {"app": None}},
            "retry",  # the exit-1 sample's container has no reason: the rule does not match
        ),
        (
            '[{"onStatusReason": "Essential*", "onExitCode": "2", "action": "EXIT"}]',
            {"codes": {"app": 1}},
            "retry",  # every condition must match
        ),
    ],
)
def test_rules_decide_before_the_built_in_defaults(
    rules: str, changes: dict[str, Any], action: str
):
    # Given configured rules
    policy = RetryPolicy(max_attempts=3, rules=parse_rules(rules))

    # When a first run stops
    decision = retry_decision(detail(**changes), 1, policy, ESSENTIAL)

    # Then the first matching rule decides, and says so
    assert decision.action == action
    if action == "reject":
        assert "rule 0" in decision.reason


def test_rules_cannot_override_the_exit_code_contract():
    # Given a rule that tries to retry exit 3
    # When the rules are read
    # Then they are refused with the rule and field named
    with pytest.raises(ValueError, match=r"\[0\]: onExitCode 3 is fixed by the exit-code contract"):
        parse_rules('[{"onExitCode": "3", "action": "RETRY"}]')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ('{"action": "RETRY"}', "JSON list"),
        ('[{"action": "MAYBE", "onExitCode": "1"}]', r"\[0\]\.action"),
        ('[{"action": "RETRY"}]', r"\[0\]: give at least one"),
        ('[{"action": "RETRY", "onExitcode": "1"}]', r"\[0\]\.onExitcode: unknown key"),
    ],
)
def test_bad_rules_name_what_is_wrong(text: str, message: str):
    with pytest.raises(ValueError, match=message):
        parse_rules(text)


@pytest.mark.parametrize(
    ("backoff", "retry_number", "random", "seconds"),
    [
        (Backoff(60, 2.0, 3600, "NONE"), 1, 0.5, 60),
        (Backoff(60, 2.0, 3600, "NONE"), 2, 0.5, 120),
        (Backoff(60, 2.0, 3600, "NONE"), 4, 0.5, 480),
        (Backoff(60, 2.0, 300, "NONE"), 4, 0.5, 300),  # capped at the maximum delay
        (Backoff(60, 2.0, 3600, "FULL"), 2, 0.25, 30),  # full jitter: a random part of 120
        (Backoff(60, 2.0, 3600, "FULL"), 2, 0.0, 0),
        (Backoff(0, 2.0, 3600, "NONE"), 5, 0.5, 0),
        (Backoff(60, 10.0, 900, "NONE"), 10_000, 0.5, 900),  # no overflow on huge exponents
    ],
)
def test_backoff_follows_step_functions(
    backoff: Backoff, retry_number: int, random: float, seconds: int
):
    assert backoff.delay_seconds(retry_number, lambda: random) == seconds


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("3f6c1e2a9b7d4c58a0e1f2b3c4d5e6f7", "3f6c1e2a9b7d4c58a0e1f2b3c4d5e6f7-2-1"),
        ("0d6b5c2f-7a9e-4d8e-8fb6-5b2c3d4e6f76", "0d6b5c2f-7a9e-4d8e-8fb6-5b2c3d4e6f76-2-1"),
    ],
)
def test_client_token_names_origin_attempt_and_try(origin: str, expected: str):
    assert Attempt(2, origin).client_token(1) == expected


def test_long_client_tokens_are_hashed_not_cut():
    # Given an origin so long that the attempt would not fit in 64 characters
    origin = "x" * 70

    # When tokens are made for two attempts
    tokens = {Attempt(2, origin).client_token(1), Attempt(3, origin).client_token(1)}

    # Then they fit RunTask's limit and still differ
    assert len(tokens) == 2
    assert all(len(token) <= 64 for token in tokens)


@pytest.mark.parametrize(
    ("started_by", "attempt", "origin"),
    [
        ("events-rule/nightly-report", 1, "3f6c1e2a9b7d4c58a0e1f2b3c4d5e6f7"),
        (None, 1, "3f6c1e2a9b7d4c58a0e1f2b3c4d5e6f7"),
        ("batchwire-retry/3/abc-123", 3, "abc-123"),
        ("batchwire-retry/x/abc", 1, "3f6c1e2a9b7d4c58a0e1f2b3c4d5e6f7"),
    ],
)
def test_attempt_is_read_back_from_started_by(started_by: str | None, attempt: int, origin: str):
    task = detail(startedBy=started_by)
    assert attempt_of(task) == Attempt(attempt, origin)
