"""ChainerFunction as `make invoke` runs it: a deployed stack, sample events, moto over HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.local_aws import feed_chain_rules, put_chain_rules
from devtools.rehearse import DeployedStack
from tests.integration.invoke import (
    ROOT,
    SKIPPED_TYPES,
    Invocation,
    LocalStack,
    deploy_stack,
    invoke,
)

pytestmark = [pytest.mark.integration, SKIPPED_TYPES]

EVENTS = ROOT / "events"
STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")


@dataclass
class Chainer:
    """A stack whose chain rules submit to a job queue of this module's own."""

    stack: DeployedStack
    queue: str

    def invoke(self, event: Path) -> Invocation:
        return invoke(self.stack, "ChainerFunction", event)

    def job_ids(self) -> set[str]:
        batch = self.stack.local.client("batch")
        return {
            summary["jobId"]
            for status in STATUSES
            for summary in batch.list_jobs(jobQueue=self.queue, jobStatus=status)["jobSummaryList"]
        }


@pytest.fixture(scope="module")
def chainer(local_stack: LocalStack) -> Chainer:
    """The stack deployed with chain rules that submit to a new queue of its own."""
    batch = local_stack.client("batch")
    environment = batch.describe_compute_environments(
        computeEnvironments=["batchwire-feeds-fargate"]
    )["computeEnvironments"][0]["computeEnvironmentArn"]
    queue = f"chain-{uuid.uuid4().hex[:12]}"
    batch.create_job_queue(
        jobQueueName=queue,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
    )
    # its chain rules in SSM, as a user keeps a rule set (ChainRulesParameterName)
    rules = put_chain_rules(
        local_stack.client, feed_chain_rules(queue=queue), f"/batchwire/it/{queue}/chain-rules"
    )
    parameters = {"JobQueueNames": queue, "ChainRulesParameterName": rules}
    return Chainer(deploy_stack(local_stack.local, parameters), queue)


@pytest.fixture
def new_jobs(chainer: Chainer) -> Callable[[], list[dict[str, Any]]]:
    """The jobs submitted to the chainer's queue since this test began (tests share it)."""
    before = chainer.job_ids()

    def jobs() -> list[dict[str, Any]]:
        ids = sorted(chainer.job_ids() - before)
        batch = chainer.stack.local.client("batch")
        found: list[dict[str, Any]] = batch.describe_jobs(jobs=ids)["jobs"] if ids else []
        return found

    return jobs


def sample_with_fresh_ids(name: str, directory: Path) -> tuple[Path, dict[str, Any]]:
    """The sample event with new delivery ids (this module's tests share the stack), as a file."""
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    for record in event.get("Records", []):
        if "Sns" in record:
            record["Sns"]["MessageId"] = str(uuid.uuid4())
        if "messageId" in record:
            record["messageId"] = str(uuid.uuid4())
            if record["body"].startswith("{") and '"Notification"' in record["body"]:
                envelope = json.loads(record["body"])
                envelope["MessageId"] = str(uuid.uuid4())
                record["body"] = json.dumps(envelope)
    if "id" in event:
        event["id"] = str(uuid.uuid4())
    path = directory / name
    path.write_text(json.dumps(event))
    return path, event


def environment_of(job: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in job["container"]["environment"]}


def test_sns_sample_gives_one_job_with_message_and_parallelism(
    chainer: Chainer, new_jobs: Callable[[], list[dict[str, Any]]], tmp_path: Path
) -> None:
    # Given the SNS notification a finished job published
    path, event = sample_with_fresh_ids("sns-job-finished.json", tmp_path)

    # When the chainer is invoked with it
    run = chainer.invoke(path)

    # Then one job holds the SNS Message byte for byte, PARALLELISM "15" and the feed parameter
    assert run.returncode == 0, run.stderr[-2000:]
    [job] = new_jobs()
    environment = environment_of(job)
    assert environment["DOWNLOAD_MESSAGE"] == event["Records"][0]["Sns"]["Message"]
    assert environment["PARALLELISM"] == "15"
    assert job["parameters"] == {"feed": "broadbean"}


def test_same_sns_event_twice_gives_one_job(
    chainer: Chainer, new_jobs: Callable[[], list[dict[str, Any]]], tmp_path: Path
) -> None:
    # Given an SNS notification already chained once
    path, _ = sample_with_fresh_ids("sns-job-finished.json", tmp_path)
    first = chainer.invoke(path)

    # When SNS delivers it again
    second = chainer.invoke(path)

    # Then both deliveries answer with the same job, only the first submitted it, and the
    # queue gained only that one
    assert (first.returncode, second.returncode) == (0, 0), second.stderr[-2000:]
    [first_record] = json.loads(first.stdout)["records"]
    [second_record] = json.loads(second.stdout)["records"]
    assert first_record["jobs"] == second_record["jobs"]
    assert (first_record["submittedNow"], second_record["submittedNow"]) == (1, 0)
    assert len(new_jobs()) == 1


def test_sqs_batch_with_poison_record_chains_the_others(
    chainer: Chainer, new_jobs: Callable[[], list[dict[str, Any]]], tmp_path: Path
) -> None:
    # Given the three-record SQS sample, whose last body is not the JSON the rule maps
    path, event = sample_with_fresh_ids("sqs-chain-batch.json", tmp_path)

    # When the chainer handles the batch
    run = chainer.invoke(path)

    # Then the first two records have jobs and only the third is in batchItemFailures
    assert run.returncode == 0, run.stderr[-2000:]
    poison = event["Records"][2]["messageId"]
    assert json.loads(run.stdout) == {"batchItemFailures": [{"itemIdentifier": poison}]}
    feeds = sorted(job["parameters"]["feed"] for job in new_jobs())
    assert feeds == ["reed", "totaljobs"]


def test_batch_job_succeeded_sample_chains_the_publish_job(
    chainer: Chainer, new_jobs: Callable[[], list[dict[str, Any]]], tmp_path: Path
) -> None:
    # Given the nightly import's SUCCEEDED state change, from the chainer's queue
    path, event = sample_with_fresh_ids("batch-job-succeeded.json", tmp_path)
    event["detail"]["jobQueue"] = event["detail"]["jobQueue"].replace("/feeds", f"/{chainer.queue}")
    path.write_text(json.dumps(event))

    # When EventBridge invokes the chainer with it
    run = chainer.invoke(path)

    # Then the publish job starts at hop 1, knowing which job it follows
    assert run.returncode == 0, run.stderr[-2000:]
    [job] = new_jobs()
    environment = environment_of(job)
    assert job["jobName"] == "nightly-publish-20261123"
    assert environment["UPSTREAM_JOB_ID"] == event["detail"]["jobId"]
    assert environment["BATCHWIRE_CHAIN_HOP"] == "1"
