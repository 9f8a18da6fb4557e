"""The queue dispatcher against moto ECS/SQS/DynamoDB in-process: one task per message."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from batchwire.config import load_settings
from batchwire.dispatch import (
    IDEMPOTENCY_PREFIX,
    DispatcherClients,
    DispatcherSettings,
    DispatchResult,
    dispatch_messages,
)
from batchwire.errors import ConfigurationError
from batchwire.idempotency import OnceStore
from devtools.ecs_local import EcsWorkload, create_ecs_workload
from devtools.local_aws import sqs_event

# Outside Lambda there is no context to bound in-progress idempotency records by
pytestmark = pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time")
REGION = "us-east-1"
PAYLOAD_BUCKET = "work-payloads"
WORK_TOPIC = "arn:aws:sns:us-east-1:123456789012:WorkTopic"
WORK_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:WorkQueue"


class RecordingEcs:
    """The ECS client, keeping each RunTask call; ``answers`` are given before moto's."""

    def __init__(self, ecs: Any) -> None:
        self._ecs = ecs
        self.answers: list[Any] = []
        self.calls: list[dict[str, Any]] = []

    def run_task(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return self._ecs.run_task(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ecs, name)


class RecordingSqs:
    """The SQS client, keeping each visibility change."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs
        self.visibility: list[dict[str, Any]] = []

    def change_message_visibility(self, **kwargs: Any) -> Any:
        self.visibility.append(kwargs)
        return self._sqs.change_message_visibility(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)


class RecordingS3:
    """The S3 client, keeping each PutObject call; ``answers`` are errors raised before moto."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self.answers: list[Exception] = []
        self.puts: list[dict[str, Any]] = []

    def put_object(self, **kwargs: Any) -> Any:
        self.puts.append(kwargs)
        if self.answers:
            raise self.answers.pop(0)
        return self._s3.put_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


def s3_error(code: str, status: int) -> ClientError:
    """What botocore raises when S3 answers ``status`` with ``code`` (after its retries)."""
    response: Any = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "PutObject")


