"""Job request validation: bad requests are refused, naming the field, before any AWS call."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
from botocore.stub import Stubber

from batchwire.errors import RequestError
from batchwire.schedule import submit_scheduled_jobs

EVENTS = Path(__file__).resolve().parents[2] / "events"
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
T = TypeVar("T")


class RecordingStore:
    """Runs actions directly and remembers identities; any use means an AWS call was made."""

    def __init__(self) -> None:
        self.identities: list[str] = []

    def run_once(self, identity: str, action: Callable[[], T]) -> T:
        self.identities.append(identity)
        return action()


def blueprint(**changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = json.loads((EVENTS / "cron-constant.json").read_text())
    request.update(changes)
    return request


def refuse(event: Any) -> RequestError:
    """Submit through a Batch client that fails on any call; return the refusal."""
    batch = boto3.client("batch", region_name="us-east-1")
    store = RecordingStore()
    with Stubber(batch) as stubber, pytest.raises(RequestError) as refused:
        submit_scheduled_jobs(event, request_id="req", now=NOW, batch=batch, once=store)
    stubber.assert_no_pending_responses()
    assert store.identities == []
    return refused.value


def test_blueprint_integer_environment_value_is_refused_naming_the_field() -> None:
    # Given the old blueprint's override with an integer value
    event = {
        "jobName": "x-job",
        "jobQueue": "feeds",
        "jobDefinition": "feedstream-Broadbean",
        "containerOverrides": {"environment": [{"name": "PARALLELISM", "value": 15}]},
    }

    # When it fires, Then it is refused naming the field, with no AWS call
    error = refuse(event)
    assert error.problems == [
        "containerOverrides.environment[0].value: Expected str, got int (got 15 (int))"
    ]
    assert "containerOverrides.environment[0].value" in str(error)


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"parameters": {"feed": 7}}, "parameters.feed", "Expected str, got int (got 7 (int))"),
        (
            {"containerOverrides": {"environment": [{"name": "AWS_BATCH_X", "value": "1"}]}},
            "containerOverrides.environment[0]",
            "name 'AWS_BATCH_X': names starting with AWS_BATCH are reserved by AWS Batch",
        ),
        (
            {"containerOverrides": {"command": ["echo", "x" * 9000]}},
            "containerOverrides",
            "over Batch's limit of 8,192",
        ),
        ({"retryStrategy": {"attempts": 11}}, "retryStrategy.attempts", "Expected int <= 10"),
        ({"retryStrategy": {"attempts": 0}}, "retryStrategy.attempts", "Expected int >= 1"),
        (
            {"retryStrategy": {"evaluateOnExit": [{"onExitCode": "1", "action": "EXIT"}] * 6}},
            "retryStrategy.evaluateOnExit",
            "Expected array of length <= 5",
        ),
        (
            {"retryStrategy": {"evaluateOnExit": [{"onExitCode": "1", "action": "STOP"}]}},
            "retryStrategy.evaluateOnExit[0].action",
            "Expected str matching regex '(?i)^(RETRY|EXIT)$' (got 'STOP')",
        ),
        ({"dependsOn": [{"jobId": "j"}] * 21}, "dependsOn", "Expected array of length <= 20"),
        (
            {"dependsOn": [{"type": "SEQUENTIAL"}]},
            "dependsOn[0]",
            "exactly one of jobId or jobName",
        ),
        ({"arrayProperties": {"size": 1}}, "arrayProperties.size", "Expected int >= 2"),
        ({"arrayProperties": {"size": 10001}}, "arrayProperties.size", "Expected int <= 10000"),
        (
            {"timeout": {"attemptDurationSeconds": 59}},
            "timeout.attemptDurationSeconds",
            "Expected int >= 60",
        ),
        ({"tags": {f"k{n}": "v" for n in range(51)}}, "tags", "Expected object of length <= 50"),
        (
            {"tags": {"aws:owner": "me"}},
            "(request)",
            "tag key 'aws:owner': the aws: prefix is reserved",
        ),
        ({"propagateTags": "yes"}, "propagateTags", "Expected bool | null, got str (got 'yes')"),
        (
            {"schedulingPriorityOverride": 10000},
            "schedulingPriorityOverride",
            "Expected int <= 9999",
        ),
        ({"jobQueu": "feeds"}, "jobQueu", "unknown key"),
        ({"containerOverrides": {"memory": 512}}, "containerOverrides.memory", "unknown key"),
        ({"jobName": "nightly {scheduled_time:%Y%m%d}"}, "jobName", "does not match"),
        ({"jobName": "n-{when}"}, "jobName", "unknown template field"),
        ({"jobName": "a" * 129}, "jobName", "does not match"),
        ({"jobDefinition": ""}, "jobDefinition", "Expected str of length >= 1 (got '')"),
        ({"dependsOn": [{"jobName": "later"}]}, "dependsOn[0].jobName", "not an earlier job"),
        ({"schedule": "arn:aws:scheduler:x"}, "scheduledTime", "required with schedule"),
    ],
)
def test_invalid_field_is_refused_before_any_aws_call(
    changes: dict[str, Any], field: str, words: str
) -> None:
    # Given the blueprint request with one field made invalid
    event = blueprint(**changes)

    # When it fires, Then the refusal names that field and says what is wrong
    error = refuse(event)
    assert any(
        problem.startswith(f"{field}:") and words in problem for problem in error.problems
    ), error.problems


def test_missing_required_field_is_named() -> None:
    # Given a request with neither queue nor definition
    error = refuse({"jobName": "x"})

    # Then the first missing field is named (a job's first problem is reported)
    assert error.problems == ["jobQueue: required, not given"]


def test_missing_job_definition_is_named() -> None:
    # Given a request with a queue but no definition
    error = refuse({"jobName": "x", "jobQueue": "feeds"})

    # Then the definition is named
    assert error.problems == ["jobDefinition: required, not given"]


def test_request_over_30_kib_is_refused() -> None:
    # Given parameters that push the SubmitJob request past 30 KiB
    event = blueprint(parameters={f"p{n}": "v" * 1000 for n in range(32)})

    # When it fires, Then it is refused with the size
    error = refuse(event)
    assert any("over the 30 KiB limit" in problem for problem in error.problems)


def test_errors_in_a_list_of_jobs_are_prefixed_with_the_job_index() -> None:
    # Given a list whose second job has an integer parameter
    good = blueprint()
    bad = blueprint(jobName="second", parameters={"n": 1})
    error = refuse({"jobs": [good, bad]})

    # Then the path names the second job
    assert error.problems == ["jobs[1].parameters.n: Expected str, got int (got 1 (int))"]


def test_every_job_of_a_list_is_checked() -> None:
    # Given a list whose first and third jobs each have a problem
    first = blueprint(jobQueue="")
    third = blueprint(jobName="third", retryStrategy={"attempts": 0})
    error = refuse({"jobs": [first, blueprint(jobName="second"), third]})

    # Then the problem of each is named, with its job index
    assert error.problems == [
        "jobs[0].jobQueue: Expected str of length >= 1 (got '')",
        "jobs[2].retryStrategy.attempts: Expected int >= 1 (got 0 (int))",
    ]


def test_event_that_is_not_an_object_is_refused() -> None:
    error = refuse(["not", "a", "request"])
    assert error.summary == "job request must be a JSON object"


def test_empty_job_list_is_refused() -> None:
    error = refuse({"jobs": []})
    assert error.problems[0].startswith("jobs:")
