"""The retrier against moto ECS/SQS/SNS/DynamoDB in-process: tasks run again, or don't."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from batchwire.config import load_settings
from batchwire.dispatch import MESSAGE_ID_TAG, STARTED_BY
from batchwire.errors import ConfigurationError, RequestError
from batchwire.idempotency import OnceStore
from batchwire.retrier import (
    IDEMPOTENCY_PREFIX,
    CountedContainers,
    RetrierClients,
    RetrierSettings,
    handle_task_stopped,
    relaunch_when_due,
)
from devtools.ecs_local import EcsWorkload, create_ecs_workload, sample_event, stopped_event
from devtools.ecs_local import run_scheduled_task as scheduled_run

NOW = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)
# Outside Lambda there is no context to bound in-progress idempotency records by
pytestmark = pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time")
REGION = "us-east-1"


@dataclass
class Retrier:
    """The retrier wired to moto, with ways to play ECS's and SQS's parts."""

    settings: RetrierSettings
    clients: RetrierClients
    workload: EcsWorkload
    notifications_queue: str
    once: OnceStore
    ecs: Any
    now: datetime = NOW
    results: list[dict[str, Any]] = field(default_factory=list)

    def stopped(self, event: dict[str, Any]) -> dict[str, Any]:
        result = handle_task_stopped(
            event,
            settings=self.settings,
            clients=self.clients,
            counted=CountedContainers(self.clients.ecs, self.settings.containers),
            once=self.once,
            now=self.now,
            random=lambda: 0.5,
        )
        self.results.append(result)
        return result

    def due(self, body: str) -> dict[str, Any]:
        result = relaunch_when_due(
            body,
            settings=self.settings,
            clients=self.clients,
            once=self.once,
            now=self.now,
            random=lambda: 0.5,
        )
        self.results.append(result)
        return result

    def delay_messages(self) -> list[str]:
        """Take every message waiting in the delay queue (as Lambda's SQS poller would)."""
        return self._drain(self.settings.delay_queue_url)

    def deliver_relaunches(self) -> list[dict[str, Any]]:
        return [self.due(body) for body in self.delay_messages()]

    def dead_letters(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body in self._drain(self.settings.dead_letter_queue_url)]

    def notifications(self) -> list[dict[str, Any]]:
        bodies = [json.loads(body) for body in self._drain(self.notifications_queue)]
        return [
            {"message": json.loads(b["Message"]), "attributes": b["MessageAttributes"]}
            for b in bodies
        ]

    def tasks(self) -> list[dict[str, Any]]:
        arns = self.ecs.list_tasks(cluster=self.workload.cluster_arn)["taskArns"]
        if not arns:
            return []
        described = self.ecs.describe_tasks(
            cluster=self.workload.cluster_arn, tasks=arns, include=["TAGS"]
        )
        return list(described["tasks"])

    def _drain(self, queue_url: str) -> list[str]:
        sqs = self.clients.sqs
        bodies: list[str] = []
        while True:
            received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
            messages = received.get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(message["Body"])
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def environ_for(workload: EcsWorkload, queues: dict[str, str], **overrides: str) -> dict[str, str]:
    return {
        "RETRIER_CLUSTERS": workload.cluster_arn,
        "RETRIER_TASK_FAMILIES": "nightly-*",
        "RETRIER_SECURITY_GROUPS": workload.security_group,
        "RETRIER_ASSIGN_PUBLIC_IP": "DISABLED",
        "RETRIER_MAX_ATTEMPTS": "3",
        "RETRIER_BACKOFF_INTERVAL_SECONDS": "0",
        "RETRIER_DELAY_QUEUE_URL": queues["delay"],
        "RETRIER_DEAD_LETTER_QUEUE_URL": queues["dead"],
        "NOTIFICATION_TOPIC_ARN": queues["topic"],
        "IDEMPOTENCY_TABLE": "idempotency",
        **overrides,
    }


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws(config={"batch": {"use_docker": False}}):
        ec2, ecs = boto3.client("ec2", REGION), boto3.client("ecs", REGION)
        sqs, sns = boto3.client("sqs", REGION), boto3.client("sns", REGION)
        dynamodb = boto3.client("dynamodb", REGION)
        dynamodb.create_table(
            TableName="idempotency",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        topic = sns.create_topic(Name="notifications")["TopicArn"]
        inbox = sqs.create_queue(QueueName="notification-inbox")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
        yield {
            "workload": create_ecs_workload(ec2, ecs),
            "queues": {
                "delay": sqs.create_queue(QueueName="delay")["QueueUrl"],
                "dead": sqs.create_queue(QueueName="dead")["QueueUrl"],
                "topic": topic,
                "inbox": inbox,
            },
            "clients": RetrierClients(ecs=ecs, sqs=sqs, sns=sns),
            "dynamodb": dynamodb,
        }


def make_retrier(aws: dict[str, Any], **overrides: str) -> Retrier:
    settings = load_settings(
        RetrierSettings, environ_for(aws["workload"], aws["queues"], **overrides)
    )
    clients = aws["clients"]
    return Retrier(
        settings=settings,
        clients=clients,
        workload=aws["workload"],
        notifications_queue=aws["queues"]["inbox"],
        once=OnceStore("idempotency", IDEMPOTENCY_PREFIX, 3600, boto3_client=aws["dynamodb"]),
        ecs=clients.ecs,
    )


@pytest.fixture
def retrier(aws: dict[str, Any]) -> Retrier:
    return make_retrier(aws)


def run_scheduled_task(retrier: Retrier) -> dict[str, Any]:
    return scheduled_run(retrier.ecs, retrier.workload)


def exit1_event(retrier: Retrier) -> dict[str, Any]:
    return sample_event("ecs-task-stopped-exit1.json", subnet=retrier.workload.subnet)


def test_relaunched_task_keeps_definition_overrides_network_and_carries_its_attempt(
    retrier: Retrier,
):
    # Given the scheduled task exited 1 on its first run
    event = exit1_event(retrier)
    original = event["detail"]

    # When the retrier handles its STOPPED event and the relaunch comes due
    decided = retrier.stopped(event)
    [relaunched] = retrier.deliver_relaunches()

    # Then one task runs again: same definition, group, overrides and launch settings
    assert (decided["action"], decided["nextAttempt"]) == ("retry", 2)
    [task] = retrier.tasks()
    assert task["taskArn"] == relaunched["taskArn"]
    assert task["taskDefinitionArn"] == original["taskDefinitionArn"]
    assert task["group"] == "family:nightly-report"
    assert task["overrides"]["containerOverrides"] == original["overrides"]["containerOverrides"]
    assert (task["launchType"], task["platformVersion"]) == ("FARGATE", "1.4.0")
    # ... in the event's subnet with the configured security group
    subnet = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
    assert subnet["subnetId"] == retrier.workload.subnet
    interface = boto3.client("ec2", REGION).describe_network_interfaces(
        NetworkInterfaceIds=[subnet["networkInterfaceId"]]
    )["NetworkInterfaces"][0]
    assert [g["GroupId"] for g in interface["Groups"]] == [retrier.workload.security_group]
    # ... marked as run 2 of the original task, in startedBy and in its tags
    origin = original["taskArn"].rsplit("/", 1)[-1]
    assert task["startedBy"] == f"batchwire-retry/2/{origin}"
    tags = {tag["key"]: tag["value"] for tag in task["tags"]}
    assert tags == {"batchwire:retry-of": origin, "batchwire:attempt": "2"}


def test_forever_failing_task_runs_exactly_the_cap_then_dead_letters_and_notifies_once(
    retrier: Retrier,
):
    # Given a scheduled task that exits 1 on every run
    task = run_scheduled_task(retrier)
    event = stopped_event(task, {"app": 1, "log-router": 0})

    # When each run's STOPPED event is fed back in, as ECS and EventBridge would
    for _ in range(10):
        if retrier.stopped(event)["action"] != "retry":
            break
        [relaunched] = retrier.deliver_relaunches()
        [task] = [t for t in retrier.tasks() if t["taskArn"] == relaunched["taskArn"]]
        event = stopped_event(task, {"app": 1, "log-router": 0})

    # Then it ran 3 times in all: the scheduled run and two retries
    assert len(retrier.tasks()) == 3
    assert [r["action"] for r in retrier.results] == [
        "retry", "relaunched", "retry", "relaunched", "exhausted",
    ]  # fmt: skip
    # ... then one dead-letter record with the full task and the reason
    [record] = retrier.dead_letters()
    assert record["kind"] == "task-retries-exhausted"
    assert (record["attempt"], record["maxAttempts"]) == (3, 3)
    assert record["task"]["taskArn"] == event["detail"]["taskArn"]
    assert "container app exited 1" in record["reason"]
    # ... and one notification in the agreed shape
    [note] = retrier.notifications()
    assert note["attributes"]["kind"]["Value"] == "task-retries-exhausted"
    message = note["message"]
    assert set(message) == {
        "kind", "summary", "clusterArn", "taskArn", "taskDefinitionArn", "group", "container",
        "exitCode", "stopCode", "stoppedReason", "attempt", "maxAttempts", "reason", "region",
        "account",
    }  # fmt: skip
    assert (message["container"], message["exitCode"], message["attempt"]) == ("app", 1, 3)
    assert message["summary"] == (
        f"ECS task nightly-report ({event['detail']['taskArn'].rsplit('/', 1)[-1]}) in cluster "
        "batch-jobs failed 3 of 3 runs, giving up: container app exited 1"
    )


def test_duplicate_stopped_event_starts_one_task(retrier: Retrier):
    # Given a STOPPED event delivered twice (EventBridge delivers at least once)
    event = exit1_event(retrier)

    # When both deliveries are handled, and the relaunch message is delivered twice too
    retrier.stopped(event)
    retrier.stopped(json.loads(json.dumps(event)))
    bodies = retrier.delay_messages()
    results = [retrier.due(body) for body in bodies + bodies]

    # Then one relaunch was queued and one task started
    assert len(bodies) == 1
    assert len(retrier.tasks()) == 1
    assert {r["taskArn"] for r in results} == {retrier.tasks()[0]["taskArn"]}


def test_exit_3_notifies_that_the_task_was_rejected_and_starts_nothing(retrier: Retrier):
    # Given a task that exited 3: its input is bad
    event = sample_event("ecs-task-stopped-exit3.json", subnet=retrier.workload.subnet)

    # When the retrier handles it
    result = retrier.stopped(event)

    # Then no task starts, nothing is dead-lettered, and people are told
    assert result["action"] == "reject"
    assert retrier.delay_messages() == []
    assert retrier.tasks() == []
    assert retrier.dead_letters() == []
    [note] = retrier.notifications()
    assert note["message"]["kind"] == "task-rejected"
    assert note["message"]["exitCode"] == 3


def test_exit_4_dead_letters_without_notifying_and_starts_nothing(retrier: Retrier):
    # Given a task that exited 4: put aside for a person
    event = sample_event("ecs-task-stopped-exit4.json", subnet=retrier.workload.subnet)

    # When the retrier handles it
    retrier.stopped(event)

    # Then the task is recorded for a person, nobody is paged, nothing runs
    [record] = retrier.dead_letters()
    assert (record["kind"], record["exitCode"]) == ("task-not-processed", 4)
    # ... a scheduled task's record names no queued message
    assert "messageId" not in record
    assert retrier.notifications() == []
    assert retrier.delay_messages() == []
    assert retrier.tasks() == []


@pytest.mark.parametrize(
    "sample", ["ecs-task-stopped-userinitiated.json", "ecs-task-stopped-service.json"]
)
def test_user_stops_and_service_tasks_are_left_alone(retrier: Retrier, sample: str):
    # Given a task a person stopped, or a task of a service
    event = sample_event(sample, subnet=retrier.workload.subnet)

    # When the retrier handles it
    result = retrier.stopped(event)

    # Then nothing happens at all
    assert result["action"] == "ignore"
    assert retrier.delay_messages() == []
    assert retrier.tasks() == []
    assert retrier.dead_letters() == []
    assert retrier.notifications() == []


@pytest.mark.parametrize(
    "sample", ["ecs-task-stopped-failedtostart.json", "ecs-task-stopped-no-exitcode.json"]
)
def test_a_task_that_never_started_or_left_no_exit_code_runs_again(retrier: Retrier, sample: str):
    # Given a task that could not pull its image, or stopped without an exit code
    event = sample_event(sample, subnet=retrier.workload.subnet)

    # When the retrier handles it and the relaunch comes due
    retrier.stopped(event)
    [result] = retrier.deliver_relaunches()

    # Then it runs again as attempt 2
    assert result["action"] == "relaunched"
    [task] = retrier.tasks()
    assert task["startedBy"].startswith("batchwire-retry/2/")


def test_a_cluster_named_as_the_template_names_it_is_in_scope(aws: dict[str, Any]):
    # Given a retrier configured with the cluster's name, as the template passes it
    name = aws["workload"].cluster_arn.rpartition("/")[2]
    retrier = make_retrier(aws, RETRIER_CLUSTERS=f"other, {name}")

    # When a failed task of that cluster stops and the relaunch comes due
    retrier.stopped(exit1_event(retrier))
    [result] = retrier.deliver_relaunches()

    # Then it runs again
    assert result["action"] == "relaunched"
    assert len(retrier.tasks()) == 1


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"RETRIER_CLUSTERS": "arn:aws:ecs:us-east-1:123456789012:cluster/other"}, "cluster"),
        ({"RETRIER_CLUSTERS": "other"}, "cluster"),
        ({"RETRIER_TASK_FAMILIES": "feedstream-*"}, "family"),
    ],
)
def test_tasks_out_of_scope_are_never_touched(
    aws: dict[str, Any], overrides: dict[str, str], why: str
):
    # Given a retrier scoped to another cluster or other families
    retrier = make_retrier(aws, **overrides)

    # When a failed task of the sample cluster and family stops
    result = retrier.stopped(exit1_event(retrier))

    # Then it is ignored, and says why
    assert result["action"] == "ignore"
    assert why in result["reason"]
    assert retrier.delay_messages() == []


