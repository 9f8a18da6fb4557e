"""The submitter over real HTTP: `make invoke` path, moto server, events/ samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.local_aws import LocalAws
from tests.integration.invoke import ROOT, invoke

pytestmark = pytest.mark.integration
EVENTS = ROOT / "events"


def test_schedule_sample_submits_jobs_once_per_firing(local_stack: LocalAws) -> None:
    # Given the Scheduler sample event and the template's environment
    event = EVENTS / "schedule.json"

    # When it is invoked twice, as Scheduler's at-least-once delivery may do
    first = invoke(local_stack, "SubmitterFunction", event)
    second = invoke(local_stack, "SubmitterFunction", event)

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


def test_cron_sample_submits_lambda_broadbean(local_stack: LocalAws) -> None:
    # When the classic cron sample is invoked
    run = invoke(local_stack, "SubmitterFunction", EVENTS / "cron-constant.json")

    # Then job Lambda-Broadbean is in queue feeds with PARALLELISM as the string "15"
    assert run.returncode == 0, run.stderr
    job_id = run.result["jobs"][0]["jobId"]
    job = local_stack.client("batch").describe_jobs(jobs=[job_id])["jobs"][0]
    assert job["jobName"] == "Lambda-Broadbean"
    assert job["jobQueue"].endswith("job-queue/feeds")
    assert {"name": "PARALLELISM", "value": "15"} in job["container"]["environment"]


def test_invalid_request_exits_non_zero_naming_the_field(
    local_stack: LocalAws, tmp_path: Path
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
    run = invoke(local_stack, "SubmitterFunction", bad)

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


def test_environment_resolves_like_sam_local_invoke() -> None:
    # Given the submitter in template.yaml
    from devtools.invoke import function_setup

    # When its environment is resolved
    setup = function_setup("SubmitterFunction")

    # Then Refs to resources become logical ids and Globals are merged in
    assert setup.handler == "submitter.handler"
    assert setup.environment["IDEMPOTENCY_TABLE"] == "IdempotencyTable"
    assert setup.environment["POWERTOOLS_SERVICE_NAME"] == "submitter"
    assert setup.environment["POWERTOOLS_METRICS_NAMESPACE"] == "batchwire"
    assert setup.timeout == 60


def test_params_override_parameter_defaults(tmp_path: Path) -> None:
    # Given a template whose function environment refers to a parameter
    from devtools.invoke import function_setup, parse_params

    template = tmp_path / "template.yaml"
    template.write_text(
        """
Transform: AWS::Serverless-2016-10-31
Parameters:
  Window:
    Type: Number
    Default: 300
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.13
      Handler: app.handler
      CodeUri: .
      Environment:
        Variables:
          WINDOW_SECONDS: !Ref Window
          REGION_SEEN: !Ref AWS::Region
"""
    )

    # When it is resolved with and without PARAMS
    default = function_setup("Fn", template=template, shell_env={})
    overridden = function_setup("Fn", parse_params("Window=60"), template=template, shell_env={})

    # Then the parameter default applies unless PARAMS overrides it
    assert default.environment["WINDOW_SECONDS"] == "300"
    assert overridden.environment["WINDOW_SECONDS"] == "60"
    assert default.environment["REGION_SEEN"] == "us-east-1"


def test_unknown_function_is_named(local_stack: LocalAws) -> None:
    run = invoke(local_stack, "NoSuchFunction", EVENTS / "schedule.json")
    assert run.returncode != 0
    assert "FN=NoSuchFunction: no such function" in run.stderr