NO_MEMORY = {
    "tasks": [],
    "failures": [
        {
            "arn": "arn:aws:ecs:us-east-1:123456789012:container-instance/x",
            "reason": "RESOURCE:MEMORY",
        }
    ],
}
THROTTLED = ClientError(
    {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "RunTask"
)


@dataclass
class Dispatcher:
    """The dispatcher wired to moto, with ways to play SQS's and Lambda's parts."""

    settings: DispatcherSettings
    ecs: RecordingEcs
    sqs: RecordingSqs
    s3: RecordingS3
    workload: EcsWorkload
    once: OnceStore
    results: list[DispatchResult] = field(default_factory=list)

    def dispatch(self, event: dict[str, Any]) -> DispatchResult:
        clients = DispatcherClients(ecs=self.ecs, sqs=self.sqs, s3=self.s3)  # type: ignore[arg-type]
        result = dispatch_messages(event, settings=self.settings, clients=clients, once=self.once)
        self.results.append(result)
        return result

    def send(self, *bodies: str) -> list[str]:
        """Queue messages as a producer would; their SQS message ids."""
        return [
            self.sqs.send_message(QueueUrl=self.settings.work_queue_url, MessageBody=body)[
                "MessageId"
            ]
            for body in bodies
        ]

    def receive(self) -> dict[str, Any]:
        """The SQS event Lambda's poller builds from what the queue hands out now (<= 10)."""
        messages: list[dict[str, Any]] = []
        while len(messages) < 10:
            received = self.sqs.receive_message(
                QueueUrl=self.settings.work_queue_url,
                MaxNumberOfMessages=10 - len(messages),
                AttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                break
            messages += received
        return sqs_event(messages, WORK_QUEUE_ARN)

    def poll(self) -> DispatchResult:
        """One poll as Lambda does it: receive, invoke, delete the records that succeeded."""
        event = self.receive()
        result = self.dispatch(event)
        failed = {item["itemIdentifier"] for item in result.response["batchItemFailures"]}
        for record in event["Records"]:
            if record["messageId"] not in failed:
                self.sqs.delete_message(
                    QueueUrl=self.settings.work_queue_url, ReceiptHandle=record["receiptHandle"]
                )
        return result

    def tasks(self) -> list[dict[str, Any]]:
        arns = self.ecs.list_tasks(cluster=self.workload.cluster_arn)["taskArns"]
        if not arns:
            return []
        described = self.ecs.describe_tasks(
            cluster=self.workload.cluster_arn, tasks=arns, include=["TAGS"]
        )
        return list(described["tasks"])

    def running(self) -> list[str]:
        return list(
            self.ecs.list_tasks(cluster=self.workload.cluster_arn, desiredStatus="RUNNING")[
                "taskArns"
            ]
        )

    def stored(self, uri: str) -> dict[str, Any]:
        """The object at ``uri`` (``s3://bucket/key``): its bytes and content type."""
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        answer = self.s3.get_object(Bucket=bucket, Key=key)
        return {"body": answer["Body"].read(), "contentType": answer["ContentType"]}

    def stop_all(self) -> None:
        for arn in self.running():
            self.ecs.stop_task(cluster=self.workload.cluster_arn, task=arn, reason="exit 0")


def sns_envelope(message: str | None, subject: str | None = "feed-updated") -> str:
    """The body SNS puts into a subscribed queue (raw message delivery off)."""
    envelope: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": WORK_TOPIC,
        "Subject": subject,
        "Message": message,
        "Timestamp": "2026-11-23T02:30:01.204Z",
        "SignatureVersion": "1",
    }
    if message is None:
        del envelope["Message"]
    return json.dumps(envelope, indent=2)


def environ_for(workload: EcsWorkload, queue_url: str, **overrides: str) -> dict[str, str]:
    return {
        "DISPATCHER_CLUSTER": "batch-jobs",
        "DISPATCHER_TASK_DEFINITION": "nightly-report",
        "DISPATCHER_CONTAINER": "app",
        "DISPATCHER_LAUNCH_TYPE": "FARGATE",
        "DISPATCHER_SUBNETS": workload.subnet,
        "DISPATCHER_SECURITY_GROUPS": workload.security_group,
        "DISPATCHER_MAX_TASKS": "10",
        "DISPATCHER_WORK_QUEUE_URL": queue_url,
        "DISPATCHER_BUSY_BACKOFF_SECONDS": "0",
        "IDEMPOTENCY_TABLE": "idempotency",
        **overrides,
    }


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        ec2, ecs = boto3.client("ec2", REGION), boto3.client("ecs", REGION)
        sqs, dynamodb = boto3.client("sqs", REGION), boto3.client("dynamodb", REGION)
        s3 = boto3.client("s3", REGION)
        s3.create_bucket(Bucket=PAYLOAD_BUCKET)
        dynamodb.create_table(
            TableName="idempotency",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        # a long visibility timeout: a message seen again soon had its visibility changed
        queue = sqs.create_queue(QueueName="WorkQueue", Attributes={"VisibilityTimeout": "900"})
        yield {
            "workload": create_ecs_workload(ec2, ecs),
            "queue": queue["QueueUrl"],
            "ecs": ecs,
            "sqs": sqs,
            "s3": s3,
            "dynamodb": dynamodb,
        }


def make_dispatcher(aws: dict[str, Any], **env: str) -> Dispatcher:
    settings = load_settings(DispatcherSettings, environ_for(aws["workload"], aws["queue"], **env))
    return Dispatcher(
        settings=settings,
        ecs=RecordingEcs(aws["ecs"]),
        sqs=RecordingSqs(aws["sqs"]),
        s3=RecordingS3(aws["s3"]),
        workload=aws["workload"],
        once=OnceStore("idempotency", IDEMPOTENCY_PREFIX, 3600, boto3_client=aws["dynamodb"]),
    )


@pytest.fixture
def dispatcher(aws: dict[str, Any]) -> Dispatcher:
    return make_dispatcher(aws)


def environment_of(task: dict[str, Any]) -> dict[str, str]:
    [container] = task["overrides"]["containerOverrides"]
    assert container["name"] == "app"
    return {item["name"]: item["value"] for item in container["environment"]}


def test_ten_messages_start_ten_tasks_each_with_its_own_message(dispatcher: Dispatcher):
    # Given ten messages in the work queue
    bodies = [json.dumps({"feed": f"s3://feeds-inbox/part-{n}.csv"}) for n in range(10)]
    ids = dispatcher.send(*bodies)

    # When Lambda's poller hands them to the dispatcher in one batch
    event = dispatcher.receive()
    result = dispatcher.dispatch(event)

    # Then every message is done and has its own task
    assert result.response == {"batchItemFailures": []}
    assert [o.status for o in result.outcomes] == ["started"] * 10
    tasks = dispatcher.tasks()
    assert len(tasks) == 10
    by_id = {environment_of(task)["MessageId"]: task for task in tasks}
    assert set(by_id) == set(ids)
    for record in event["Records"]:
        task = by_id[record["messageId"]]
        environment = environment_of(task)
        # ... with the message and its SQS attributes in watchbot's names
        assert environment["Message"] == record["body"]
        assert environment["Subject"] == ""
        for name in ("SentTimestamp", "ApproximateFirstReceiveTimestamp"):
            assert environment[name] == record["attributes"][name]
            assert environment[name].isdigit()
        assert environment["ApproximateReceiveCount"] == "1"
        # ... started as the dispatcher, tagged with the message id, in the configured network
        assert task["startedBy"] == "batchwire-dispatch"
        assert {t["key"]: t["value"] for t in task["tags"]} == {
            "batchwire:message-id": record["messageId"]
        }
        assert task["launchType"] == "FARGATE"
        assert task["taskDefinitionArn"] == dispatcher.workload.task_definition_arn
    [call] = dispatcher.ecs.calls[:1]
    assert call["networkConfiguration"] == {
        "awsvpcConfiguration": {
            "subnets": [dispatcher.workload.subnet],
            "securityGroups": [dispatcher.workload.security_group],
            "assignPublicIp": "DISABLED",
        }
    }
    # ... each RunTask call with its own idempotency token of at most 64 characters
    tokens = {c["clientToken"] for c in dispatcher.ecs.calls}
    assert len(tokens) == 10
    assert all(len(token) <= 64 for token in tokens)


def test_an_sns_notification_gives_the_task_its_message_and_subject(dispatcher: Dispatcher):
    # Given a notification of the work topic, delivered into the queue without raw delivery
    inner = json.dumps({"feed": "s3://feeds-inbox/partners.csv"})
    dispatcher.send(sns_envelope(inner, subject="feed-updated"))

    # When the dispatcher takes it
    result = dispatcher.poll()

    # Then the task sees the notification's message and subject, not the envelope
    assert result.count("started") == 1
    [task] = dispatcher.tasks()
    environment = environment_of(task)
    assert (environment["Message"], environment["Subject"]) == (inner, "feed-updated")


def test_the_same_message_delivered_twice_starts_one_task(dispatcher: Dispatcher):
    # Given a message that SQS delivers twice (at least once delivery)
    dispatcher.send("s3://feeds-inbox/orders.csv")
    event = dispatcher.receive()

    # When both deliveries reach the dispatcher
    first = dispatcher.dispatch(event)
    second = dispatcher.dispatch(json.loads(json.dumps(event)))

    # Then one task started, and the second delivery is done without starting another
    [task] = dispatcher.tasks()
    assert [o.status for o in first.outcomes + second.outcomes] == ["started", "duplicate"]
    assert second.outcomes[0].task_arn == task["taskArn"]
    assert second.response == {"batchItemFailures": []}
    assert len(dispatcher.ecs.calls) == 1


def test_one_sns_notification_queued_twice_starts_one_task(dispatcher: Dispatcher):
    # Given SNS delivered the same notification into the queue twice (two SQS messages)
    body = sns_envelope("s3://feeds-inbox/orders.csv")
    dispatcher.send(body, body)

    # When the dispatcher takes both
    result = dispatcher.poll()

    # Then the notification's task started once; both messages leave the queue
    assert sorted(o.status for o in result.outcomes) == ["duplicate", "started"]
    assert len(dispatcher.tasks()) == 1


def test_at_most_max_tasks_run_at_once_and_the_rest_waits_in_the_queue(aws: dict[str, Any]):
    # Given room for two tasks of the family, and five messages
    dispatcher = make_dispatcher(aws, DISPATCHER_MAX_TASKS="2")
    ids = dispatcher.send(*(f"s3://feeds-inbox/part-{n}.csv" for n in range(5)))

    # When the dispatcher takes them, and again each time the running tasks have finished
    first = dispatcher.poll()
    most_running = len(dispatcher.running())
    polls = [first]
    while len(dispatcher.tasks()) < 5 and len(polls) < 5:
        dispatcher.stop_all()
        polls.append(dispatcher.poll())
        most_running = max(most_running, len(dispatcher.running()))

    # Then two tasks started first; the three others were batch item failures, not lost:
    assert first.count("started") == 2
    deferred = [o for o in first.outcomes if o.status == "deferred"]
    assert len(deferred) == 3
    assert {item["itemIdentifier"] for item in first.response["batchItemFailures"]} == {
        o.message_id for o in deferred
    }
    assert all(
        "2 tasks of family nightly-report already running" in (o.reason or "") for o in deferred
    )
    # ... their visibility was set to the busy backoff, so they came back
    assert [v["VisibilityTimeout"] for v in dispatcher.sqs.visibility[:3]] == [0, 0, 0]
    # ... and later polls ran the rest, never more than two at once
    assert [p.count("started") for p in polls] == [2, 2, 1]
    assert most_running == 2
    started = {environment_of(task)["MessageId"] for task in dispatcher.tasks()}
    assert started == set(ids)


def test_the_retriers_relaunches_of_the_family_count_against_the_maximum(aws: dict[str, Any]):
    # Given one task of the family already running, started by someone else (the retrier)
    dispatcher = make_dispatcher(
        aws, DISPATCHER_MAX_TASKS="1", DISPATCHER_BUSY_BACKOFF_SECONDS="60"
    )
    workload = dispatcher.workload
    aws["ecs"].run_task(
        cluster=workload.cluster_arn,
        taskDefinition=workload.task_definition_arn,
        launchType="FARGATE",
        startedBy="batchwire-retry/2/c405f2a1",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [workload.subnet],
                "securityGroups": [workload.security_group],
            }
        },
    )
    dispatcher.send("s3://feeds-inbox/orders.csv")

    # When a message arrives
    result = dispatcher.poll()

    # Then it waits: no RunTask, visibility set to the configured backoff
    [outcome] = result.outcomes
    assert (outcome.status, outcome.back_in_seconds) == ("deferred", 60)
    assert dispatcher.ecs.calls == []
    assert [v["VisibilityTimeout"] for v in dispatcher.sqs.visibility] == [60]
    assert dispatcher.receive() == {"Records": []}


