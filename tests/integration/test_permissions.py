"""Least privilege, proven: each function runs with only its deployed role's permissions."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from devtools.local_aws import LocalAws, moto_server
from devtools.permissions import (
    SUBMIT_ANSWER_LOST,
    PermissionFailure,
    RoleRun,
    Workloads,
    create_workloads,
    deploy_stack,
    drive_functions,
    format_permissions,
    run_as_role,
)
from devtools.rehearse import DeployedStack, local_slack_secret
from devtools.slack_receiver import SlackReceiver, slack_receiver
from devtools.template import load_template

pytestmark = [
    pytest.mark.integration,
    # moto's CloudFormation skips the types it lacks; the rehearsal reports those itself
    pytest.mark.filterwarnings("ignore:Tried to parse AWS::"),
]


@dataclass
class Proof:
    local: LocalAws
    slack: SlackReceiver
    workloads: Workloads
    stack: DeployedStack
    runs: list[RoleRun]
    #: ECS tasks of the workload's cluster before the runs (moto keeps one state per
    #: process: other modules of this process may have run tasks there).
    tasks_before: frozenset[str] = frozenset()

    def runs_of(self, function: str) -> list[RoleRun]:
        return [run for run in self.runs if run.function == function]


@pytest.fixture(scope="module")
def proof() -> Iterator[Proof]:
    """The stack deployed in a moto server of this module's own (IAM enforcement is switched
    on during each run), every function driven once as its role, the retrier twice."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with moto_server() as local, slack_receiver() as slack:
        local_slack_secret(local, slack.url)
        workloads = create_workloads(local)
        stack = deploy_stack(local, overrides=workloads.overrides)
        ecs, cluster = local.client("ecs"), workloads.ecs.cluster_arn
        before = frozenset(ecs.list_tasks(cluster=cluster)["taskArns"])
        runs = drive_functions(stack, workloads)
        yield Proof(local, slack, workloads, stack, runs, before)


@pytest.mark.parametrize(
    ("function", "runs", "actions"),
    [
        (
            "SubmitterFunction",
            3,
            {"batch:SubmitJob", "dynamodb:PutItem", "batch:ListJobs", "batch:DescribeJobs"},
        ),
        (
            "ChainerFunction",
            3,
            {"batch:SubmitJob", "dynamodb:PutItem", "batch:ListJobs", "batch:DescribeJobs"},
        ),
        ("NotifierFunction", 1, {"secretsmanager:GetSecretValue", "dynamodb:UpdateItem"}),
        ("RetrierFunction", 2, {"ecs:DescribeTaskDefinition", "sqs:SendMessage", "ecs:RunTask"}),
        (
            "DispatcherFunction",
            2,
            {"ecs:ListTasks", "ecs:RunTask", "dynamodb:PutItem", "sqs:ChangeMessageVisibility"},
        ),
        (
            "ScalerFunction",
            1,
            {"sqs:GetQueueAttributes", "ecs:DescribeServices", "ecs:UpdateService"},
        ),
    ],
)
def test_each_function_succeeds_with_only_its_roles_permissions(
    proof: Proof, function: str, runs: int, actions: set[str]
) -> None:
    # Given the function driven with its sample event, signed as its own role
    found = proof.runs_of(function)

    # Then every run succeeded, nothing was denied, and the calls it depends on were recorded
    assert len(found) == runs
    for run in found:
        assert run.failure is None, run.output[-3000:]
        assert run.denied == []
    assert actions <= {action for run in found for action in run.used}