class PlacementFailsFirst:
    """An ECS client whose RunTask answers 200 with failures[] (or throttles) at first."""

    def __init__(self, ecs: Any, answers: list[Any]) -> None:
        self._ecs = ecs
        self.answers = answers
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


def with_ecs(retrier: Retrier, ecs: Any) -> Retrier:
    clients = RetrierClients(ecs=ecs, sqs=retrier.clients.sqs, sns=retrier.clients.sns)
    retrier.clients = clients
    return retrier


@pytest.mark.parametrize(
    "first_answer", [NO_MEMORY, THROTTLED], ids=["RESOURCE:MEMORY", "throttled"]
)
def test_placement_failure_is_not_an_attempt_and_is_tried_again_later(
    retrier: Retrier, first_answer: Any
):
    # Given RunTask cannot place the relaunch the first time
    ecs = PlacementFailsFirst(retrier.ecs, [first_answer])
    with_ecs(retrier, ecs)
    retrier.stopped(exit1_event(retrier))

    # When the relaunch comes due, and then its next placement try
    [first] = retrier.deliver_relaunches()
    [second] = retrier.deliver_relaunches()

    # Then the failure was not taken for success, and the task started on the next try
    assert first["action"] == "deferred"
    assert second["action"] == "relaunched"
    # ... still as attempt 2: the placement failure did not use up an attempt
    [task] = retrier.tasks()
    assert task["startedBy"].endswith(
        f"/{exit1_event(retrier)['detail']['taskArn'].rsplit('/', 1)[-1]}"
    )
    assert task["startedBy"].startswith("batchwire-retry/2/")
    # ... and each try had its own client token
    assert [c["clientToken"][-4:] for c in ecs.calls] == ["-2-1", "-2-2"]


