"""batchwire dlq: the failure queues of a deployed stack, and readable, redacted messages."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from batchwire_cli.app import run
from batchwire_cli.dlq import FAILURE_QUEUES, find_failure_queue, queue_depths, show_queue
from batchwire_cli.output import progress
from batchwire_cli.redact import REDACTED, redact, redact_text
from batchwire_cli.stack import LOCAL_STATE_VARIABLE, read_stack, resolve_target
from devtools.local_aws import LocalAws, moto_server

# moto's CloudFormation skips some types of the template (alarms, schedules...) with a warning
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS::")

ROOT = Path(__file__).resolve().parents[2]
DB_PASSWORD = "hunter2-Very-Secret"
WEBHOOK = "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/abcdefghijklmnopqrstuvwx"

#: What Lambda puts in FailedInvocationsQueue for an asynchronous event it gave up on.
ON_FAILURE_RECORD = {
    "version": "1.0",
    "timestamp": "2026-11-23T02:00:41.512Z",
    "requestContext": {
        "requestId": "5c8f3a52-0d6e-4b36-9d5f-2d0f3e3c1a77",
        "functionArn": (
            "arn:aws:lambda:us-east-1:123456789012:function:bw-SubmitterFunction:$LATEST"
        ),
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    },
    "requestPayload": {
        "schedule": "arn:aws:scheduler:us-east-1:123456789012:schedule/bw/NightlySchedule",
        "scheduledTime": "2026-11-23T02:00:00Z",
        "jobs": [
            {
                "jobName": "nightly-20261123",
                "jobQueue": "feeds",
                "jobDefinition": "feedstream-Broadbean",
                "containerOverrides": {
                    "environment": [
                        {
                            "name": "FEED_DB",
                            "value": f"postgres://feeds:{DB_PASSWORD}@db.internal:5432/feeds",
                        }
                    ]
                },
            }
        ],
    },
    "responseContext": {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    },
    "responsePayload": {
        "errorMessage": "job queue feeds is DISABLED",
        "errorType": "JobSubmissionError",
        "stackTrace": [],
    },
}


def sns_envelope(message: str) -> dict[str, Any]:
    """What SNS redrives to SubscriptionDeadLetterQueue: the whole notification."""
    return {
        "Type": "Notification",
        "MessageId": "7b0f9a6e-91c5-5b8e-a1d2-0c2b8f6c1e44",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:bw-NotificationTopic-1",
        "Subject": "task-retries-exhausted",
        "Message": message,
        "Timestamp": "2026-11-23T03:10:02.118Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+...",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }


@dataclass
class Deployed:
    local: LocalAws
    name: str
    queues: dict[str, str]  # logical id -> URL
    state: Path


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """template.yaml with its defaults in a moto server of its own, and its state file."""
    from devtools.local_stack import deploy_local_stack

    name = f"cli-dlq-{uuid.uuid4().hex[:8]}"  # moto keeps one state per process
    with moto_server() as local:
        stack = deploy_local_stack(local, {}, name)
        queues = {
            q.logical_id: stack.physical_ids[q.logical_id]
            for q in FAILURE_QUEUES
            if q.logical_id in stack.physical_ids
        }
        state = tmp_path_factory.mktemp("state") / "local-stack.json"
        state.write_text(json.dumps({"endpoint": local.endpoint_url, "stack": name}))
        yield Deployed(local, name, queues, state)


@pytest.fixture
def on_local_stack(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> Deployed:
    monkeypatch.setenv(LOCAL_STATE_VARIABLE, str(deployed.state))
    return deployed


def send(deployed: Deployed, logical_id: str, body: str, **attributes: str) -> None:
    deployed.local.client("sqs").send_message(
        QueueUrl=deployed.queues[logical_id],
        MessageBody=body,
        MessageAttributes={
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
        },
    )


def purge(deployed: Deployed) -> None:
    """Empty every failure queue (PurgeQueue is allowed once a minute: delete instead)."""
    sqs = deployed.local.client("sqs")
    for url in deployed.queues.values():
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)
                ],
            )


def depth(deployed: Deployed, logical_id: str) -> int:
    attributes = deployed.local.client("sqs").get_queue_attributes(
        QueueUrl=deployed.queues[logical_id], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    code = run([*argv, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""  # no progress written where stderr is not a terminal
    return json.loads(captured.out)


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, as a shell's is."""

    def isatty(self) -> bool:
        return True


