"""Schedule submitter: what lands in AWS Batch when a schedule or cron rule fires."""

from __future__ import annotations

import copy
import gc
import importlib
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from moto import mock_aws

from batchwire.errors import RequestError
from batchwire.submission import SUBMISSION_TAG, submission_token
from devtools.invoke import LocalContext
from devtools.local_aws import create_batch_workload, regional_client
from tests.emf import metric_totals

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def context() -> LocalContext:
    return LocalContext(
        function_name="SubmitterFunction",
        memory_limit_in_mb=256,
        timeout_seconds=60,
        region="us-east-1",
    )


class Submitter:
    """The submitter module loaded inside moto, with every SubmitJob request it sent."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.sent: list[dict[str, Any]] = []
        module.batch.meta.events.register("provide-client-params.batch.SubmitJob", self._record)
        self.batch: Any = regional_client("batch")

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        self.sent.append(copy.deepcopy(params))

    def fire(self, event: dict[str, Any], request_id: str | None = None) -> dict[str, Any]:
        ctx = context()
        if request_id:
            ctx.aws_request_id = request_id
        result: dict[str, Any] = self.module.handler(event, ctx)
        return result

    def jobs_in_queue(self, queue: str = "feeds") -> list[dict[str, Any]]:
        summaries = self.batch.list_jobs(jobQueue=queue, jobStatus="SUCCEEDED")["jobSummaryList"]
        return list(summaries)

    def describe(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self.batch.describe_jobs(jobs=[job_id])["jobs"][0]
        return job


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "IdempotencyTable")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "SubmitterFunction")
    with mock_aws(config={"batch": {"use_docker": False}}):
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName="IdempotencyTable",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield


def load_submitter() -> Submitter:
    sys.modules.pop("submitter", None)
    return Submitter(importlib.import_module("submitter"))


@pytest.fixture
def submitter(aws: None) -> Submitter:
    create_batch_workload(regional_client)
    return load_submitter()


def test_init_leaves_garbage_collection_on_with_its_objects_frozen(aws: None) -> None:
    # Given a collector that runs, as in a fresh Lambda process
    gc.enable()
    gc.unfreeze()

    # When the handler module initialises (it pauses the collector while it does)
    load_submitter()

    # Then collection runs again, and what init made is frozen out of later collections
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0


def test_blueprint_constant_input_submits_lambda_broadbean_to_feeds(submitter: Submitter) -> None:
    # Given the exact constant input of the classic cron rule
    event = load_event("cron-constant.json")

    # When the rule fires
    result = submitter.fire(event)

    # Then one job named Lambda-Broadbean is in queue feeds with the overrides and parameters
    assert [job["jobName"] for job in result["jobs"]] == ["Lambda-Broadbean"]
    job = submitter.describe(result["jobs"][0]["jobId"])
    assert job["jobQueue"].endswith(":job-queue/feeds")
    assert job["jobDefinition"].endswith(":job-definition/feedstream-Broadbean:1")
    assert {"name": "PARALLELISM", "value": "15"} in job["container"]["environment"]
    assert job["parameters"] == {"feed": "broadbean"}
    chain = result["chainId"]
    assert submitter.sent == [
        {
            "jobName": "Lambda-Broadbean",
            "jobQueue": "feeds",
            "jobDefinition": "feedstream-Broadbean",
            "containerOverrides": {
                "environment": [
                    {"name": "PARALLELISM", "value": "15"},
                    {"name": "BATCHWIRE_CHAIN_ID", "value": chain},
                    {"name": "BATCHWIRE_CHAIN_HOP", "value": "0"},
                ]
            },
            "parameters": {"feed": "broadbean"},
            "tags": {
                "batchwire:chain-id": chain,
                "batchwire:chain-hop": "0",
                # the firing's job #0 can be found again by its submission (batchwire.submission)
                SUBMISSION_TAG: submission_token(f"{result['firing']}#0"),
            },
        }
    ]


def test_scheduler_firing_passes_the_whole_submitjob_surface(submitter: Submitter) -> None:
    # Given a Scheduler firing whose job uses every SubmitJob field batchwire passes through
    event = load_event("schedule.json")
    event["jobs"][0].update(
        {
            "arrayProperties": {"size": 4},
            "schedulingPriorityOverride": 10,
            "shareIdentifier": "feeds",
        }
    )

    # When it fires
    result = submitter.fire(event)
    chain = result["chainId"]

    # Then SubmitJob received exactly those fields, with the name rendered from the scheduled
    # time and the job's place at the start of the firing's chain added
    assert submitter.sent[0] == {
        "jobName": "nightly-20261123",
        "jobQueue": "feeds",
        "jobDefinition": "feedstream-Broadbean",
        "containerOverrides": {
            "command": ["python", "-m", "feedstream", "import", "--since", "Ref::since"],
            "environment": [
                {"name": "PARALLELISM", "value": "15"},
                {"name": "BATCHWIRE_CHAIN_ID", "value": chain},
                {"name": "BATCHWIRE_CHAIN_HOP", "value": "0"},
            ],
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"},
                {"type": "MEMORY", "value": "2048"},
            ],
        },
        "parameters": {"since": "24h"},
        "arrayProperties": {"size": 4},
        "retryStrategy": {"attempts": 2, "evaluateOnExit": [{"onExitCode": "3", "action": "EXIT"}]},
        "timeout": {"attemptDurationSeconds": 3600},
        "tags": {
            "team": "feeds",
            "batchwire:chain-id": chain,
            "batchwire:chain-hop": "0",
            SUBMISSION_TAG: submission_token(f"{result['firing']}#0"),
        },
        "propagateTags": True,
        "schedulingPriorityOverride": 10,
        "shareIdentifier": "feeds",
    }


def test_later_job_depends_on_the_real_id_of_an_earlier_job(submitter: Submitter) -> None:
    # Given a firing of two jobs, the second depending on the first by name
    event = load_event("schedule.json")

    # When it fires
    result = submitter.fire(event)

    # Then Batch holds the report job depending on the import job's id
    first, second = result["jobs"]
    assert second["jobName"] == "nightly-report-20261123"
    assert submitter.describe(second["jobId"])["dependsOn"] == [{"jobId": first["jobId"]}]


def test_same_firing_twice_submits_one_job_set(submitter: Submitter) -> None:
    # Given a firing already handled
    event = load_event("schedule.json")
    first = submitter.fire(event, request_id="delivery-1")

    # When Scheduler delivers the same firing again (a new Lambda request)
    second = submitter.fire(event, request_id="delivery-2")

    # Then no new job was submitted and the second answer names the first jobs
    assert second["jobs"] == first["jobs"]
    assert len(submitter.jobs_in_queue()) == 2
    assert len(submitter.sent) == 2


def test_same_firing_twice_counts_its_jobs_once(
    submitter: Submitter, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a Scheduler firing of two jobs
    event = load_event("schedule.json")

    # When Scheduler delivers it twice (two Lambda requests)
    first = submitter.fire(event, request_id="delivery-1")
    second = submitter.fire(event, request_id="delivery-2")

    # Then JobsSubmitted counts the two jobs once in total; the second delivery is a duplicate
    assert (first["submittedNow"], second["submittedNow"]) == (2, 0)
    totals = metric_totals(capsys.readouterr().out)
    assert totals["JobsSubmitted"] == 2
    assert totals["DuplicatesAbsorbed"] == 2


def test_next_days_firing_is_not_mistaken_for_a_duplicate(submitter: Submitter) -> None:
    # Given tonight's firing handled
    event = load_event("schedule.json")
    submitter.fire(event)

    # When tomorrow's firing of the same schedule and payload arrives
    tomorrow = {**event, "scheduledTime": "2026-11-24T02:00:00Z"}
    result = submitter.fire(tomorrow)

    # Then it submits its own jobs
    assert [job["jobName"] for job in result["jobs"]] == [
        "nightly-20261124",
        "nightly-report-20261124",
    ]
    assert len(submitter.jobs_in_queue()) == 4


def test_constant_input_is_deduplicated_on_the_lambda_request_id(submitter: Submitter) -> None:
    # Given the cron rule's constant input, which carries no firing identity
    event = load_event("cron-constant.json")

    # When Lambda retries the same request, and the next day's rule fires the same payload
    first = submitter.fire(event, request_id="req-1")
    retry = submitter.fire(event, request_id="req-1")
    next_day = submitter.fire(event, request_id="req-2")

    # Then the retry is absorbed and the next day's firing submits again
    assert retry["jobs"] == first["jobs"]
    assert next_day["jobs"][0]["jobId"] != first["jobs"][0]["jobId"]
    assert len(submitter.jobs_in_queue()) == 2


@pytest.fixture
def atomic_dynamodb_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies a conditional write atomically; moto in-process checks the condition
    and writes in two steps, so two threads can both pass the check. One lock around moto's
    writes gives the test DynamoDB's guarantee (the code under test is unchanged)."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.Lock()
    for name in ("put_item", "update_item"):
        original = getattr(DynamoDBBackend, name)

        def atomic(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, atomic)


@pytest.mark.usefixtures("atomic_dynamodb_writes")
def test_concurrent_deliveries_of_one_firing_submit_one_job_set(submitter: Submitter) -> None:
    # Given the same firing delivered twice at the same moment
    event = load_event("cron-constant.json") | {
        "schedule": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/concurrent",
        "scheduledTime": "2026-11-23T02:00:00Z",
    }
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def deliver(request_id: str) -> None:
        start.wait()
        try:
            results.append(submitter.fire(event, request_id=request_id))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=deliver, args=(f"req-{n}",)) for n in range(2)]

    # When both run
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then Batch got one job and both deliveries answer with its id
    assert errors == []
    assert len(submitter.jobs_in_queue()) == 1
    assert results[0]["jobs"] == results[1]["jobs"]


def test_failed_submit_raises_and_the_retry_submits(aws: None) -> None:
    # Given no job queue exists yet
    submitter = load_submitter()
    event = load_event("cron-constant.json")

    # When the rule fires, SubmitJob fails and the error reaches Lambda (which retries)
    with pytest.raises(ClientError):
        submitter.fire(event, request_id="req-1")

    # Then once the queue exists, Lambda's retry of the same request submits the job
    create_batch_workload(regional_client)
    result = submitter.fire(event, request_id="req-1")
    assert len(result["jobs"]) == 1
    assert len(submitter.jobs_in_queue()) == 1


def test_retry_after_partial_failure_submits_only_the_missing_job(submitter: Submitter) -> None:
    # Given a firing whose second job names a queue that does not exist
    event = load_event("schedule.json")
    event["jobs"][1]["jobQueue"] = "reports"
    with pytest.raises(ClientError):
        submitter.fire(event)
    assert len(submitter.sent) == 2

    # When the queue is created and the firing is delivered again
    create_batch_workload(
        regional_client,
        queue="reports",
        definitions=("report-only",),
    )
    submitter.fire(event)

    # Then the first job was not submitted twice
    names = [call["jobName"] for call in submitter.sent]
    assert names == ["nightly-20261123", "nightly-report-20261123", "nightly-report-20261123"]
    assert len(submitter.jobs_in_queue("feeds")) == 1
    assert len(submitter.jobs_in_queue("reports")) == 1


def test_a_job_submitted_by_a_delivery_that_fails_afterwards_is_counted_once(
    submitter: Submitter, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a firing whose second job names a queue that does not exist yet
    event = load_event("schedule.json")
    event["jobs"][1]["jobQueue"] = "reports"

    # When the first delivery submits the first job, then fails on the second
    with pytest.raises(ClientError):
        submitter.fire(event, request_id="delivery-1")
    failed = metric_totals(capsys.readouterr().out)
    # and, the queue made, Scheduler delivers the firing again, then once more
    create_batch_workload(regional_client, queue="reports", definitions=("report-only",))
    submitter.fire(event, request_id="delivery-2")
    submitter.fire(event, request_id="delivery-3")
    later = metric_totals(capsys.readouterr().out)

    # Then the failed delivery counted the job it submitted, and the two jobs count once
    assert failed["JobsSubmitted"] == 1
    assert failed["SubmitFailed"] == 1
    assert failed["JobsSubmitted"] + later["JobsSubmitted"] == 2
    assert later["DuplicatesAbsorbed"] == 1 + 2


def test_a_job_whose_submit_answer_was_lost_is_counted_by_the_delivery_that_finds_it(
    submitter: Submitter, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Batch creating the first job of a firing and its answer lost on the way back
    lost: list[str] = []

    def answer_lost(**_: Any) -> None:
        if not lost:
            lost.append("SubmitJob")
            raise ReadTimeoutError(endpoint_url="https://batch", error="read timeout")

    submitter.module.batch.meta.events.register("after-call.batch.SubmitJob", answer_lost)
    event = load_event("schedule.json")

    # When the delivery fails, and Scheduler delivers the firing again
    with pytest.raises(ReadTimeoutError):
        submitter.fire(event, request_id="delivery-1")
    failed = metric_totals(capsys.readouterr().out)
    result = submitter.fire(event, request_id="delivery-2")
    retried = metric_totals(capsys.readouterr().out)

    # Then the retry found the job by its submission tag instead of submitting it again
    assert len(submitter.jobs_in_queue()) == 2
    assert [call["jobName"] for call in submitter.sent] == [
        "nightly-20261123",
        "nightly-report-20261123",
    ]
    # and counted both jobs, the one it found included: no delivery had counted it
    assert "JobsSubmitted" not in failed
    assert retried["JobsSubmitted"] == 2
    assert result["submittedNow"] == 2


def test_missing_table_setting_names_the_variable(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the function deployed without its table variable
    monkeypatch.delenv("IDEMPOTENCY_TABLE")

    # When it starts, Then the error names the variable
    with pytest.raises(Exception, match="IDEMPOTENCY_TABLE is not set"):
        load_submitter()


def test_a_job_with_no_room_for_the_chain_tags_is_refused_before_any_submission(
    submitter: Submitter,
) -> None:
    # Given a firing whose second job has 49 tags of its own (Batch allows 50 in all)
    event = load_event("schedule.json")
    event["jobs"][1]["tags"] = {f"team-{n}": "feeds" for n in range(49)}

    # When it fires
    with pytest.raises(RequestError) as refused:
        submitter.fire(event)

    # Then nothing was submitted, and the error names the job and the limit
    assert refused.value.problems == [
        "jobs[1].tags: 49 tags; batchwire adds 2 (the chain id and hop) and Batch allows 50, "
        "so a job may have 48 of its own"
    ]
    assert submitter.sent == []