@pytest.mark.parametrize("first_answer", [NO_MEMORY, THROTTLED], ids=["failures", "throttled"])
def test_a_task_ecs_could_not_place_runs_when_the_message_comes_back(
    aws: dict[str, Any], first_answer: Any
):
    # Given RunTask answers the first call with failures[] (or throttles), then places tasks
    dispatcher = make_dispatcher(aws)
    dispatcher.ecs.answers = [first_answer]
    [message_id] = dispatcher.send("s3://feeds-inbox/orders.csv")

    # When the message arrives, comes back after the backoff, and arrives again
    first = dispatcher.poll()
    second = dispatcher.poll()

    # Then the first delivery was a batch item failure whose visibility was set to the backoff
    [deferred] = first.outcomes
    assert deferred.status == "deferred"
    assert first.response == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    assert len(dispatcher.sqs.visibility) == 1
    expected = "RESOURCE:MEMORY" if first_answer is NO_MEMORY else "ThrottlingException"
    assert expected in (deferred.reason or "")
    # ... no record of it locked the message out: the redelivery started its task
    [started] = second.outcomes
    assert started.status == "started"
    [task] = dispatcher.tasks()
    assert environment_of(task)["ApproximateReceiveCount"] == "2"
    # ... with a token of its own (ECS would answer the old one with the old result)
    assert len({c["clientToken"] for c in dispatcher.ecs.calls}) == 2