def test_placement_failures_have_their_own_bound_then_dead_letter_and_notify(aws: dict[str, Any]):
    # Given RunTask never finds memory, and two placement tries per attempt
    retrier = make_retrier(aws, RETRIER_PLACEMENT_MAX_TRIES="2")
    with_ecs(retrier, PlacementFailsFirst(retrier.ecs, [NO_MEMORY] * 5))
    retrier.stopped(exit1_event(retrier))

    # When the relaunch comes due and is deferred once
    first = retrier.deliver_relaunches()
    second = retrier.deliver_relaunches()

    # Then after the second try the attempt is given up, with a record and a notification
    assert [r["action"] for r in first + second] == ["deferred", "exhausted"]
    assert retrier.tasks() == []
    [record] = retrier.dead_letters()
    assert "RESOURCE:MEMORY" in record["reason"]
    assert record["failures"][0]["reason"] == "RESOURCE:MEMORY"
    [note] = retrier.notifications()
    assert note["message"]["kind"] == "task-retries-exhausted"
    assert note["message"]["attempt"] == 2


class RecordingSqs:
    """The SQS client, keeping what was sent: moto holds delayed messages back for real."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs
        self.sent: list[dict[str, Any]] = []

    def send_message(self, **kwargs: Any) -> Any:
        self.sent.append(kwargs)
        return self._sqs.send_message(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)


def test_a_relaunch_waits_in_the_queue_until_its_backoff_is_over(aws: dict[str, Any]):
    # Given a backoff of 20 minutes, longer than SQS can delay one message
    retrier = make_retrier(
        aws, RETRIER_BACKOFF_INTERVAL_SECONDS="1200", RETRIER_BACKOFF_JITTER="NONE"
    )
    sqs = RecordingSqs(retrier.clients.sqs)
    retrier.clients = RetrierClients(ecs=retrier.ecs, sqs=sqs, sns=retrier.clients.sns)  # type: ignore[arg-type]
    decided = retrier.stopped(exit1_event(retrier))

    # When the message arrives after 15 minutes, and the re-enqueued one 5 minutes later
    retrier.now = NOW + timedelta(minutes=15)
    early = retrier.due(sqs.sent[0]["MessageBody"])
    retrier.now = NOW + timedelta(minutes=20)
    on_time = retrier.due(sqs.sent[1]["MessageBody"])

    # Then SQS delayed it its maximum, it went back for the remaining 5 minutes, then it ran
    assert decided["delaySeconds"] == 1200
    assert [m["DelaySeconds"] for m in sqs.sent] == [900, 300]
    assert (early["action"], on_time["action"]) == ("waiting", "relaunched")
    assert len(retrier.tasks()) == 1


def test_a_non_essential_container_failing_alone_does_not_retry(retrier: Retrier):
    # Given the app exited 0 and the non-essential log router exited 1
    event = exit1_event(retrier)
    event["detail"]["containers"][0]["exitCode"] = 0
    event["detail"]["containers"][1]["exitCode"] = 1

    # When the retrier learns which containers are essential from the task definition
    result = retrier.stopped(event)

    # Then the task counts as done
    assert result["action"] == "done"
    assert retrier.delay_messages() == []


def test_a_malformed_event_is_refused_naming_the_field_before_any_aws_call(retrier: Retrier):
    # Given an event without a task definition ARN
    event = exit1_event(retrier)
    del event["detail"]["taskDefinitionArn"]

    # When / Then
    with pytest.raises(RequestError, match=r"detail\.taskDefinitionArn: required, not given"):
        retrier.stopped(event)


def test_settings_errors_name_the_variable(aws: dict[str, Any]):
    # Given a rule with a misspelt action
    # When the settings are read
    # Then the error names the variable, the rule and the field
    with pytest.raises(ConfigurationError, match=r"RETRIER_RULES=.*\[0\]\.action"):
        make_retrier(aws, RETRIER_RULES='[{"onExitCode": "1", "action": "RETRI"}]')


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"RETRIER_RULES": '[{"onExitCode": "1", "action": "EXIT"}, {"action": "RETRY"}]'},
            r"RETRIER_RULES=.*: \[1\]: give at least one on\.\.\. condition$",
        ),
        (
            {"RETRIER_RULES": '[{"onExitCode": "4", "action": "RETRY"}]'},
            r"RETRIER_RULES=.*: \[0\]: onExitCode 4 is fixed by the exit-code contract",
        ),
        (
            {"RETRIER_RULES": '[{"onExitcode": "1", "action": "RETRY"}]'},
            r"RETRIER_RULES=.*: \[0\]\.onExitcode: unknown key",
        ),
        (
            {"RETRIER_RULES": json.dumps([{"onExitCode": "1", "action": "EXIT"}] * 11)},
            r"RETRIER_RULES=.*: Expected array of length <= 10$",
        ),
        (
            {"RETRIER_CLUSTERS": "arn:aws:ecs:us-east-1:123456789012:service/batch-jobs/web"},
            r"RETRIER_CLUSTERS: 'arn:aws:ecs:.*:service/batch-jobs/web' is not a cluster ARN",
        ),
        (
            {"RETRIER_CLUSTERS": "batch-jobs/web"},
            r"RETRIER_CLUSTERS: 'batch-jobs/web' is not a cluster name",
        ),
    ],
)
def test_settings_refuse_rules_and_clusters_the_retrier_cannot_use(
    aws: dict[str, Any], overrides: dict[str, str], message: str
):
    # Given a rule without a condition, one on a contract exit code, a misspelt condition,
    # too many rules, or a service ARN or path where a cluster belongs
    # When the settings are read
    # Then the function does not start, and the error names the variable and what is wrong
    with pytest.raises(ConfigurationError, match=message):
        make_retrier(aws, **overrides)


def test_the_relaunch_copies_the_stopped_tasks_tags(retrier: Retrier):
    # Given a scheduled task started with cost-allocation tags, which exited 1
    scheduled = run_scheduled_task(retrier)
    event = stopped_event(scheduled, {"app": 1, "log-router": 0})

    # When the retrier relaunches it
    retrier.stopped(event)
    [relaunched] = retrier.deliver_relaunches()

    # Then the new task carries the original's tags besides the retrier's own
    [task] = [t for t in retrier.tasks() if t["taskArn"] == relaunched["taskArn"]]
    tags = {tag["key"]: tag["value"] for tag in task["tags"]}
    assert tags == {
        "team": "reports",
        "batchwire:retry-of": scheduled["taskArn"].rsplit("/", 1)[-1],
        "batchwire:attempt": "2",
    }


def test_without_the_task_definition_every_container_counts(retrier: Retrier):
    # Given a task of a revision that can no longer be described, whose sidecar exited 1
    event = exit1_event(retrier)
    detail = event["detail"]
    detail["taskDefinitionArn"] = detail["taskDefinitionArn"].replace(":1", ":9")
    detail["containers"][0]["exitCode"] = 0
    detail["containers"][1]["exitCode"] = 1

    # When the retrier cannot learn which containers are essential
    result = retrier.stopped(event)

    # Then it errs on the side of retrying rather than calling the run a success
    assert result["action"] == "retry"
    assert "log-router exited 1" in result["reason"]


@pytest.mark.parametrize(
    ("mode", "names"),
    [("app, sidecar,", frozenset({"app", "sidecar"})), ("all", None)],
)
def test_named_or_all_containers_are_counted_without_asking_ecs(
    mode: str, names: frozenset[str] | None
):
    # Given RETRIER_CONTAINERS naming the containers, or all of them, and an ECS client
    # stubbed with no answer (any call would raise)
    ecs = boto3.client("ecs", region_name="us-east-1")
    revision = "arn:aws:ecs:us-east-1:123456789012:task-definition/nightly-report:1"
    with Stubber(ecs):
        # When the counted containers of a revision are asked for
        counted = CountedContainers(ecs, mode).names(revision)

    # Then they are the configured ones, learnt without calling ECS
    assert counted == names


# --------------------------------------------------------------------- queued messages

MESSAGE_ID = "5f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b"


def run_dispatched_task(retrier: Retrier, message_id: str = MESSAGE_ID) -> dict[str, Any]:
    """Start the task as the queue dispatcher does: the message in the app's environment."""
    environment = {
        "Message": '{"feed": "broadbean", "day": "2026-11-22"}',
        "Subject": "",
        "MessageId": message_id,
        "SentTimestamp": "1795400000000",
        "ApproximateFirstReceiveTimestamp": "1795400000100",
        "ApproximateReceiveCount": "1",
    }
    task: dict[str, Any] = retrier.ecs.run_task(
        cluster=retrier.workload.cluster_arn,
        taskDefinition=retrier.workload.task_definition_arn,
        launchType="FARGATE",
        startedBy=STARTED_BY,
        overrides={
            "containerOverrides": [
                {
                    "name": "app",
                    "environment": [{"name": k, "value": v} for k, v in environment.items()],
                }
            ]
        },
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [retrier.workload.subnet],
                "securityGroups": [retrier.workload.security_group],
            }
        },
        tags=[{"key": MESSAGE_ID_TAG, "value": message_id}],
    )["tasks"][0]
    return task