def test_runs_as_role_do_their_work(proof: Proof) -> None:
    # Given the runs of every function as its own role
    submitter, lost, found = proof.runs_of("SubmitterFunction")
    [_, relaunch] = proof.runs_of("RetrierFunction")
    _, deferred = proof.runs_of("DispatcherFunction")

    # Then the jobs are in Batch, the alert reached Slack, each work message got its task
    # and the failed task ran again
    batch = proof.local.client("batch")
    ids = [job["jobId"] for job in submitter.result["jobs"]]
    names = sorted(job["jobName"] for job in batch.describe_jobs(jobs=ids)["jobs"])
    assert names == ["nightly-20261123", "nightly-report-20261123"]
    # and the firing whose first SubmitJob answer was lost failed, and its redelivery found
    # that job instead of submitting it again
    assert str(lost.error).startswith("ReadTimeoutError")
    assert lost.failure is None
    assert {"batch:ListJobs", "batch:DescribeJobs"} <= set(found.used)
    tonight = [job["jobName"] for job in found.result["jobs"]]
    assert tonight == ["nightly-20261124", "nightly-report-20261124"]
    for name in tonight:
        listed = batch.list_jobs(
            jobQueue=proof.workloads.job_queue, filters=[{"name": "JOB_NAME", "values": [name]}]
        )
        assert len(listed["jobSummaryList"]) == 1, name
    # and the work message whose RunTask was throttled waits in the queue
    [failure] = deferred.result["batchItemFailures"]
    assert failure["itemIdentifier"]
    assert len(proof.slack.accepted) == 1
    assert relaunch.result == {"batchItemFailures": []}
    ecs = proof.local.client("ecs")
    cluster = proof.workloads.ecs.cluster_arn
    started = set(ecs.list_tasks(cluster=cluster, startedBy="batchwire-dispatch")["taskArns"])
    assert len(started - proof.tasks_before) == 3  # one per message of sqs-work-messages.json
    everything = set(ecs.list_tasks(cluster=cluster)["taskArns"])
    assert len(everything - proof.tasks_before) == 3 + 2  # and the scheduled run and relaunch


def test_report_names_used_unused_and_unevaluated_conditions_per_role(proof: Proof) -> None:
    # When the runs are reported
    report = format_permissions(proof.runs).splitlines()
    summaries = {line.split(":", 1)[0]: line for line in report if not line.startswith(" ")}

    # Then each role has a line: what it used, what it was granted and never used, and the
    # condition keys the local engine could not check
    assert sorted(summaries) == [
        "ChainerFunctionRole",
        "DispatcherFunctionRole",
        "NotifierFunctionRole",
        "RetrierFunctionRole",
        "ScalerFunctionRole",
        "SubmitterFunctionRole",
        "WatchFunctionRole",
    ]
    # the watch's Scheduler calls are checked against its policies by the tool itself
    watch_lines = [line for line in report if line.startswith("   checked against")]
    assert watch_lines == [
        "   checked against the role's policies by this tool, not by the engine (moto cannot "
        "verify their signatures): scheduler:GetSchedule, scheduler:ListSchedules"
    ]
    assert summaries["SubmitterFunctionRole"].startswith(
        "SubmitterFunctionRole: used batch:DescribeJobs, batch:ListJobs, batch:SubmitJob, "
        "dynamodb:PutItem, dynamodb:UpdateItem"
    )
    # the lookup after a lost SubmitJob answer uses the grants that serve it
    for role in ("SubmitterFunctionRole", "ChainerFunctionRole"):
        unused = summaries[role].split("granted but unused:")[1].split(";")[0]
        assert "batch:ListJobs" not in unused
        assert "batch:DescribeJobs" not in unused
    retrier = summaries["RetrierFunctionRole"]
    assert "sns:Publish" in retrier.split("granted but unused:")[1]
    assert retrier.endswith(
        "conditions not evaluated locally: "
        "aws:RequestedRegion, ecs:CreateAction, ecs:cluster, iam:PassedToService"
    )
    # and the scaler used every action it was granted
    assert "granted but unused: none" in summaries["ScalerFunctionRole"]
    # and what serves Lambda itself or is authorized inside another call is said apart
    assert any("AWSLambdaBasicExecutionRole): logs:CreateLogGroup" in line for line in report)
    assert any("iam:PassRole (in ecs:RunTask)" in line for line in report)
    assert not any("FAILED" in line for line in report)


