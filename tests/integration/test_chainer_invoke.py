"""ChainerFunction as `make invoke` runs it: template environment, sample events, moto over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from devtools.local_aws import LocalAws
from devtools.template import ROOT

pytestmark = pytest.mark.integration

EVENTS = ROOT / "events"
STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")


@pytest.fixture(scope="session")
def compute_environment(local_stack: LocalAws) -> str:
    """The Batch compute environment of the shared local stack."""
    found = local_stack.client("batch").describe_compute_environments(
        computeEnvironments=["batchwire-feeds-fargate"]
    )
    arn: str = found["computeEnvironments"][0]["computeEnvironmentArn"]
    return arn


@pytest.fixture
def job_queue(moto_endpoint: LocalAws, compute_environment: str) -> str:
    """A job queue of this test's own, so tests sharing the moto server count their own jobs."""
    name = f"chain-{uuid.uuid4().hex[:12]}"
    moto_endpoint.client("batch").create_job_queue(
        jobQueueName=name,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": compute_environment}],
    )
    return name


def sample_with_fresh_ids(name: str, directory: Path) -> tuple[Path, dict[str, Any]]:
    """The sample event with new delivery ids (tests share the idempotency table), as a file."""
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


def invoke(local: LocalAws, event: Path, queue: str) -> subprocess.CompletedProcess[str]:
    """Run ``devtools.invoke ChainerFunction <event>`` with the template rules aimed at queue."""
    return subprocess.run(
        [sys.executable, "-m", "devtools.invoke", "ChainerFunction", str(event),
         "--params", f"ScheduleJobQueue={queue}"],
        env={**os.environ, **local.environ, "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}"},
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )  # fmt: skip


def jobs_in(local: LocalAws, queue: str) -> list[dict[str, Any]]:
    batch = local.client("batch")
    ids = [
        summary["jobId"]
        for status in STATUSES
        for summary in batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]
    ]
    return batch.describe_jobs(jobs=ids)["jobs"] if ids else []


def environment_of(job: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in job["container"]["environment"]}


def test_sns_sample_gives_one_job_with_message_and_parallelism(
    moto_endpoint: LocalAws, job_queue: str, tmp_path: Path
) -> None:
    # Given the SNS notification a finished job published
    path, event = sample_with_fresh_ids("sns-job-finished.json", tmp_path)

    # When the chainer is invoked with it
    completed = invoke(moto_endpoint, path, job_queue)

    # Then one job holds the SNS Message byte for byte, PARALLELISM "15" and the feed parameter
    assert completed.returncode == 0, completed.stderr[-2000:]
    [job] = jobs_in(moto_endpoint, job_queue)
    environment = environment_of(job)
    assert environment["DOWNLOAD_MESSAGE"] == event["Records"][0]["Sns"]["Message"]
    assert environment["PARALLELISM"] == "15"
    assert job["parameters"] == {"feed": "broadbean"}


def test_same_sns_event_twice_gives_one_job(
    moto_endpoint: LocalAws, job_queue: str, tmp_path: Path
) -> None:
    # Given an SNS notification already chained once
    path, _ = sample_with_fresh_ids("sns-job-finished.json", tmp_path)
    first = invoke(moto_endpoint, path, job_queue)

    # When SNS delivers it again
    second = invoke(moto_endpoint, path, job_queue)

    # Then both deliveries answer with the same job, and the queue holds only that one
    assert (first.returncode, second.returncode) == (0, 0), second.stderr[-2000:]
    assert json.loads(first.stdout) == json.loads(second.stdout)
    assert len(jobs_in(moto_endpoint, job_queue)) == 1


def test_sqs_batch_with_poison_record_chains_the_others(
    moto_endpoint: LocalAws, job_queue: str, tmp_path: Path
) -> None:
    # Given the three-record SQS sample, whose last body is not the JSON the rule maps
    path, event = sample_with_fresh_ids("sqs-chain-batch.json", tmp_path)

    # When the chainer handles the batch
    completed = invoke(moto_endpoint, path, job_queue)

    # Then the first two records have jobs and only the third is in batchItemFailures
    assert completed.returncode == 0, completed.stderr[-2000:]
    poison = event["Records"][2]["messageId"]
    assert json.loads(completed.stdout) == {"batchItemFailures": [{"itemIdentifier": poison}]}
    feeds = sorted(job["parameters"]["feed"] for job in jobs_in(moto_endpoint, job_queue))
    assert feeds == ["reed", "totaljobs"]


def test_batch_job_succeeded_sample_chains_the_publish_job(
    moto_endpoint: LocalAws, job_queue: str, tmp_path: Path
) -> None:
    # Given the nightly import's SUCCEEDED state change, from this test's queue
    path, event = sample_with_fresh_ids("batch-job-succeeded.json", tmp_path)
    event["detail"]["jobQueue"] = event["detail"]["jobQueue"].replace("/feeds", f"/{job_queue}")
    path.write_text(json.dumps(event))

    # When EventBridge invokes the chainer with it
    completed = invoke(moto_endpoint, path, job_queue)

    # Then the publish job starts at hop 1, knowing which job it follows
    assert completed.returncode == 0, completed.stderr[-2000:]
    [job] = jobs_in(moto_endpoint, job_queue)
    environment = environment_of(job)
    assert job["jobName"] == "nightly-publish-20261123"
    assert environment["UPSTREAM_JOB_ID"] == event["detail"]["jobId"]
    assert environment["BATCHWIRE_CHAIN_HOP"] == "1"