def environment_of(task: dict[str, Any]) -> dict[str, str]:
    [container] = task["overrides"]["containerOverrides"]
    return {variable["name"]: variable["value"] for variable in container["environment"]}


def test_a_queued_messages_task_that_always_fails_names_the_message_when_given_up(
    retrier: Retrier,
):
    # Given a task the dispatcher started for a message, which exits 1 on every run
    task = run_dispatched_task(retrier)
    event = stopped_event(task, {"app": 1, "log-router": 0})

    # When each run's STOPPED event is fed back in
    for _ in range(10):
        if retrier.stopped(event)["action"] != "retry":
            break
        [relaunched] = retrier.deliver_relaunches()
        [task] = [t for t in retrier.tasks() if t["taskArn"] == relaunched["taskArn"]]
        event = stopped_event(task, {"app": 1, "log-router": 0})

    # Then every one of the 3 runs had the message in its environment
    runs = retrier.tasks()
    assert len(runs) == 3
    assert {environment_of(run)["MessageId"] for run in runs} == {MESSAGE_ID}
    # ... and the dead-letter record and the notification both name the message
    [record] = retrier.dead_letters()
    assert (record["kind"], record["messageId"]) == ("task-retries-exhausted", MESSAGE_ID)
    [note] = retrier.notifications()
    message = note["message"]
    assert (message["kind"], message["messageId"], message["attempt"]) == (
        "task-retries-exhausted",
        MESSAGE_ID,
        3,
    )
    assert f"for message {MESSAGE_ID} failed 3 of 3 runs" in message["summary"]