def test_after_a_placement_failure_the_rest_of_the_batch_waits_without_runtask_calls(
    aws: dict[str, Any],
):
    # Given RunTask cannot place the first task of a batch of three
    dispatcher = make_dispatcher(aws)
    dispatcher.ecs.answers = [NO_MEMORY]
    dispatcher.send("a", "b", "c")

    # When the batch is dispatched
    result = dispatcher.poll()

    # Then all three wait for the backoff, and RunTask was asked once
    assert [o.status for o in result.outcomes] == ["deferred"] * 3
    assert len(result.response["batchItemFailures"]) == 3
    assert len(dispatcher.ecs.calls) == 1
    assert "not tried: RunTask placed no task: RESOURCE:MEMORY" in (result.outcomes[2].reason or "")


def test_another_runtask_error_fails_the_record_for_sqs_to_retry(aws: dict[str, Any]):
    # Given RunTask refuses the first call (wrong container name, access denied...)
    invalid = ClientError(
        {"Error": {"Code": "InvalidParameterException", "Message": "bad"}}, "RunTask"
    )
    dispatcher = make_dispatcher(aws)
    dispatcher.ecs.answers = [invalid]
    [message_id] = dispatcher.send("s3://feeds-inbox/orders.csv")
    event = dispatcher.receive()

    # When the message is dispatched, and SQS delivers it again later
    first = dispatcher.dispatch(event)
    second = dispatcher.dispatch(event)

    # Then the first delivery is a batch item failure left to SQS's own redelivery
    assert first.outcomes[0].status == "failed"
    assert "InvalidParameterException" in (first.outcomes[0].reason or "")
    assert first.response == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    assert dispatcher.sqs.visibility == []
    # ... and the next delivery can still start the task
    assert second.outcomes[0].status == "started"