def stderr_terminal(monkeypatch: pytest.MonkeyPatch) -> Terminal:
    """sys.stderr as a terminal of 200 columns that rich draws a status on. Called in the
    test itself: capsys puts its own sys.stderr back when the test starts."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", "200")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    return terminal


# ------------------------------------------------------------------ batchwire dlq


def test_dlq_lists_every_failure_queue_of_the_defaults(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    purge(on_local_stack)

    listed = run_json(["dlq"], capsys)

    # the dispatcher and the example workload are off: their queues are not deployed
    assert {row["queue"] for row in listed["queues"]} == {
        "FailedInvocationsQueue",
        "SchedulerDeadLetterQueue",
        "ChainDeadLetterQueue",
        "RetrierDeadLetterQueue",
        "NotifierRuleDeadLetterQueue",
        "SubscriptionDeadLetterQueue",
    }
    assert all(row["depth"] == 0 and row["oldest_sent"] is None for row in listed["queues"])
    assert listed["stack"] == on_local_stack.name


def test_dlq_puts_failures_first_with_depth_and_oldest_age(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given messages in two queues late in the catalogue and none in the first
    purge(on_local_stack)
    for number in range(3):
        send(on_local_stack, "SubscriptionDeadLetterQueue", json.dumps({"n": number}))
    send(on_local_stack, "RetrierDeadLetterQueue", "{}")

    # When the queues are listed
    rows = run_json(["dlq"], capsys)["queues"]

    # Then the non-empty ones come first, each with its depth and a measured oldest message
    assert [(row["queue"], row["depth"]) for row in rows[:2]] == [
        ("RetrierDeadLetterQueue", 1),
        ("SubscriptionDeadLetterQueue", 3),
    ]
    assert all(row["depth"] == 0 for row in rows[2:])
    for row in rows[:2]:
        assert row["oldest_sent"] is not None
        assert 0 <= row["oldest_age_seconds"] < 120
        assert row["oldest_at_least"] is False  # every message was seen
    # And peeking consumed nothing
    assert depth(on_local_stack, "SubscriptionDeadLetterQueue") == 3


def test_dlq_says_at_least_when_more_are_queued_than_seen(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    purge(on_local_stack)
    for number in range(12):
        send(on_local_stack, "ChainDeadLetterQueue", json.dumps({"n": number}))

    rows = run_json(["dlq"], capsys)["queues"]
    assert rows[0]["queue"] == "ChainDeadLetterQueue"
    assert rows[0]["depth"] == 12
    assert rows[0]["oldest_at_least"] is True

    assert run(["dlq"]) == 0
    table = capsys.readouterr().out
    assert "at least" in table
    assert "12 message(s) in 1 queue(s); read them with: batchwire dlq show chain" in table
    assert depth(on_local_stack, "ChainDeadLetterQueue") == 12


def test_dlq_table_names_what_lands_in_each_queue(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    purge(on_local_stack)
    monkeypatch.setenv("COLUMNS", "200")

    assert run(["dlq"]) == 0

    out = capsys.readouterr().out
    assert (
        f"stack {on_local_stack.name} (the local stack at {on_local_stack.local.endpoint_url})"
        in out
    )
    assert "events a function still failed on after Lambda's retries" in out
    assert "SNS messages not delivered to their subscriber" in out
    assert "every failure queue is empty" in out


# ------------------------------------------------------------------ batchwire dlq show


def test_show_reads_a_lambda_on_failure_record_with_secrets_redacted(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Lambda's record of a schedule firing the submitter failed on, a password inside
    purge(on_local_stack)
    send(on_local_stack, "FailedInvocationsQueue", json.dumps(ON_FAILURE_RECORD))

    # When it is shown as JSON
    shown = run_json(["dlq", "show", "failed-invocations"], capsys)

    # Then the record's parts are named, the event kept, the password gone
    [message] = shown["messages"]
    assert message["kind"] == "lambda-failure"
    assert message["condition"] == "RetriesExhausted"
    assert message["function"].endswith(":function:bw-SubmitterFunction:$LATEST")
    assert message["approximate_invoke_count"] == 3
    assert (message["error_type"], message["error_message"]) == (
        "JobSubmissionError",
        "job queue feeds is DISABLED",
    )
    assert message["request_payload"]["jobs"][0]["jobName"] == "nightly-20261123"
    assert message["receive_count"] >= 1
    assert DB_PASSWORD not in json.dumps(shown)
    env = message["request_payload"]["jobs"][0]["containerOverrides"]["environment"][0]
    assert env["value"] == f"postgres://feeds:{REDACTED}@db.internal:5432/feeds"
    # And the message is still there
    assert depth(on_local_stack, "FailedInvocationsQueue") == 1


def test_show_prints_the_on_failure_record_readably(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    purge(on_local_stack)
    send(on_local_stack, "FailedInvocationsQueue", json.dumps(ON_FAILURE_RECORD))

    assert run(["dlq", "show", "FailedInvocationsQueue"]) == 0

    out = capsys.readouterr().out
    assert "Lambda on-failure record: RetriesExhausted after 3 invocation(s)" in out
    assert "error:     JobSubmissionError: job queue feeds is DISABLED" in out
    assert '"jobName": "nightly-20261123"' in out
    assert f"postgres://feeds:{REDACTED}@db.internal" in out  # printed as written, not markup
    assert DB_PASSWORD not in out


def test_show_unwraps_an_sns_envelope_and_redacts_urls(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a retrier notice SNS could not deliver, holding a webhook and a URL with a password
    purge(on_local_stack)
    notice = {
        "kind": "task-retries-exhausted",
        "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/batch-jobs/0f1e2d3c",
        "reason": f"posting to {WEBHOOK} failed",
        "source": f"https://deploy:{DB_PASSWORD}@git.internal/feeds.git",
    }
    send(
        on_local_stack,
        "SubscriptionDeadLetterQueue",
        json.dumps(sns_envelope(json.dumps(notice))),
        ERROR_URL=f"{WEBHOOK}?x=1",
    )

    shown = run_json(["dlq", "show", "subscriptions", "--max", "5"], capsys)

    [message] = shown["messages"]
    assert message["kind"] == "sns-notification"
    assert message["topic"].endswith(":bw-NotificationTopic-1")
    assert message["subject"] == "task-retries-exhausted"
    assert message["message"]["kind"] == "task-retries-exhausted"  # unwrapped one level
    assert message["message"]["reason"] == f"posting to {REDACTED} failed"
    assert message["message"]["source"] == f"https://deploy:{REDACTED}@git.internal/feeds.git"
    assert message["attributes"] == {"ERROR_URL": f"{REDACTED}?x=1"}
    text = json.dumps(shown)
    assert DB_PASSWORD not in text
    assert "abcdefghijklmnopqrstuvwx" not in text

    assert run(["dlq", "show", "subscriptions"]) == 0
    out = capsys.readouterr().out
    assert "SNS notification from arn:aws:sns:us-east-1:123456789012:bw-NotificationTopic-1" in out
    assert "attribute: ERROR_URL = [REDACTED]?x=1" in out
    assert "abcdefghijklmnopqrstuvwx" not in out


def test_show_max_limits_and_orders_oldest_first(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    purge(on_local_stack)
    for number in range(4):
        send(on_local_stack, "RetrierDeadLetterQueue", json.dumps({"n": number}))

    shown = run_json(["dlq", "show", "retrier", "--max", "2"], capsys)

    assert shown["depth"] == 4
    assert len(shown["messages"]) == 2
    sent = [m["sent"] for m in shown["messages"]]
    assert sent == sorted(sent)
    assert depth(on_local_stack, "RetrierDeadLetterQueue") == 4


def test_show_a_queue_the_stack_does_not_deploy(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["dlq", "show", "work"]) == 1
    err = capsys.readouterr().err
    assert f"queue work (WorkDeadLetterQueue) is not deployed in stack {on_local_stack.name}" in err


def test_show_a_queue_deleted_outside_cloudformation(
    on_local_stack: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the stack's notifier-rule queue deleted by hand (then made again for the others)
    sqs = on_local_stack.local.client("sqs")
    url = on_local_stack.queues["NotifierRuleDeadLetterQueue"]
    sqs.delete_queue(QueueUrl=url)
    try:
        code = run(["dlq", "show", "notifier-rules"])
        listing = run(["dlq"])
    finally:
        sqs.create_queue(QueueName=url.rsplit("/", 1)[-1])

    err = capsys.readouterr().err
    assert code == 1
    assert listing == 1
    assert "queue NotifierRuleDeadLetterQueue of stack" in err
    assert "not found" in err


def test_show_end_to_end_as_a_subprocess(on_local_stack: Deployed) -> None:
    purge(on_local_stack)
    send(on_local_stack, "SchedulerDeadLetterQueue", "not json: " + WEBHOOK)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "cli"), os.environ.get("PYTHONPATH", "")]),
    }

    done = subprocess.run(
        [sys.executable, "-m", "batchwire_cli", "dlq", "show", "scheduler"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # a pipe: no progress
    assert f"body:\nnot json: {REDACTED}" in done.stdout
    assert "hooks.slack.com" not in done.stdout


# ------------------------------------------------------------------ progress


def test_reading_the_queues_says_which_queue_it_is_at(on_local_stack: Deployed) -> None:
    purge(on_local_stack)
    send(on_local_stack, "ChainDeadLetterQueue", "{}")
    stack = read_stack(resolve_target(None))
    said: list[str] = []

    queue_depths(stack, report=said.append)
    show_queue(stack, "chain", 10, report=said.append)

    assert said == [
        "reading queue FailedInvocationsQueue (1 of 6)",
        "reading queue SchedulerDeadLetterQueue (2 of 6)",
        "reading queue ChainDeadLetterQueue (3 of 6)",
        "reading queue RetrierDeadLetterQueue (4 of 6)",
        "reading queue NotifierRuleDeadLetterQueue (5 of 6)",
        "reading queue SubscriptionDeadLetterQueue (6 of 6)",
        "reading queue ChainDeadLetterQueue",
        "peeking at 1 of the 1 message(s) of ChainDeadLetterQueue",
    ]


def test_the_status_shows_on_a_terminal_only(on_local_stack: Deployed) -> None:
    stack = read_stack(resolve_target(None))
    shown, piped = io.StringIO(), io.StringIO()

    for file, tty in ((shown, True), (piped, False)):
        with progress("reading", Console(file=file, force_terminal=tty, width=200)) as report:
            queue_depths(stack, report=report)

    assert "reading queue SubscriptionDeadLetterQueue (6 of 6)" in shown.getvalue()
    assert piped.getvalue() == ""


# the status a terminal is left with: each command's last step
@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["dlq"], "reading queue SubscriptionDeadLetterQueue (6 of 6)"),
        (["dlq", "show", "chain"], "peeking at 1 of the 1 message(s) of ChainDeadLetterQueue"),
        (
            ["dlq", "redrive", "chain", "--dry-run"],
            "peeking at 1 of the 1 message(s) of ChainDeadLetterQueue",
        ),
    ],
)
def test_on_a_terminal_the_command_shows_what_it_reads_and_json_stays_clean(
    on_local_stack: Deployed,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    says: str,
) -> None:
    purge(on_local_stack)
    send(on_local_stack, "ChainDeadLetterQueue", "{}")
    terminal = stderr_terminal(monkeypatch)

    assert run([*argv, "--json"]) == 0

    assert says in terminal.getvalue()
    assert json.loads(capsys.readouterr().out)["stack"] == on_local_stack.name


# ------------------------------------------------------------------ names and redaction


@pytest.mark.parametrize(
    ("name", "logical_id"),
    [
        ("failed-invocations", "FailedInvocationsQueue"),
        ("scheduler", "SchedulerDeadLetterQueue"),
        ("chain", "ChainDeadLetterQueue"),
        ("retrier", "RetrierDeadLetterQueue"),
        ("notifier-rules", "NotifierRuleDeadLetterQueue"),
        ("subscriptions", "SubscriptionDeadLetterQueue"),
        ("work", "WorkDeadLetterQueue"),
        ("example-work", "ExampleWorkDeadLetterQueue"),
        ("ChainDeadLetterQueue", "ChainDeadLetterQueue"),
        ("chaindeadletterqueue", "ChainDeadLetterQueue"),
    ],
)
def test_queue_names(name: str, logical_id: str) -> None:
    assert find_failure_queue(name).logical_id == logical_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (WEBHOOK, REDACTED),
        ("https://hooks.slack-gov.com/workflows/T1/A2/xyz", REDACTED),
        ("amqp://feeds:s3cr3t@mq.internal:5672/", f"amqp://feeds:{REDACTED}@mq.internal:5672/"),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA/x&X-Amz-Signature=abc123",
            f"https://b.s3.amazonaws.com/k?X-Amz-Credential={REDACTED}&X-Amz-Signature={REDACTED}",
        ),
        ("key id AKIAIOSFODNN7EXAMPLE used", f"key id {REDACTED} used"),
        ("login failed: password=hunter2 user=x", f"login failed: password={REDACTED} user=x"),
        ("https://example.com/path?page=2", "https://example.com/path?page=2"),
        ("[ERROR] job feeds failed", "[ERROR] job feeds failed"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_redact_fields_named_as_secrets() -> None:
    value = {"Password": "pw", "nested": [{"api_key": "k", "count": 3}], "jobName": "a"}

    assert redact(value) == {
        "Password": REDACTED,
        "nested": [{"api_key": REDACTED, "count": 3}],
        "jobName": "a",
    }