def test_a_queued_message_rejected_by_its_task_is_named_in_the_notification(retrier: Retrier):
    # Given a task the dispatcher started for a message, which exited 3 (bad input)
    event = stopped_event(run_dispatched_task(retrier), {"app": 3, "log-router": 0})

    # When the retrier handles it
    retrier.stopped(event)

    # Then the task-rejected notification names the message, and nothing runs again
    [note] = retrier.notifications()
    assert (note["message"]["kind"], note["message"]["messageId"]) == (
        "task-rejected",
        MESSAGE_ID,
    )
    assert f"for message {MESSAGE_ID} was not retried" in note["message"]["summary"]
    assert retrier.delay_messages() == []


def test_a_queued_message_put_aside_by_its_task_is_named_in_the_dead_letter_record(
    retrier: Retrier,
):
    # Given a task the dispatcher started for a message, which exited 4 (not processed)
    event = stopped_event(run_dispatched_task(retrier), {"app": 4, "log-router": 0})

    # When the retrier handles it
    retrier.stopped(event)

    # Then the record names the message, next to the task with its whole environment
    [record] = retrier.dead_letters()
    assert (record["kind"], record["messageId"]) == ("task-not-processed", MESSAGE_ID)
    assert environment_of(record["task"])["MessageId"] == MESSAGE_ID
    assert retrier.notifications() == []