def large_message(size: int = 20480) -> str:
    """A message of ``size`` bytes, with characters JSON escapes and one of two bytes."""
    line = 'order "4711";\tcafé\n'
    text = line * (size // len(line.encode()) + 1)
    while len(text.encode()) > size:
        text = text[:-1]
    return text + "x" * (size - len(text.encode()))


@pytest.fixture
def via_s3(aws: dict[str, Any]) -> Dispatcher:
    return make_dispatcher(aws, DISPATCHER_PAYLOAD_BUCKET=PAYLOAD_BUCKET)


def test_a_large_message_goes_through_s3_and_its_task_gets_its_location(via_s3: Dispatcher):
    # Given the S3 route is on, and a 20 KiB message queued beside a small one
    body = large_message()
    [big, small] = via_s3.send(body, "s3://feeds-inbox/orders.csv")

    # When the batch is dispatched
    result = via_s3.poll()

    # Then both tasks started
    assert result.response == {"batchItemFailures": []}
    tasks = {environment_of(task)["MessageId"]: environment_of(task) for task in via_s3.tasks()}
    # ... the big one's task gets the message's location instead of the message
    uri = f"s3://{PAYLOAD_BUCKET}/work-messages/sqs-{big}"
    environment = tasks[big]
    assert environment["MessageS3Uri"] == uri
    assert "Message" not in environment
    assert (environment["Subject"], environment["ApproximateReceiveCount"]) == ("", "1")
    assert environment["SentTimestamp"].isdigit()
    # ... and the object holds exactly the message, as UTF-8 text
    assert via_s3.stored(uri) == {
        "body": body.encode(),
        "contentType": "text/plain; charset=utf-8",
    }
    # ... encrypted as the bucket says (no encryption asked for by the dispatcher)
    [put] = via_s3.s3.puts
    assert "ServerSideEncryption" not in put
    # ... the small one went inline, as before
    assert tasks[small]["Message"] == "s3://feeds-inbox/orders.csv"
    assert "MessageS3Uri" not in tasks[small]
    by_id = {o.message_id: o for o in result.outcomes}
    assert (by_id[big].message_s3_uri, by_id[small].message_s3_uri) == (uri, None)


def test_a_large_message_delivered_again_is_put_once_and_starts_no_second_task(
    via_s3: Dispatcher,
):
    # Given a large message that SQS delivers twice
    via_s3.send(large_message())
    event = via_s3.receive()

    # When both deliveries reach the dispatcher
    first = via_s3.dispatch(event)
    second = via_s3.dispatch(json.loads(json.dumps(event)))

    # Then one object was put and one task started; the second delivery is a duplicate
    assert [o.status for o in first.outcomes + second.outcomes] == ["started", "duplicate"]
    assert len(via_s3.s3.puts) == 1
    assert len(via_s3.ecs.calls) == 1
    [task] = via_s3.tasks()
    assert second.outcomes[0].message_s3_uri == environment_of(task)["MessageS3Uri"]
    assert second.response == {"batchItemFailures": []}


def test_a_large_sns_notification_stores_its_message_and_keeps_its_subject(via_s3: Dispatcher):
    # Given a large notification of the work topic (raw delivery off)
    inner = large_message()
    body = sns_envelope(inner, subject="feed-updated")
    via_s3.send(body)

    # When the dispatcher takes it
    result = via_s3.poll()

    # Then the object holds the notification's message, not the envelope, under its SNS id
    assert result.count("started") == 1
    [task] = via_s3.tasks()
    environment = environment_of(task)
    sns_id = json.loads(body)["MessageId"]
    assert environment["MessageS3Uri"] == f"s3://{PAYLOAD_BUCKET}/work-messages/sns-{sns_id}"
    assert via_s3.stored(environment["MessageS3Uri"])["body"] == inner.encode()
    # ... and the task keeps the subject
    assert environment["Subject"] == "feed-updated"
    assert "Message" not in environment


def test_with_the_s3_route_off_a_large_message_is_refused_naming_its_size_and_the_variable(
    dispatcher: Dispatcher,
):
    # Given the S3 route is off (no DISPATCHER_PAYLOAD_BUCKET), a 20 KiB message and a small one
    [big, small] = dispatcher.send("x" * 20480, "s3://feeds-inbox/orders.csv")

    # When the batch is dispatched
    result = dispatcher.poll()

    # Then the big one is a batch item failure whose reason names it, its size and the switch
    assert result.response == {"batchItemFailures": [{"itemIdentifier": big}]}
    refused = result.outcomes[0]
    assert refused.status == "refused"
    assert refused.reason == (
        f"message {big} is 20,480 bytes; container overrides allow 8,192 characters "
        "and the S3 route (DISPATCHER_PAYLOAD_BUCKET) is off"
    )
    assert "set DISPATCHER_PAYLOAD_BUCKET" in refused.problems[0]
    # ... nothing went to S3, no RunTask was called for it, and the small one started
    assert dispatcher.s3.puts == []
    [call] = dispatcher.ecs.calls
    assert environment_of({"overrides": call["overrides"]})["MessageId"] == small
    assert dispatcher.sqs.visibility == []


def test_a_subject_too_large_even_without_the_message_is_refused(via_s3: Dispatcher):
    # Given a hand-made notification whose Subject alone passes the override limit
    [message_id] = via_s3.send(sns_envelope("small", subject="s" * 9000))

    # When the dispatcher takes it
    result = via_s3.poll()

    # Then it is refused naming its size; nothing was put in S3 and no task started
    [outcome] = result.outcomes
    assert outcome.status == "refused"
    assert outcome.reason == (
        f"message {message_id} is 5 bytes; container overrides allow 8,192 characters"
    )
    assert "even with the message in S3" in outcome.problems[0]
    assert "Subject (9,000 characters)" in outcome.problems[0]
    assert (via_s3.s3.puts, via_s3.ecs.calls) == ([], [])


@pytest.mark.parametrize(
    "error", [s3_error("SlowDown", 503), s3_error("InternalError", 500)], ids=["503", "500"]
)
def test_a_throttled_upload_defers_the_message_and_its_redelivery_starts_the_task(
    via_s3: Dispatcher, error: ClientError
):
    # Given S3 throttles the first upload, then takes it
    via_s3.s3.answers = [error]
    [message_id] = via_s3.send(large_message())

    # When the message arrives, comes back after the backoff, and arrives again
    first = via_s3.poll()
    second = via_s3.poll()

    # Then the first delivery was deferred without a RunTask call
    [deferred] = first.outcomes
    assert deferred.status == "deferred"
    assert error.response["Error"]["Code"] in (deferred.reason or "")
    assert first.response == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    assert len(via_s3.sqs.visibility) == 1
    # ... nothing locked the message out: the redelivery put the same key and started its task
    assert second.count("started") == 1
    assert len(via_s3.ecs.calls) == 1
    assert len({put["Key"] for put in via_s3.s3.puts}) == 1
    assert len(via_s3.s3.puts) == 2
    [task] = via_s3.tasks()
    assert environment_of(task)["ApproximateReceiveCount"] == "2"


@pytest.mark.parametrize(
    ("bucket", "error", "expected"),
    [
        (PAYLOAD_BUCKET, s3_error("AccessDenied", 403), "needs s3:PutObject on arn:aws:s3:::"),
        ("no-such-bucket", None, "bucket no-such-bucket does not exist"),
    ],
    ids=["access-denied", "no-such-bucket"],
)
def test_an_upload_s3_refuses_fails_the_record_without_runtask(
    aws: dict[str, Any], bucket: str, error: ClientError | None, expected: str
):
    # Given S3 refuses the upload: the role lacks the permission, or the bucket is not there
    dispatcher = make_dispatcher(aws, DISPATCHER_PAYLOAD_BUCKET=bucket)
    dispatcher.s3.answers = [error] if error else []
    [message_id] = dispatcher.send(large_message())
    event = dispatcher.receive()

    # When the message is dispatched, and SQS delivers it again later
    first = dispatcher.dispatch(event)

    # Then the record failed, saying what to fix, and was left to SQS's redelivery
    [failed] = first.outcomes
    assert failed.status == "failed"
    assert f"S3 PutObject s3://{bucket}/work-messages/sqs-{message_id}" in (failed.reason or "")
    assert expected in (failed.reason or "")
    assert first.response == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    assert (dispatcher.ecs.calls, dispatcher.sqs.visibility) == ([], [])
    # ... and no record locked it out: once S3 takes it, the next delivery starts its task
    if bucket != PAYLOAD_BUCKET:
        aws["s3"].create_bucket(Bucket=bucket)
    assert dispatcher.dispatch(event).outcomes[0].status == "started"


def test_an_sns_notification_without_message_is_refused_before_any_runtask(
    dispatcher: Dispatcher,
):
    # Given a notification envelope that lost its Message
    [message_id] = dispatcher.send(sns_envelope(None))

    # When the dispatcher takes it
    result = dispatcher.poll()

    # Then it is refused, named, and left for the queue's redrive policy; nothing runs
    [outcome] = result.outcomes
    assert outcome.status == "refused"
    assert outcome.reason == (
        f"message {message_id} is an SNS notification without a usable Message"
    )
    assert outcome.problems == ("body.Message: missing",)
    assert result.response == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    assert dispatcher.ecs.calls == []


def test_with_a_dead_letter_queue_a_refused_message_is_put_there_at_once_with_why(
    aws: dict[str, Any],
):
    # Given a dispatcher that knows the work queue's dead-letter queue
    dead_letter_url = aws["sqs"].create_queue(QueueName="work-dead-letters")["QueueUrl"]
    dispatcher = make_dispatcher(aws, DISPATCHER_DEAD_LETTER_QUEUE_URL=dead_letter_url)
    body = sns_envelope(None)
    [message_id] = dispatcher.send(body)

    # When it takes a message it cannot run
    result = dispatcher.poll()

    # Then the message leaves the work queue for the dead-letter queue at once, body intact,
    # with the reason and its id in the attributes; no task runs
    [outcome] = result.outcomes
    assert (outcome.status, outcome.dead_lettered) == ("refused", True)
    assert result.response == {"batchItemFailures": []}
    [kept] = aws["sqs"].receive_message(QueueUrl=dead_letter_url, MessageAttributeNames=["All"])[
        "Messages"
    ]
    assert kept["Body"] == body
    attributes = {k: v["StringValue"] for k, v in kept["MessageAttributes"].items()}
    assert attributes["batchwire-message-id"] == message_id
    assert attributes["batchwire-refused"] == (
        f"message {message_id} is an SNS notification without a usable Message; "
        "body.Message: missing"
    )
    assert dispatcher.ecs.calls == []


def test_a_capacity_provider_is_used_instead_of_a_launch_type(aws: dict[str, Any]):
    # Given the tasks go to the FARGATE_SPOT capacity provider
    dispatcher = make_dispatcher(
        aws, DISPATCHER_LAUNCH_TYPE="", DISPATCHER_CAPACITY_PROVIDER="FARGATE_SPOT"
    )
    dispatcher.ecs.answers = [{"tasks": [{"taskArn": "arn:aws:ecs:us-east-1:1:task/x/1"}]}]
    dispatcher.send("s3://feeds-inbox/orders.csv")

    # When a message is dispatched
    dispatcher.poll()

    # Then RunTask asks for the provider, not a launch type
    [call] = dispatcher.ecs.calls
    assert call["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert "launchType" not in call
    assert call["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DISPATCHER_CLUSTER": ""}, r"environment variable DISPATCHER_CLUSTER is not set"),
        (
            {"DISPATCHER_CLUSTER": "batch-jobs/web"},
            r"DISPATCHER_CLUSTER: 'batch-jobs/web' is neither a cluster name",
        ),
        (
            {"DISPATCHER_TASK_DEFINITION": "nightly report"},
            r"DISPATCHER_TASK_DEFINITION: 'nightly report' is not a task definition family",
        ),
        ({"DISPATCHER_CONTAINER": ""}, r"environment variable DISPATCHER_CONTAINER is not set"),
        (
            {"DISPATCHER_LAUNCH_TYPE": "", "DISPATCHER_CAPACITY_PROVIDER": ""},
            r"DISPATCHER_LAUNCH_TYPE and DISPATCHER_CAPACITY_PROVIDER: set exactly one of the "
            r"two \(neither is set\)",
        ),
        (
            {"DISPATCHER_CAPACITY_PROVIDER": "FARGATE_SPOT"},
            r"DISPATCHER_LAUNCH_TYPE and DISPATCHER_CAPACITY_PROVIDER: .*both are set",
        ),
        ({"DISPATCHER_LAUNCH_TYPE": "fargate"}, r"DISPATCHER_LAUNCH_TYPE='fargate'"),
        (
            {"DISPATCHER_SUBNETS": "", "DISPATCHER_SECURITY_GROUPS": ""},
            r"DISPATCHER_SUBNETS is empty: Fargate tasks",
        ),
        (
            {"DISPATCHER_LAUNCH_TYPE": "EC2", "DISPATCHER_SUBNETS": ""},
            r"DISPATCHER_SECURITY_GROUPS is set but DISPATCHER_SUBNETS is empty",
        ),
        ({"DISPATCHER_ASSIGN_PUBLIC_IP": "yes"}, r"DISPATCHER_ASSIGN_PUBLIC_IP='yes'"),
        ({"DISPATCHER_MAX_TASKS": ""}, r"environment variable DISPATCHER_MAX_TASKS is not set"),
        ({"DISPATCHER_MAX_TASKS": "0"}, r"DISPATCHER_MAX_TASKS='0': Expected int >= 1"),
        ({"DISPATCHER_MAX_TASKS": "many"}, r"DISPATCHER_MAX_TASKS='many'"),
        (
            {"DISPATCHER_BUSY_BACKOFF_SECONDS": "43201"},
            r"DISPATCHER_BUSY_BACKOFF_SECONDS='43201': Expected int <= 43200",
        ),
        ({"DISPATCHER_WORK_QUEUE_URL": "WorkQueue"}, r"DISPATCHER_WORK_QUEUE_URL='WorkQueue'"),
        ({"IDEMPOTENCY_TABLE": ""}, r"environment variable IDEMPOTENCY_TABLE is not set"),
        (
            {"DISPATCHER_PAYLOAD_PREFIX": "work-messages"},
            r"DISPATCHER_PAYLOAD_PREFIX: 'work-messages' must end with '/', "
            r"e\.g\. 'work-messages/'",
        ),
        (
            {"DISPATCHER_PAYLOAD_BUCKET": "s3://work-payloads"},
            r"DISPATCHER_PAYLOAD_BUCKET: 's3://work-payloads' is not an S3 bucket name",
        ),
    ],
)
def test_settings_errors_name_the_variable(
    aws: dict[str, Any], overrides: dict[str, str], message: str
):
    # Given a variable missing or wrong
    # When the settings are read
    # Then the function does not start, and the error names the variable and what is wrong
    with pytest.raises(ConfigurationError, match=message):
        make_dispatcher(aws, **overrides)


def test_settings_for_ec2_bridge_mode_need_no_network(aws: dict[str, Any]):
    # Given an EC2 task definition in bridge mode: no subnets, no security groups
    environ = environ_for(
        aws["workload"],
        aws["queue"],
        DISPATCHER_LAUNCH_TYPE="EC2",
        DISPATCHER_SUBNETS="",
        DISPATCHER_SECURITY_GROUPS="",
        DISPATCHER_TASK_DEFINITION=(
            "arn:aws:ecs:us-east-1:123456789012:task-definition/nightly-report:3"
        ),
    )

    # When the settings are read
    settings = load_settings(DispatcherSettings, environ)

    # Then they are accepted; the family counted is the definition's
    assert (settings.launch_type, settings.subnets, settings.family) == (
        "EC2",
        (),
        "nightly-report",
    )
    assert settings.busy_backoff_seconds == 0
    # ... and the S3 route is off, with its default prefix ready
    assert (settings.payload_bucket, settings.payload_prefix) == ("", "work-messages/")
