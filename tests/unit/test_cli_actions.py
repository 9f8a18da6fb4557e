"""batchwire pause / resume / run-now / dlq redrive against a stack in a moto server.

moto's Lambda cannot run our functions without Docker, so the tests replace the command's
one invoke seam (``batchwire_cli.invoker.invoke_function``) with the Docker-free path of
``make invoke``: ``python -m devtools.invoke`` runs the deployed handler with its deployed
environment against the same moto server. Only the transport is replaced, never our logic.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from batchwire_cli import invoker
from batchwire_cli.app import run
from batchwire_cli.invoker import Invocation
from batchwire_cli.schedule_actions import run_now
from batchwire_cli.stack import LOCAL_STATE_VARIABLE, Target, read_stack, resolve_target
from devtools.local_aws import ACCOUNT_ID, REGION, LocalAws, moto_server

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS::")

ROOT = Path(__file__).resolve().parents[2]
ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/scheduler"


@dataclass
class Deployed:
    local: LocalAws
    name: str
    group: str
    ids: dict[str, str]
    state: Path
    submitter_arn: str
    job_queue: str
    job_definition: str


@dataclass
class InProcessLambda:
    """Runs the function an invoke names as ``make invoke`` does, and records each call."""

    deployed: Deployed
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(
        self, target: Target, function: str, payload: Any, asynchronous: bool
    ) -> Invocation:
        name = invoker.function_name(function)
        [logical_id] = [k for k, v in self.deployed.ids.items() if v == name]
        event = self.deployed.state.parent / f"event-{uuid.uuid4().hex}.json"
        event.write_text(json.dumps(payload))
        stack = self.deployed.name
        done = subprocess.run(
            [sys.executable, "-m", "devtools.invoke", logical_id, str(event), "--stack", stack],
            env={**os.environ, **self.deployed.local.environ},
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
            timeout=120,
        )
        self.calls.append({"function": logical_id, "event": payload, "async": asynchronous})
        if done.returncode != 0:
            error = json.loads(done.stderr.strip().splitlines()[-1])
            return Invocation(200, error, error["errorMessage"])
        return Invocation(202 if asynchronous else 200, json.loads(done.stdout))


def _add_output(stack_name: str, key: str, value: str) -> None:
    # moto's CloudFormation makes no AWS::Scheduler::ScheduleGroup, so no ScheduleGroupName
    from moto.cloudformation.models import cloudformation_backends
    from moto.cloudformation.parsing import Output

    backend = cloudformation_backends[ACCOUNT_ID][REGION]
    [stack] = [s for s in backend.stacks.values() if s.name == stack_name]
    stack.output_map._parsed_outputs[key] = Output(key, value, "added by the test")
    stack.output_map._output_json_map[key] = {"Value": value}


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """The stack with ExampleWorkload=on, its group, and two schedules made as CFN would."""
    from devtools.local_stack import deploy_local_stack
    from devtools.rehearse import example_network

    name = f"cli-act-{uuid.uuid4().hex[:8]}"  # moto keeps one state per process
    with moto_server() as local:
        stack = deploy_local_stack(local, {"ExampleWorkload": "on", **example_network(local)}, name)
        ids = stack.physical_ids
        scheduler = local.client("scheduler")
        outputs = local.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
        group = {o["OutputKey"]: o["OutputValue"] for o in outputs.get("Outputs", [])}.get(
            "ScheduleGroupName", ""
        )
        if not group:  # an engine that does not hold the stack's group: made as CFN would
            group = f"{name}-ScheduleGroup"
            scheduler.create_schedule_group(Name=group)
            _add_output(name, "ScheduleGroupName", group)
        submitter = local.client("lambda").get_function(FunctionName=ids["SubmitterFunction"])
        submitter_arn = submitter["Configuration"]["FunctionArn"]
        job_definition = f"{name}-example-import"
        scheduler.create_schedule(
            Name=f"{name}-Nightly",
            GroupName=group,
            ScheduleExpression="cron(0 2 * * ? *)",
            ScheduleExpressionTimezone="Europe/Berlin",
            Description="the nightly import",
            StartDate=datetime.now(UTC).replace(microsecond=0) + timedelta(days=1),
            FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
            Target={
                "Arn": submitter_arn,
                "RoleArn": ROLE,
                "Input": json.dumps(
                    {
                        "schedule": "<aws.scheduler.schedule-arn>",
                        "scheduledTime": "<aws.scheduler.scheduled-time>",
                        "jobs": [
                            {
                                "jobName": "import-{scheduled_time:%Y%m%d%H%M%S}",
                                "jobQueue": ids["ExampleJobQueue"],
                                "jobDefinition": job_definition,
                            }
                        ],
                    }
                ),
                "RetryPolicy": {"MaximumRetryAttempts": 5, "MaximumEventAgeInSeconds": 3600},
            },
        )
        scheduler.create_schedule(
            Name=f"{name}-Task",
            GroupName=group,
            ScheduleExpression="cron(0 3 * * ? *)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={
                "Arn": local.client("ecs").describe_clusters(clusters=[ids["ExampleCluster"]])[
                    "clusters"
                ][0]["clusterArn"],
                "RoleArn": ROLE,
                "EcsParameters": {"TaskDefinitionArn": ids["ExampleTaskDefinition"]},
            },
        )
        scheduler.create_schedule(
            Name=f"{name}-Invalid",
            GroupName=group,
            ScheduleExpression="rate(1 day)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": submitter_arn, "RoleArn": ROLE, "Input": json.dumps({"jobs": []})},
        )
        state = tmp_path_factory.mktemp("state") / "local-stack.json"
        state.write_text(json.dumps({"endpoint": local.endpoint_url, "stack": name}))
        yield Deployed(
            local, name, group, ids, state, submitter_arn, ids["ExampleJobQueue"], job_definition
        )


@pytest.fixture
def on_local_stack(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> Deployed:
    monkeypatch.setenv(LOCAL_STATE_VARIABLE, str(deployed.state))
    return deployed


@pytest.fixture
def lambda_here(on_local_stack: Deployed, monkeypatch: pytest.MonkeyPatch) -> InProcessLambda:
    fake = InProcessLambda(on_local_stack)
    monkeypatch.setattr(invoker, "invoke_function", fake)
    return fake


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    assert run([*argv, "--json"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :])  # after what moto printed on stdout, if any


def last_line(err: str) -> str:
    """The command's one line (moto's server thread logs to the same stderr before it)."""
    line = err.strip().splitlines()[-1]
    assert line.startswith("batchwire: ")
    return line


def submitted_jobs(deployed: Deployed) -> dict[str, str]:
    """Every job of the example queue, id -> name, whatever its status."""
    batch = deployed.local.client("batch")
    jobs: dict[str, str] = {}
    for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"):
        for job in batch.list_jobs(jobQueue=deployed.job_queue, jobStatus=status)["jobSummaryList"]:
            jobs[job["jobId"]] = job["jobName"]
    return jobs


def queue_messages(deployed: Deployed, logical_id: str) -> list[dict[str, Any]]:
    sqs = deployed.local.client("sqs")
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(3):
        for message in sqs.receive_message(
            QueueUrl=deployed.ids[logical_id],
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
            MessageAttributeNames=["All"],
        ).get("Messages", []):
            seen[message["MessageId"]] = message
    return list(seen.values())


def empty(deployed: Deployed, *logical_ids: str) -> None:
    sqs = deployed.local.client("sqs")
    for logical_id in logical_ids:
        url = deployed.ids[logical_id]
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            for message in batch:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


# ------------------------------------------------------------------ pause / resume


def test_pause_then_resume_a_schedule_keeps_every_other_field(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an enabled schedule with a time zone, window, start date and retry policy
    scheduler = on_local_stack.local.client("scheduler")
    name = f"{on_local_stack.name}-Nightly"
    original = scheduler.get_schedule(Name=name, GroupName=on_local_stack.group)

    # When it is paused, then resumed
    paused = run_json(["pause", name], capsys)
    while_paused = scheduler.get_schedule(Name=name, GroupName=on_local_stack.group)
    resumed = run_json(["resume", name], capsys)

    # Then its state went DISABLED then ENABLED, and nothing else changed
    assert (paused["before"], paused["after"], paused["changed"]) == ("ENABLED", "DISABLED", True)
    assert while_paused["State"] == "DISABLED"
    assert (resumed["before"], resumed["after"]) == ("DISABLED", "ENABLED")
    after = scheduler.get_schedule(Name=name, GroupName=on_local_stack.group)
    volatile = {"ResponseMetadata", "LastModificationDate", "State"}
    assert {k: v for k, v in after.items() if k not in volatile} == {
        k: v for k, v in original.items() if k not in volatile
    }
    assert after["State"] == "ENABLED"


def test_pausing_a_paused_schedule_says_so(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"{on_local_stack.name}-Task"
    run_json(["pause", name], capsys)

    assert run(["pause", name]) == 0

    assert "already DISABLED, left as it is" in capsys.readouterr().out
    run_json(["resume", name], capsys)


def test_pause_then_resume_a_rule_by_logical_id(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    events = on_local_stack.local.client("events")
    rule_name = on_local_stack.ids["ExampleCronRule"].rpartition("|")[2]

    assert run(["pause", "ExampleCronRule"]) == 0
    assert "rule ExampleCronRule: ENABLED -> DISABLED" in capsys.readouterr().out
    assert events.describe_rule(Name=rule_name)["State"] == "DISABLED"

    resumed = run_json(["resume", "ExampleCronRule"], capsys)
    assert (resumed["kind"], resumed["before"], resumed["after"]) == ("rule", "DISABLED", "ENABLED")
    assert events.describe_rule(Name=rule_name)["State"] == "ENABLED"


def test_a_schedule_may_be_named_by_its_sam_event(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    # NightlySchedule, as template.yaml names the event of SubmitterFunction
    paused = run_json(["pause", "NightlySchedule"], capsys)
    assert paused["name"].endswith("SubmitterFunctionNightlySchedule")
    assert paused["after"] == "DISABLED"
    # a name that ends two of them is refused, naming both
    assert run(["pause", "Schedule"]) == 1
    err = last_line(capsys.readouterr().err)
    assert "is ambiguous" in err


@pytest.mark.parametrize("command", ["pause", "resume", "run-now"])
def test_an_unknown_schedule_is_named_with_the_known_ones(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    assert run([command, "Nightlyy"]) == 1

    err = last_line(capsys.readouterr().err)
    assert "no schedule 'Nightlyy'" in err
    assert f"{on_local_stack.name}-Nightly" in err
    assert "ExampleCronRule" in err


# ------------------------------------------------------------------ run-now


def test_run_now_twice_submits_two_firings(
    on_local_stack: Deployed, lambda_here: InProcessLambda
) -> None:
    # Given the nightly schedule, whose firings the submitter knows by ARN + scheduled time
    stack = read_stack(resolve_target(None))
    before = submitted_jobs(on_local_stack)

    # When it is run now twice (a second apart)
    first = run_now(
        stack, f"{on_local_stack.name}-Nightly", now=datetime(2026, 2, 1, 9, 0, 0, tzinfo=UTC)
    )
    second = run_now(
        stack, f"{on_local_stack.name}-Nightly", now=datetime(2026, 2, 1, 9, 0, 1, tzinfo=UTC)
    )

    # Then the submitter ran once per call, and each call submitted its own firing's job
    assert len(lambda_here.calls) == 2
    results = [first["invocations"][0]["result"], second["invocations"][0]["result"]]
    assert [r["submittedNow"] for r in results] == [1, 1]
    assert results[0]["firing"] != results[1]["firing"]
    assert results[0]["firing"].endswith("@2026-02-01T09:00:00+00:00")
    new = set(submitted_jobs(on_local_stack)) - set(before)
    assert sorted(submitted_jobs(on_local_stack)[j] for j in new) == [
        "import-20260201090000",
        "import-20260201090001",
    ]
    # the schedule ARN is kept as it is: Scheduler's own firings and these never collide
    event = lambda_here.calls[0]["event"]
    assert event["schedule"].endswith(
        f"schedule/{on_local_stack.group}/{on_local_stack.name}-Nightly"
    )
    assert event["scheduledTime"] == "2026-02-01T09:00:00Z"


def test_run_now_of_a_constant_rule_is_a_new_firing_each_time(
    on_local_stack: Deployed, lambda_here: InProcessLambda, capsys: pytest.CaptureFixture[str]
) -> None:
    firings = [
        run_json(["run-now", "ExampleCronRule"], capsys)["invocations"][0]["result"]
        for _ in range(2)
    ]

    assert [f["submittedNow"] for f in firings] == [1, 1]
    assert firings[0]["firing"] != firings[1]["firing"]  # Lambda's request id, new each call
    assert [call["event"]["jobName"] for call in lambda_here.calls] == ["example-cron"] * 2


def test_run_now_prints_the_submitted_jobs(
    on_local_stack: Deployed, lambda_here: InProcessLambda, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["run-now", "ExampleCronRule"]) == 0

    out = capsys.readouterr().out
    assert "ExampleCronRule fired at " in out
    assert "1 job(s) submitted now" in out
    assert "  example-cron " in out


def test_run_now_dry_run_invokes_nothing(
    on_local_stack: Deployed, lambda_here: InProcessLambda, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = run_json(["run-now", f"{on_local_stack.name}-Nightly", "--dry-run"], capsys)

    assert lambda_here.calls == []
    [invocation] = shown["invocations"]
    assert invocation["function"] == on_local_stack.submitter_arn
    assert invocation["event"]["jobs"][0]["jobDefinition"] == on_local_stack.job_definition


def test_run_now_refuses_an_ecs_task_schedule(
    on_local_stack: Deployed, lambda_here: InProcessLambda, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["run-now", f"{on_local_stack.name}-Task"]) == 1

    err = last_line(capsys.readouterr().err)
    assert "starts an ECS task" in err
    assert "aws ecs run-task" in err
    assert lambda_here.calls == []


def test_run_now_reports_a_function_error(
    on_local_stack: Deployed, lambda_here: InProcessLambda, capsys: pytest.CaptureFixture[str]
) -> None:
    # the submitter refuses an empty job list
    assert run(["run-now", f"{on_local_stack.name}-Invalid"]) == 1

    err = last_line(capsys.readouterr().err)
    assert err.startswith(f"batchwire: run-now {on_local_stack.name}-Invalid: ")
    assert on_local_stack.ids["SubmitterFunction"] in err


# ------------------------------------------------------------------ dlq redrive


def test_redrive_chain_moves_messages_back_with_their_attributes(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two messages the chainer failed on, in the chain failure queue
    empty(on_local_stack, "ChainDeadLetterQueue", "ChainQueue")
    sqs = on_local_stack.local.client("sqs")
    for number in range(2):
        sqs.send_message(
            QueueUrl=on_local_stack.ids["ChainDeadLetterQueue"],
            MessageBody=json.dumps({"n": number}),
            MessageAttributes={"origin": {"DataType": "String", "StringValue": f"job-{number}"}},
        )

    # When they are redriven
    moved = run_json(["dlq", "redrive", "chain"], capsys)

    # Then both are back in ChainQueue with their attributes, and the failure queue is empty
    assert moved["method"] == "messages"  # moto has no message move tasks
    assert [(m["destination"], m["moved"]) for m in moved["messages"]] == [("ChainQueue", True)] * 2
    back = queue_messages(on_local_stack, "ChainQueue")
    assert sorted(
        (json.loads(m["Body"])["n"], m["MessageAttributes"]["origin"]["StringValue"]) for m in back
    ) == [(0, "job-0"), (1, "job-1")]
    assert queue_messages(on_local_stack, "ChainDeadLetterQueue") == []
    empty(on_local_stack, "ChainQueue")


def test_redrive_starts_an_sqs_message_move_task_where_sqs_offers_one(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a message in the chain failure queue, and an SQS that offers message move tasks:
    # moto has none, so its StartMessageMoveTask is answered here as SQS documents it
    empty(on_local_stack, "ChainDeadLetterQueue", "ChainQueue")
    sqs = on_local_stack.local.client("sqs")
    sqs.send_message(QueueUrl=on_local_stack.ids["ChainDeadLetterQueue"], MessageBody="{}")
    asked: list[dict[str, Any]] = []
    made_by = Target.client

    def client(target: Target, service: str) -> Any:
        made = made_by(target, service)
        if service == "sqs":
            events = made.meta.events
            events.register(
                "before-parameter-build.sqs.StartMessageMoveTask",
                lambda params, **_: asked.append(dict(params)),
            )
            events.register(
                "before-call.sqs.StartMessageMoveTask",
                lambda **_: (AWSResponse("", 200, HTTPHeaders(), None), {"TaskHandle": "task-1"}),
            )
        return made

    monkeypatch.setattr(Target, "client", client)

    # When the queue is redriven
    moved = run_json(["dlq", "redrive", "chain"], capsys)

    # Then SQS is asked to move the failure queue's messages back to ChainQueue itself
    def arn(logical_id: str) -> str:
        url = on_local_stack.ids[logical_id]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])

    assert asked == [
        {"SourceArn": arn("ChainDeadLetterQueue"), "DestinationArn": arn("ChainQueue")}
    ]
    assert (moved["method"], moved["destination"]) == ("move-task", "ChainQueue")
    assert (moved["task_handle"], moved["approximate_messages"]) == ("task-1", 1)
    empty(on_local_stack, "ChainDeadLetterQueue")


def test_redrive_dry_run_lists_and_moves_nothing(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    empty(on_local_stack, "ChainDeadLetterQueue", "ChainQueue")
    sqs = on_local_stack.local.client("sqs")
    sent = sqs.send_message(QueueUrl=on_local_stack.ids["ChainDeadLetterQueue"], MessageBody="{}")

    assert run(["dlq", "redrive", "ChainDeadLetterQueue", "--dry-run"]) == 0

    out = capsys.readouterr().out
    assert f"would move {sent['MessageId']} -> ChainQueue" in out
    assert "nothing moved (--dry-run)" in out
    assert len(queue_messages(on_local_stack, "ChainDeadLetterQueue")) == 1
    assert queue_messages(on_local_stack, "ChainQueue") == []
    empty(on_local_stack, "ChainDeadLetterQueue")


def test_redrive_failed_invocations_invokes_the_function_with_its_payload(
    on_local_stack: Deployed, lambda_here: InProcessLambda, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an on-failure record of the submitter, and a message that is not one
    empty(on_local_stack, "FailedInvocationsQueue")
    payload = {
        "schedule": f"arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule/g/Redriven",
        "scheduledTime": "2026-03-01T02:00:00Z",
        "jobs": [
            {
                "jobName": "redriven-{scheduled_time:%Y%m%d}",
                "jobQueue": on_local_stack.job_queue,
                "jobDefinition": on_local_stack.job_definition,
            }
        ],
    }
    record = {
        "version": "1.0",
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"{on_local_stack.submitter_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": payload,
        "responsePayload": {"errorType": "JobSubmissionError", "errorMessage": "queue DISABLED"},
    }
    sqs = on_local_stack.local.client("sqs")
    url = on_local_stack.ids["FailedInvocationsQueue"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))
    stray = sqs.send_message(QueueUrl=url, MessageBody="a delay-queue message")

    # When the queue is redriven
    assert run(["dlq", "redrive", "failed-invocations", "--json"]) == 1
    moved = json.loads(capsys.readouterr().out)

    # Then the submitter ran once, asynchronously, with the saved payload; the job exists;
    # the record is gone and the stray message stays, reported
    assert lambda_here.calls == [{"function": "SubmitterFunction", "event": payload, "async": True}]
    assert "redriven-20260301" in submitted_jobs(on_local_stack).values()
    by_id = {m["message_id"]: m for m in moved["messages"]}
    assert by_id.pop(stray["MessageId"])["moved"] is False
    [(_, done)] = by_id.items()
    assert done["moved"]
    assert done["destination"] == f"function {on_local_stack.ids['SubmitterFunction']}"
    assert [m["MessageId"] for m in queue_messages(on_local_stack, "FailedInvocationsQueue")] == [
        stray["MessageId"]
    ]
    empty(on_local_stack, "FailedInvocationsQueue")


def test_redrive_scheduler_dead_letters_invokes_their_target_with_the_undelivered_input(
    on_local_stack: Deployed, lambda_here: InProcessLambda, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a firing Scheduler could not deliver to the submitter (the input, with the
    # target in TARGET_ARN), one whose target is not the stack's, and one without a target
    empty(on_local_stack, "SchedulerDeadLetterQueue")
    firing = {
        "schedule": f"arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule/g/Undelivered",
        "scheduledTime": "2026-03-02T02:00:00Z",
        "jobs": [
            {
                "jobName": "undelivered-{scheduled_time:%Y%m%d}",
                "jobQueue": on_local_stack.job_queue,
                "jobDefinition": on_local_stack.job_definition,
            }
        ],
    }

    def target(arn: str) -> dict[str, Any]:
        return {
            "TARGET_ARN": {"DataType": "String", "StringValue": arn},
            "ERROR_CODE": {"DataType": "String", "StringValue": "AWS.Lambda.TooManyRequests"},
        }

    sqs = on_local_stack.local.client("sqs")
    url = on_local_stack.ids["SchedulerDeadLetterQueue"]
    sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps(firing),
        MessageAttributes=target(on_local_stack.submitter_arn),
    )
    foreign = sqs.send_message(
        QueueUrl=url,
        MessageBody="{}",
        MessageAttributes=target(f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:someone-else"),
    )
    unnamed = sqs.send_message(QueueUrl=url, MessageBody="{}")

    # When the queue is redriven, after a dry run
    assert run(["dlq", "redrive", "scheduler", "--dry-run", "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert lambda_here.calls == []
    assert run(["dlq", "redrive", "scheduler", "--json"]) == 1
    moved = json.loads(capsys.readouterr().out)

    # Then the dry run moved nothing; the redrive ran the submitter once, asynchronously,
    # with the undelivered input, and its job exists; the other two stay, each with why
    assert len(planned["messages"]) == 3
    assert lambda_here.calls == [{"function": "SubmitterFunction", "event": firing, "async": True}]
    assert "undelivered-20260302" in submitted_jobs(on_local_stack).values()
    why = {m["message_id"]: m["problem"] for m in moved["messages"] if not m["moved"]}
    assert why == {
        foreign["MessageId"]: f"its target arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:"
        "someone-else is not a function of this stack",
        unnamed["MessageId"]: "no TARGET_ARN message attribute: its target is unknown",
    }
    assert sorted(
        m["MessageId"] for m in queue_messages(on_local_stack, "SchedulerDeadLetterQueue")
    ) == sorted([foreign["MessageId"], unnamed["MessageId"]])
    empty(on_local_stack, "SchedulerDeadLetterQueue")


def test_redrive_refuses_a_queue_it_cannot_replay_faithfully(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["dlq", "redrive", "subscriptions"]) == 1

    err = last_line(capsys.readouterr().err)
    assert "subscriptions is not redriven: " in err


def test_redrive_of_an_unknown_queue_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["dlq", "redrive", "chains"]) == 2

    assert "no failure queue 'chains'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["pause"], ["resume"], ["run-now"], ["dlq", "redrive"]], ids=" ".join
)
def test_every_new_command_has_help_and_json(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run([*argv, "--help"]) == 0

    out = capsys.readouterr().out
    assert "--json" in out
    assert "--stack" in out
