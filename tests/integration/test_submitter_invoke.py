"""The submitter over real HTTP: `make invoke` on a deployed local stack, events/ samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.local_aws import pointed_at
from tests.integration.invoke import (
    ROOT,
    SKIPPED_TYPES,
    LocalStack,
    invoke,
    invoke_stack,
)

pytestmark = [pytest.mark.integration, SKIPPED_TYPES]
EVENTS = ROOT / "events"


def test_schedule_sample_submits_jobs_once_per_firing(local_stack: LocalStack) -> None:
    # Given the Scheduler sample event and the deployed submitter's environment
    event = EVENTS / "schedule.json"

    # When it is invoked twice, as Scheduler's at-least-once delivery may do
    first = invoke(local_stack.stack, "SubmitterFunction", event)
    second = invoke(local_stack.stack, "SubmitterFunction", event)

    # Then both print the same job ids as JSON on stdout, and Batch holds the jobs once
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert first.result["jobs"] == second.result["jobs"]
    batch = local_stack.client("batch")
    ids = [job["jobId"] for job in first.result["jobs"]]
    described = batch.describe_jobs(jobs=ids)["jobs"]
    assert sorted(job["jobName"] for job in described) == [
        "nightly-20261123",
        "nightly-report-20261123",
    ]
    named = [
        job
        for job in batch.list_jobs(jobQueue="feeds", jobStatus="SUCCEEDED")["jobSummaryList"]
        if job["jobName"] == "nightly-20261123"
    ]
    assert len(named) == 1


def test_cron_sample_submits_lambda_broadbean(local_stack: LocalStack) -> None:
    # When the classic cron sample is invoked
    run = invoke(local_stack.stack, "SubmitterFunction", EVENTS / "cron-constant.json")

    # Then job Lambda-Broadbean is in queue feeds with PARALLELISM as the string "15"
    assert run.returncode == 0, run.stderr
    job_id = run.result["jobs"][0]["jobId"]
    job = local_stack.client("batch").describe_jobs(jobs=[job_id])["jobs"][0]
    assert job["jobName"] == "Lambda-Broadbean"
    assert job["jobQueue"].endswith("job-queue/feeds")
    assert {"name": "PARALLELISM", "value": "15"} in job["container"]["environment"]


def test_invalid_request_exits_non_zero_naming_the_field(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    # Given the old blueprint's integer environment value
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "jobName": "x-job",
                "jobQueue": "feeds",
                "jobDefinition": "feedstream-Broadbean",
                "containerOverrides": {"environment": [{"name": "PARALLELISM", "value": 15}]},
            }
        )
    )

    # When it is invoked
    run = invoke(local_stack.stack, "SubmitterFunction", bad)

    # Then the run fails, stdout stays empty, and the error names the field
    assert run.returncode == 1
    assert run.stdout == ""
    assert "containerOverrides.environment[0].value" in run.stderr
    names = [
        job["jobName"]
        for job in local_stack.client("batch").list_jobs(jobQueue="feeds", jobStatus="SUCCEEDED")[
            "jobSummaryList"
        ]
    ]
    assert "x-job" not in names


def test_stack_gives_the_deployed_physical_table_name(local_stack: LocalStack) -> None:
    # Given the submitter of a deployed stack
    from devtools.invoke import deployed_setup

    stack = local_stack.stack

    # When `make invoke STACK=<name>` reads its setup from the Lambda API
    with pointed_at(local_stack.local):
        setup = deployed_setup("SubmitterFunction", stack.name, shell_env={})

    # Then it runs the deployed handler with the stack's own table, not the logical id
    table = stack.physical_ids["IdempotencyTable"]
    assert setup.handler == "submitter.handler"
    assert setup.environment["IDEMPOTENCY_TABLE"] == table
    assert table != "IdempotencyTable"
    assert setup.environment["POWERTOOLS_SERVICE_NAME"] == "submitter"
    # one metric namespace per stack, so two stacks in one account never mix their counts
    assert setup.environment["POWERTOOLS_METRICS_NAMESPACE"] == f"batchwire/{stack.name}"
    assert setup.function_name == stack.function_name("SubmitterFunction")
    assert setup.timeout == 60


def test_shell_variable_overrides_the_deployed_value(local_stack: LocalStack) -> None:
    # Given a shell that sets the submitter's table to another name
    from devtools.invoke import deployed_setup

    shell = {"IDEMPOTENCY_TABLE": "table-from-the-shell"}

    # When the setup of the deployed submitter is read in that shell
    with pointed_at(local_stack.local):
        setup = deployed_setup("SubmitterFunction", local_stack.stack.name, shell_env=shell)

    # Then the shell's value wins, and the other deployed values stay
    assert setup.environment["IDEMPOTENCY_TABLE"] == "table-from-the-shell"
    assert setup.environment["POWERTOOLS_SERVICE_NAME"] == "submitter"


def test_unknown_stack_exits_non_zero_naming_it(local_stack: LocalStack) -> None:
    # Given a stack name that was never deployed
    missing = "no-such-stack-" + local_stack.stack.name

    # When `make invoke` is given it
    run = invoke_stack(local_stack.local, missing, "SubmitterFunction", EVENTS / "schedule.json")

    # Then it fails with nothing on stdout, naming the stack
    assert run.returncode != 0
    assert run.stdout == ""
    assert f"STACK={missing}: cannot read the stack" in run.stderr


def test_unknown_function_is_named(local_stack: LocalStack) -> None:
    # When a function the stack does not have is invoked
    run = invoke(local_stack.stack, "NoSuchFunction", EVENTS / "schedule.json")

    # Then it fails naming the function and the stack
    assert run.returncode != 0
    assert f"FN=NoSuchFunction: no such function in stack {local_stack.stack.name}" in run.stderr