def test_placement_failures_of_a_queued_messages_task_still_name_the_message(
    aws: dict[str, Any],
):
    # Given RunTask never finds memory for the relaunch of a queued message's task
    retrier = make_retrier(aws, RETRIER_PLACEMENT_MAX_TRIES="1")
    task = run_dispatched_task(retrier)
    with_ecs(retrier, PlacementFailsFirst(retrier.ecs, [NO_MEMORY] * 5))
    retrier.stopped(stopped_event(task, {"app": 1, "log-router": 0}))

    # When the relaunch comes due and cannot be placed
    [result] = retrier.deliver_relaunches()

    # Then the attempt is given up, and record and notification still name the message
    assert result["action"] == "exhausted"
    [record] = retrier.dead_letters()
    [note] = retrier.notifications()
    assert record["messageId"] == note["message"]["messageId"] == MESSAGE_ID


def test_a_relaunch_queued_before_notices_named_messages_still_runs(retrier: Retrier):
    # Given a relaunch message whose facts have no messageId (queued by the previous version)
    retrier.stopped(exit1_event(retrier))
    [body] = retrier.delay_messages()
    message = json.loads(body)
    del message["facts"]["messageId"]

    # When it comes due
    result = retrier.due(json.dumps(message))

    # Then the task runs again as before
    assert result["action"] == "relaunched"