def _without_submit_job(template: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(template)
    statements = changed["Resources"]["SubmitterFunction"]["Properties"]["Policies"][0]["Statement"]
    statements[:] = [s for s in statements if s.get("Action") != "batch:SubmitJob"]
    return changed


def test_a_role_missing_an_action_the_code_calls_fails_naming_function_and_action(
    proof: Proof,
) -> None:
    # Given a template whose SubmitterFunction policy lost its batch:SubmitJob statement
    stack = deploy_stack(
        proof.local,
        _without_submit_job(load_template()),
        proof.workloads.overrides,
        variant="no-submit",
    )
    event = proof.workloads.schedule_event()
    event["scheduledTime"] = "2026-12-01T02:00:00Z"

    # When the submitter runs as that role
    run = run_as_role(stack, "SubmitterFunction", event)

    # Then it fails, naming the function, its role and the missing action
    assert run.failure is not None
    with pytest.raises(PermissionFailure) as failure:
        run.check()
    message = str(failure.value)
    assert "SubmitterFunction (role SubmitterFunctionRole)" in message
    assert "denied batch:SubmitJob" in message
    assert "not authorized to perform" in message
    # and no job was submitted
    jobs = proof.local.client("batch").list_jobs(
        jobQueue=proof.workloads.job_queue, jobStatus="SUCCEEDED"
    )
    assert "nightly-20261201" not in {job["jobName"] for job in jobs["jobSummaryList"]}
    # and the report says so
    assert "FAILED SubmitterFunction (role SubmitterFunctionRole) was denied batch:SubmitJob" in (
        format_permissions([run])
    )


def test_a_scheduler_action_the_role_lacks_fails_though_moto_cannot_check_it(
    proof: Proof,
) -> None:
    # Given a template whose WatchFunction policy lost scheduler:GetSchedule
    changed = copy.deepcopy(load_template())
    policies = changed["Resources"]["WatchFunction"]["Properties"]["Policies"]
    statements = policies[0]["Statement"]
    statements[:] = [s for s in statements if s.get("Action") != "scheduler:GetSchedule"]
    stack = deploy_stack(proof.local, changed, proof.workloads.overrides, variant="no-get")
    from devtools.permissions import missed_firing_tick

    # When the watch runs as that role with a schedule to read
    run = run_as_role(stack, "WatchFunction", missed_firing_tick(stack, proof.workloads))

    # Then it fails naming the function, its role and the action, checked by the tool
    assert run.failure == (
        "WatchFunction (role WatchFunctionRole) called scheduler:GetSchedule, which its "
        "policies do not grant (checked by this tool: moto cannot verify these signatures); "
        "grant it in the function's Policies"
    )


@pytest.mark.parametrize("action", ["batch:ListJobs", "batch:DescribeJobs"])
def test_a_role_missing_a_grant_of_the_lookup_after_a_lost_answer_fails_naming_it(
    proof: Proof, action: str
) -> None:
    # Given a template whose SubmitterFunction policy lost one action of the lookup that
    # finds a job whose SubmitJob answer was lost
    changed = copy.deepcopy(load_template())
    statements = changed["Resources"]["SubmitterFunction"]["Properties"]["Policies"][0]["Statement"]
    for statement in statements:
        actions = statement.get("Action")
        if isinstance(actions, list) and action in actions:
            statement["Action"] = [other for other in actions if other != action]
    variant = f"no-{action.split(':')[1].lower()}"
    stack = deploy_stack(proof.local, changed, proof.workloads.overrides, variant=variant)
    event = proof.workloads.schedule_event()
    event["scheduledTime"] = f"2026-12-0{2 if action.endswith('ListJobs') else 3}T02:00:00Z"

    # When a firing's SubmitJob answer is lost, and the redelivery looks for the job
    lost = run_as_role(stack, "SubmitterFunction", event, fail_once=SUBMIT_ANSWER_LOST)
    redelivered = run_as_role(stack, "SubmitterFunction", event)

    # Then the delivery whose answer was lost failed as expected, and the redelivery fails
    # naming the function, its role and the action the lookup lacks
    assert lost.failure is None
    assert redelivered.failure is not None
    assert f"SubmitterFunction (role SubmitterFunctionRole) was denied {action}" in (
        redelivered.failure
    )
    assert f"FAILED SubmitterFunction (role SubmitterFunctionRole) was denied {action}" in (
        format_permissions([lost, redelivered])
    )
