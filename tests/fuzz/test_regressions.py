"""Events fuzzing found a handler mishandling, each at its smallest: refused now, naming the
problem before any AWS call, or handled as a person would expect."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest

from batchwire.errors import RequestError
from batchwire.retrier import MAX_NOTICE_TEXT
from batchwire.task_events import Attempt
from devtools.local_aws import REGION
from devtools.sample_events import encode, subscription_payload
from tests.fuzz.events import collapse
from tests.fuzz.handlers import Subject
from tests.fuzz.harness import Invocation, sample


def changed(event: Any, path: str, value: Any) -> Any:
    """A copy of ``event`` with the field at dotted ``path`` (digits index lists) set."""
    copied = copy.deepcopy(event)
    *parents, last = path.split(".")
    node = copied
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return copied


def assert_refused(invocation: Invocation, *words: str) -> None:
    """Refused with a RequestError naming the problem, before any AWS call or Slack post."""
    assert isinstance(invocation.error, RequestError), invocation.explain("not refused")
    assert all(word in str(invocation.error) for word in words), str(invocation.error)
    assert invocation.calls == [], invocation.calls
    assert invocation.posts == 0


def sqs_record(**fields: Any) -> dict[str, Any]:
    """The first record of the work queue sample, with ``fields`` changed."""
    record: dict[str, Any] = sample("sqs-work-messages.json")["Records"][0]
    return {**record, **fields}


# ------------------------------------------------------------------ retrier


@pytest.mark.parametrize(
    ("event", "words"),
    [
        pytest.param(None, ["ECS event must be a JSON object"], id="null"),
        pytest.param(True, ["ECS event must be a JSON object"], id="true"),
        pytest.param("Records", ["ECS event must be a JSON object"], id="string-with-Records"),
        pytest.param(
            sample("sns-task-retries-exhausted.json"),
            ["not an SQS event", "Records[0].messageId"],
            id="sns-event",
        ),
        pytest.param(
            {"Records": [{"messageId": "m-1", "receiptHandle": "r-1", "eventSource": "aws:sqs"}]},
            ["not an SQS event", "Records[0].body: required"],
            id="sqs-record-without-body",
        ),
    ],
)
def test_retrier_refuses_an_event_of_neither_trigger(
    retrier: Subject, event: Any, words: list[str]
) -> None:
    # Given the retrier
    # When it is invoked with an event that is neither an ECS stopped task nor an SQS batch
    invocation = retrier.harness.invoke(event)

    # Then it is refused, naming the problem, before any AWS call
    assert_refused(invocation, *words)


def test_retrier_refuses_an_event_larger_than_eventbridge_delivers(retrier: Subject) -> None:
    # Given a task's STOPPED event of 270,000 characters (EventBridge delivers 256 KB)
    stopped = changed(collapse(retrier.pool.own[0]), "detail.stoppedReason", "x" * 270_000)

    # When it is delivered
    invocation = retrier.harness.invoke(stopped)

    # Then it is refused, saying how large it is, before any AWS call
    assert_refused(invocation, "not an ECS Task State Change event", "over EventBridge's 262,144")


def relaunch_body(retrier: Subject) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(retrier.handled["Records"][0]["body"])
    return body


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        pytest.param("facts", {}, ["invalid relaunch message", "facts.clusterArn"], id="facts"),
        pytest.param("attempt", "2", ["invalid relaunch message", "attempt"], id="attempt"),
        pytest.param("notBefore", 0, ["invalid relaunch message", "notBefore"], id="notBefore"),
        pytest.param(
            "request.overrides",
            [],
            ["invalid relaunch message", "request: Invalid type for parameter overrides"],
            id="overrides-a-list",
        ),
    ],
)
def test_retrier_refuses_a_malformed_relaunch_before_any_aws_call(
    retrier: Subject, path: str, value: Any, words: list[str]
) -> None:
    # Given a due relaunch message with one field of the wrong type
    body = changed(relaunch_body(retrier), path, value)
    event = changed(retrier.handled, "Records.0.body", json.dumps(body))

    # When the delay queue delivers it
    invocation = retrier.harness.invoke(event)

    # Then its record stays in the queue, refused naming the field, before any AWS call
    failure = relaunch_refusal(invocation)
    assert all(word in failure for word in words), failure
    assert invocation.calls == []


def test_retrier_refuses_the_relaunch_of_overrides_runtask_would_not_take(
    retrier: Subject,
) -> None:
    # Given another stopped task whose overrides' containerOverrides is a number, not a list
    stopped = changed(
        collapse(retrier.pool.own[0]), "detail.overrides", {"containerOverrides": 1.5}
    )
    task_arn = stopped["detail"]["taskArn"].rsplit("/", 1)[0] + "/0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    stopped = changed(stopped, "detail.taskArn", task_arn)

    # When EventBridge delivers its STOPPED event, and the delay queue the relaunch it queued
    decided = retrier.harness.invoke(stopped)
    queue = retrier.harness.module.settings.delay_queue_url
    [message] = boto3.client("sqs", REGION).receive_message(QueueUrl=queue)["Messages"]
    relaunched = retrier.harness.invoke(changed(retrier.handled, "Records.0.body", message["Body"]))

    # Then the retry is decided, and its relaunch refused as RunTask would refuse it, naming
    # the field, before any AWS call
    assert decided.error is None, decided.explain("not decided")
    assert decided.result["action"] == "retry"
    failure = relaunch_refusal(relaunched)
    assert "Invalid type for parameter overrides.containerOverrides" in failure
    assert relaunched.calls == []


def relaunch_refusal(invocation: Invocation) -> str:
    """What the log says of the one relaunch message refused (and left in the queue)."""
    [record] = invocation.event["Records"]
    assert invocation.result == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    [refused] = [entry for entry in invocation.logs.records if "problems" in entry.__dict__]
    assert refused.exc_info is None
    return " ".join([refused.getMessage(), *refused.__dict__["problems"]])


def another_task(stopped: dict[str, Any], task_id: str) -> dict[str, Any]:
    """``stopped`` as the STOPPED event of another task (the sample's own was handled)."""
    arn = stopped["detail"]["taskArn"].rsplit("/", 1)[0] + "/" + task_id
    task: dict[str, Any] = changed(stopped, "detail.taskArn", arn)
    return task


def test_retrier_queues_the_relaunch_of_a_task_whose_stopped_reason_is_huge(
    retrier: Subject,
) -> None:
    # Given a task that exited 1 with a stopped reason of 60,000 emoji (240 KB of UTF-8)
    stopped = changed(collapse(retrier.pool.own[0]), "detail.stoppedReason", "\U0001f525" * 60_000)
    stopped = another_task(stopped, "5b6c7d8e9f0a41b2c3d4e5f60718293a")

    # When EventBridge delivers its STOPPED event
    invocation = retrier.harness.invoke(stopped)

    # Then its relaunch is queued (the message, facts and task included, fits in SQS)
    assert invocation.error is None, invocation.explain("not handled")
    assert invocation.result["action"] == "retry"
    assert "sqs.SendMessage" in invocation.calls


def test_retrier_notifies_a_given_up_task_whose_stopped_reason_is_huge(
    retrier: Subject,
) -> None:
    # Given a task on its last attempt whose stopped reason is 40,000 emoji (SNS takes 256 KB)
    sqs, sns = boto3.client("sqs", REGION), boto3.client("sns", REGION)
    inbox = sqs.create_queue(QueueName="notices-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])
    sns.subscribe(
        TopicArn=retrier.harness.module.settings.notification_topic_arn,
        Protocol="sqs",
        Endpoint=inbox_arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    stopped = collapse(retrier.pool.own[0])
    stopped = changed(stopped, "detail.stoppedReason", "\U0001f525" * 40_000)
    stopped = changed(stopped, "detail.startedBy", Attempt(3, "origin-task").started_by)

    # When EventBridge delivers its STOPPED event
    invocation = retrier.harness.invoke(stopped)

    # Then the give-up is published, its stopped reason cut to what Slack shows of a field
    assert invocation.error is None, invocation.explain("not handled")
    assert invocation.result["notified"] == "task-retries-exhausted"
    [message] = sqs.receive_message(QueueUrl=inbox)["Messages"]
    notice = json.loads(message["Body"])
    assert len(notice["stoppedReason"]) == MAX_NOTICE_TEXT
    assert notice["stoppedReason"].endswith("…")


# ------------------------------------------------------------------ dispatcher


@pytest.mark.parametrize(
    ("event", "words"),
    [
        pytest.param(
            None, ["not an SQS event", "(event): expected an object, got null"], id="null"
        ),
        pytest.param(
            {"Records": [sqs_record(body=2147483648)]},
            ["Records[0].body: Expected str, got int"],
            id="body-a-number",
        ),
        pytest.param(
            {"Records": [sqs_record(messageId=None)]},
            ["Records[0].messageId: Expected str, got null"],
            id="messageId-null",
        ),
        pytest.param(
            {"Records": [sqs_record(attributes=None)]},
            ["Records[0].attributes: Expected object, got null"],
            id="attributes-null",
        ),
        pytest.param(
            {"Records": [sqs_record(attributes={"ApproximateReceiveCount": "1"})]},
            ["Records[0].attributes.SentTimestamp: required"],
            id="attributes-missing",
        ),
        pytest.param(
            {"Records": [sqs_record(body="feed=\x00")]},
            ["Records[0].body: holds U+0000 at 5"],
            id="body-with-NUL",
        ),
        pytest.param(
            {"Records": [sqs_record(body="x" * 1_048_577)]},
            ["Records[0].body: 1,048,577 bytes"],
            id="body-over-1-MiB",
        ),
        pytest.param(
            {"Records": [1]},
            ["not an SQS event", "Records[0]: Expected object, got int"],
            id="record-a-number",
        ),
    ],
)
def test_dispatcher_refuses_what_no_queue_delivers_before_any_aws_call(
    dispatcher: Subject, event: Any, words: list[str]
) -> None:
    # Given the dispatcher
    # When it is invoked with an event no SQS queue could have delivered
    invocation = dispatcher.harness.invoke(event)

    # Then the event is refused, naming the field, before any AWS call
    assert_refused(invocation, *words)


# ------------------------------------------------------------------ notifier


def logs_event(**fields: Any) -> dict[str, Any]:
    """A subscription payload of one log event with ``fields`` changed in it."""
    payload = subscription_payload("/aws/batch/job", "job/default/1", ["ERROR x"], pattern="")
    payload["logEvents"][0].update(fields)
    return encode(payload)


@pytest.mark.parametrize(
    ("event", "words"),
    [
        pytest.param(
            {"Records": [1]}, ["Records[0]: expected an SNS record, got int"], id="record-a-number"
        ),
        pytest.param(
            changed(sample("sns-alarm.json"), "Records.0.Sns", "text"),
            ["SNS records are not usable", "Records[0].Sns: Expected object"],
            id="Sns-a-string",
        ),
        pytest.param(
            changed(sample("sns-alarm.json"), "Records.0.Sns.MessageAttributes", {"kind": "x"}),
            ["Records[0].Sns.MessageAttributes.kind: Expected object"],
            id="attribute-a-string",
        ),
        pytest.param(
            logs_event(timestamp="soon"),
            ["CloudWatch Logs payload is not usable", "awslogs.data.logEvents[0].timestamp"],
            id="log-timestamp-a-string",
        ),
        pytest.param(
            logs_event(timestamp=10**30),
            ["awslogs.data.logEvents[0].timestamp"],
            id="log-timestamp-past-year-9999",
        ),
        pytest.param(
            encode({**subscription_payload("/g", "s", ["x"], pattern=""), "logEvents": ["x"]}),
            ["awslogs.data.logEvents[0]: Expected object"],
            id="log-event-a-string",
        ),
        pytest.param(
            changed(sample("ecs-task-stopped-exit1.json"), "detail.stopCode", ["x"]),
            ["not a usable ECS Task State Change event", "detail.stopCode"],
            id="ecs-stopCode-a-list",
        ),
        pytest.param(
            changed(sample("ecs-task-stopped-exit1.json"), "detail.containers", ["app"]),
            ["detail.containers[0]: Expected object"],
            id="ecs-container-a-string",
        ),
        pytest.param(
            changed(sample("batch-job-failed.json"), "detail.attempts", ["x"]),
            ["not a usable Batch Job State Change event", "detail.attempts[0]"],
            id="batch-attempt-a-string",
        ),
    ],
)
def test_notifier_refuses_what_aws_does_not_send_before_any_aws_call(
    notifier: Subject, event: Any, words: list[str]
) -> None:
    # Given the notifier and the Slack stand-in
    # When it is invoked with an event whose fields do not have the types AWS sends
    invocation = notifier.harness.invoke(event)

    # Then it is refused, naming the field, before any AWS call and any post
    assert_refused(invocation, *words)


def sns_message(body: Any) -> dict[str, Any]:
    """The sample alarm's SNS event carrying ``body`` as its JSON message."""
    event: dict[str, Any] = changed(
        sample("sns-alarm.json"), "Records.0.Sns.Message", json.dumps(body)
    )
    return event


def alarm_body(**fields: Any) -> dict[str, Any]:
    body = json.loads(sample("sns-alarm.json")["Records"][0]["Sns"]["Message"])
    return {**body, **fields}


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        pytest.param(sns_message({"kind": {"a": 1}}), "generic", id="kind-an-object"),
        pytest.param(
            sns_message(alarm_body(NewStateValue=["ALARM"])), "generic", id="state-a-list"
        ),
        pytest.param(
            sns_message(
                alarm_body(Trigger={**alarm_body()["Trigger"], "Dimensions": 5, "Metrics": 5})
            ),
            "cloudwatch-alarm",
            id="dimensions-a-number",
        ),
    ],
)
def test_notifier_posts_an_sns_message_with_odd_fields_as_it_can(
    notifier: Subject, event: dict[str, Any], kind: str
) -> None:
    # Given the notifier and an SNS message whose JSON has a field of an unexpected type
    # When the topic delivers it
    invocation = notifier.harness.invoke(event)

    # Then Slack gets it: an alarm still, or a plain notification when it is no alarm
    assert invocation.error is None, invocation.explain("not handled")
    [alert] = invocation.result["alerts"]
    assert (alert["kind"], alert["posted"]) == (kind, True)
    assert notifier.slack is not None
    assert len(notifier.slack.accepted) == 1