class PublishFailsOnce:
    """SNS whose first Publish is refused (the role lost sns:Publish for a moment)."""

    def __init__(self, sns: Any) -> None:
        self.sns = sns
        self.refused = 0

    def publish(self, **kwargs: Any) -> Any:
        if not self.refused:
            self.refused += 1
            raise ClientError(
                {"Error": {"Code": "AuthorizationError", "Message": "not authorized"}}, "Publish"
            )
        return self.sns.publish(**kwargs)


def test_a_dead_letter_made_by_a_delivery_that_failed_afterwards_is_counted_by_the_retry(
    aws: dict[str, Any],
):
    # Given a task whose third run exited 1, and a notification topic refusing one Publish
    retrier = make_retrier(aws)
    sns: Any = PublishFailsOnce(aws["clients"].sns)
    retrier.clients = RetrierClients(ecs=aws["clients"].ecs, sqs=aws["clients"].sqs, sns=sns)
    task = run_scheduled_task(retrier)
    origin = task["taskArn"].rsplit("/", 1)[-1]
    third_run = dict(task, startedBy=f"batchwire-retry/3/{origin}")
    event = stopped_event(third_run, {"app": 1, "log-router": 0})

    # When the first delivery dead-letters the task, then fails to notify (no metric is
    # printed for it), and Lambda delivers the event again, then once more as a duplicate
    with pytest.raises(ClientError):
        retrier.stopped(event)
    retry = retrier.stopped(event)
    duplicate = retrier.stopped(event)

    # Then one dead-letter record and one notification exist
    assert len(retrier.dead_letters()) == 1
    assert len(retrier.notifications()) == 1
    # and the retry reports the dead-letter as its own (the handler counts DeadLettered
    # then), while the duplicate reports both side effects as replayed
    assert retry["deadLettered"] == "task-retries-exhausted"
    assert "replayed" not in retry
    assert duplicate["replayed"] == ["dead-letter", "notify"]
