"""The scaler: the pure decision, its settings, and scaling against moto SQS/ECS/DynamoDB."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from batchwire.config import load_settings
from batchwire.errors import ConfigurationError
from batchwire.scaler import (
    MEMORY_KEEP_SECONDS,
    Decision,
    Memory,
    Reading,
    Scaler,
    ScalerClients,
    ScalerMemory,
    ScalerSettings,
    ScalingFailed,
    ScalingPolicy,
    Target,
    decide,
)

REGION = "us-east-1"
NOW = 1_795_400_000.0  # 2026-11-22, epoch seconds
#: The policy of the moto tests: 50 messages a task, 0 to 8 tasks, 5 minutes to scale in.
POLICY = ScalingPolicy(messages_per_task=50, min_tasks=0, max_tasks=8, cooldown_seconds=300)


def policy(**changes: Any) -> ScalingPolicy:
    fields = {"messages_per_task": 50, "min_tasks": 0, "max_tasks": 8, "cooldown_seconds": 300}
    return ScalingPolicy(**{**fields, **changes})


# --------------------------------------------------------------------------- decide


@pytest.mark.parametrize(
    ("reading", "rules", "memory", "desired", "reason"),
    [
        pytest.param(
            Reading(visible=4, in_flight=0, delayed=0, running=0),
            policy(activation_messages=5),
            Memory(),
            0,
            "hold 0: 4 messages, below activation 5",
            id="stays at zero below the activation",
        ),
        pytest.param(
            Reading(visible=0, in_flight=0, delayed=0, running=0),
            policy(),
            Memory(),
            0,
            "hold 0: queue empty",
            id="stays at zero with an empty queue",
        ),
        pytest.param(
            Reading(visible=1, in_flight=0, delayed=0, running=0),
            policy(),
            Memory(),
            1,
            "scale out 0 -> 1: 1 message (activation 1)",
            id="the first message brings one task",
        ),
        pytest.param(
            Reading(visible=500, in_flight=0, delayed=0, running=0),
            policy(),
            Memory(),
            8,
            "scale out 0 -> 8: 500 messages (activation 1, 10 needed at 50 per task, max 8)",
            id="a burst of 500 at 50 a task brings the maximum of 8",
        ),
        pytest.param(
            Reading(visible=400, in_flight=0, delayed=0, running=2),
            policy(),
            Memory(last_needed_at=NOW - 10),
            8,
            "scale out 2 -> 8: 400 messages (50 per task)",
            id="scaling out never waits for the cooldown",
        ),
        pytest.param(
            Reading(visible=0, in_flight=120, delayed=0, running=8),
            policy(),
            Memory(last_needed_at=NOW - 3600),
            3,
            "scale in 8 -> 3: 120 messages (0 visible, 120 in flight), no more than 3 needed "
            "for 3600 s",
            id="in-flight messages keep their tasks even after the cooldown",
        ),
        pytest.param(
            Reading(visible=0, in_flight=0, delayed=0, running=8),
            policy(),
            Memory(last_needed_at=NOW - 180),
            8,
            "hold 8: cooldown 120 s of 300 left, then 0 (queue and in-flight empty)",
            id="scaling in waits for the cooldown",
        ),
        pytest.param(
            Reading(visible=60, in_flight=0, delayed=0, running=8),
            policy(),
            Memory(last_needed_at=NOW - 300),
            2,
            "scale in 8 -> 2: 60 messages, no more than 2 needed for 300 s",
            id="after the cooldown scaling in goes straight to what is needed",
        ),
        pytest.param(
            Reading(visible=0, in_flight=0, delayed=0, running=8),
            policy(),
            Memory(),
            0,
            "scale in 8 -> 0: queue and in-flight empty, no earlier need remembered",
            id="nothing remembered, nothing to wait for",
        ),
        pytest.param(
            Reading(visible=0, in_flight=0, delayed=0, running=0),
            policy(min_tasks=2),
            Memory(),
            2,
            "scale out 0 -> 2: queue empty (min 2)",
            id="min tasks even with an empty queue",
        ),
        pytest.param(
            Reading(visible=0, in_flight=0, delayed=0, running=5),
            policy(min_tasks=2),
            Memory(last_needed_at=NOW - 300),
            2,
            "scale in 5 -> 2: queue and in-flight empty for 300 s (min 2)",
            id="scaling in stops at min tasks",
        ),
        pytest.param(
            Reading(visible=0, in_flight=0, delayed=120, running=0),
            policy(count_delayed=True),
            Memory(),
            3,
            "scale out 0 -> 3: 120 messages (0 visible, 120 delayed) (activation 1, 50 per task)",
            id="delayed messages count when asked",
        ),
        pytest.param(
            Reading(visible=0, in_flight=0, delayed=120, running=0),
            policy(),
            Memory(),
            0,
            "hold 0: queue empty",
            id="delayed messages do not count otherwise",
        ),
        pytest.param(
            Reading(visible=0, in_flight=3, delayed=0, running=0),
            policy(activation_messages=10),
            Memory(),
            1,
            "scale out 0 -> 1: 3 messages (0 visible, 3 in flight) "
            "(floor 1 for the in-flight messages)",
            id="in-flight messages at zero tasks get one even below the activation",
        ),
    ],
)
def test_decide(
    reading: Reading, rules: ScalingPolicy, memory: Memory, desired: int, reason: str
) -> None:
    # When the scaler decides on a reading
    decision = decide(reading, rules, memory, NOW)

    # Then the service gets the count the backlog needs, for the reason a person reads
    assert (decision.desired, decision.reason) == (desired, reason)
    assert decision.backlog_per_task == decision.backlog / max(desired, 1)


def test_a_decision_reports_what_it_rests_on() -> None:
    # When 500 visible, 20 in flight and 7 delayed (not counted) meet 50 a task, max 8
    reading = Reading(visible=500, in_flight=20, delayed=7, running=3)
    decision = decide(reading, policy(), Memory(last_needed_at=NOW - 60), NOW)

    # Then the decision says the backlog, the count wanted, the floor and what to remember
    assert decision == Decision(
        desired=8,
        wanted=8,
        floor=1,
        backlog=520,
        backlog_per_task=65.0,
        reason="scale out 3 -> 8: 520 messages (500 visible, 20 in flight) "
        "(11 needed at 50 per task, max 8)",
        memory=Memory(last_needed_at=NOW),
    )


def test_need_is_remembered_and_a_hold_in_the_cooldown_keeps_the_memory() -> None:
    # Given a service at 4 needed 100 s ago
    memory = Memory(last_needed_at=NOW - 100)

    # When the backlog still needs 4, then needs fewer within the cooldown, then after it
    needed = decide(Reading(200, 0, 0, 4), policy(), memory, NOW)
    cooling = decide(Reading(10, 0, 0, 4), policy(), needed.memory, NOW + 200)
    scaled_in = decide(Reading(10, 0, 0, 4), policy(), cooling.memory, NOW + 300)

    # Then the need is remembered, the hold keeps it, and the scale-in starts a new cooldown
    assert needed.memory == Memory(last_needed_at=NOW)
    assert (cooling.desired, cooling.memory) == (4, Memory(last_needed_at=NOW))
    assert (scaled_in.desired, scaled_in.memory) == (1, Memory(last_needed_at=NOW + 300))


def test_never_below_the_floor_whatever_the_reading_and_memory() -> None:
    # Given every small reading, several policies and memories old and new
    counts = (0, 1, 3, 49, 50, 51, 120, 500)
    policies = [
        policy(),
        policy(activation_messages=100),
        policy(min_tasks=2, activation_messages=10),
        policy(messages_per_task=1, max_tasks=3, cooldown_seconds=0, count_delayed=True),
    ]
    memories = [Memory(), Memory(last_needed_at=NOW), Memory(last_needed_at=NOW - 10_000)]
    readings = itertools.starmap(Reading, itertools.product(counts, counts, (0, 60), range(9)))
    for reading in readings:
        for rules, memory in itertools.product(policies, memories):
            # When the scaler decides
            decision = decide(reading, rules, memory, NOW)

            # Then the in-flight messages keep their tasks and a need is met at once
            assert decision.desired >= decision.floor, (reading, rules, memory)
            if decision.wanted >= reading.running:
                assert decision.desired == max(decision.wanted, decision.floor)
            else:
                assert decision.desired in (reading.running, max(decision.wanted, decision.floor))


@pytest.mark.parametrize(
    ("changes", "field_name"),
    [
        ({"messages_per_task": 0}, "messages_per_task"),
        ({"min_tasks": -1}, "min_tasks"),
        ({"max_tasks": 0}, "max_tasks"),
        ({"min_tasks": 5, "max_tasks": 4}, "max_tasks"),
        ({"activation_messages": 0}, "activation_messages"),
        ({"cooldown_seconds": -1}, "cooldown_seconds"),
        ({"cooldown_seconds": 1.5}, "cooldown_seconds"),
        ({"count_delayed": "yes"}, "count_delayed"),
    ],
)
def test_a_wrong_policy_is_refused_naming_the_field(changes: dict[str, Any], field_name: str):
    with pytest.raises(ValueError, match=f"^{field_name} must be"):
        policy(**changes)


# --------------------------------------------------------------------------- settings

TARGETS = {
    "SCALER_QUEUES": "work-a, work-b.fifo",
    "SCALER_SERVICES": "batch-jobs/consumers-a, batch-jobs/consumers-b",
    "SCALER_STATE_TABLE": "batchwire-idempotency",
}


def test_settings_pair_queues_with_services_in_order_with_defaults() -> None:
    # When the settings hold two targets and nothing else
    settings = load_settings(ScalerSettings, TARGETS)

    # Then target n is the n-th of each list, and the defaults apply
    assert settings.targets == (
        Target(1, "work-a", "batch-jobs", "consumers-a"),
        Target(2, "work-b.fifo", "batch-jobs", "consumers-b"),
    )
    assert settings.policy == ScalingPolicy(
        messages_per_task=50, min_tasks=0, max_tasks=8, activation_messages=1, cooldown_seconds=300
    )
    assert settings.polls_per_minute == 1
    assert str(settings.targets[1]) == (
        "target 2 (queue work-b.fifo -> cluster batch-jobs / service consumers-b)"
    )


def test_settings_convert_every_scaling_variable() -> None:
    environ = {
        **TARGETS,
        "SCALER_MESSAGES_PER_TASK": "50",
        "SCALER_MIN_TASKS": "1",
        "SCALER_MAX_TASKS": "8",
        "SCALER_ACTIVATION_MESSAGES": "5",
        "SCALER_COOLDOWN_SECONDS": "600",
        "SCALER_COUNT_DELAYED": "true",
        "SCALER_POLLS_PER_MINUTE": "6",
    }

    settings = load_settings(ScalerSettings, environ)

    assert settings.policy == ScalingPolicy(50, 1, 8, 5, 600, True)
    assert settings.polls_per_minute == 6


def test_no_queues_means_no_targets_and_needs_no_table() -> None:
    settings = load_settings(ScalerSettings, {"SCALER_QUEUES": "", "SCALER_SERVICES": ""})

    assert settings.targets == ()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        pytest.param(
            {**TARGETS, "SCALER_SERVICES": "batch-jobs/consumers-a"},
            "environment variables SCALER_QUEUES and SCALER_SERVICES must list as many entries, "
            "in the same order (target n is the n-th of each): SCALER_QUEUES has 2, "
            "SCALER_SERVICES has 1",
            id="lists of different lengths",
        ),
        pytest.param(
            {**TARGETS, "SCALER_QUEUES": "work-a, work b"},
            "environment variable SCALER_QUEUES, entry 2 'work b': not a queue name",
            id="a queue name with a space",
        ),
        pytest.param(
            {
                **TARGETS,
                "SCALER_QUEUES": "https://sqs.us-east-1.amazonaws.com/123456789012/work-a, work-b",
            },
            "environment variable SCALER_QUEUES, entry 1 "
            "'https://sqs.us-east-1.amazonaws.com/123456789012/work-a': not a queue name",
            id="a queue URL",
        ),
        pytest.param(
            {**TARGETS, "SCALER_QUEUES": "work-a, " + "q" * 76 + ".fifo"},
            "environment variable SCALER_QUEUES, entry 2 'qqq",
            id="a FIFO queue name over 80 characters",
        ),
        pytest.param(
            {**TARGETS, "SCALER_SERVICES": "batch-jobs/consumers-a, consumers-b"},
            "environment variable SCALER_SERVICES, entry 2 'consumers-b': expected cluster/service",
            id="a service without its cluster",
        ),
        pytest.param(
            {**TARGETS, "SCALER_SERVICES": "batch-jobs/consumers-a, batch-jobs/consumers-a"},
            "environment variable SCALER_SERVICES, entries 1 and 2: both scale "
            "batch-jobs/consumers-a",
            id="one service for two queues",
        ),
        pytest.param(
            {**TARGETS, "SCALER_MIN_TASKS": "3", "SCALER_MAX_TASKS": "2"},
            "environment variables SCALER_MIN_TASKS=3 and SCALER_MAX_TASKS=2",
            id="min above max",
        ),
        pytest.param(
            {**TARGETS, "SCALER_STATE_TABLE": ""},
            "environment variable SCALER_STATE_TABLE is not set",
            id="no state table",
        ),
        pytest.param(
            {**TARGETS, "SCALER_POLLS_PER_MINUTE": "7"},
            "environment variable SCALER_POLLS_PER_MINUTE='7': Expected `int` <= 6",
            id="too many polls",
        ),
        pytest.param(
            {**TARGETS, "SCALER_MESSAGES_PER_TASK": "0"},
            "environment variable SCALER_MESSAGES_PER_TASK='0'",
            id="zero messages per task",
        ),
        pytest.param(
            {**TARGETS, "SCALER_COUNT_DELAYED": "yes"},
            "environment variable SCALER_COUNT_DELAYED='yes'",
            id="count delayed not true or false",
        ),
    ],
)
def test_wrong_settings_are_refused_naming_the_variable_and_entry(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(ScalerSettings, environ)

    assert str(raised.value).startswith(f"ScalerSettings cannot start: {message}".replace("`", ""))


def test_queue_names_take_80_characters_a_fifo_suffix_included() -> None:
    environ = {**TARGETS, "SCALER_QUEUES": f"{'q' * 80}, {'q' * 75}.fifo"}

    assert [t.queue for t in load_settings(ScalerSettings, environ).targets] == [
        "q" * 80,
        "q" * 75 + ".fifo",
    ]


# --------------------------------------------------------------------------- against moto


class FakeClock:
    """Epoch seconds that move only when a test (or the scaler's sleep) moves them."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now
        self.slept: list[float] = []
        self.while_asleep: list[Any] = []  # what happens in the world during each sleep

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if self.while_asleep:
            self.while_asleep.pop(0)()

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class ClockContext:
    """A Lambda context whose deadline runs on the fake clock."""

    clock: FakeClock
    timeout_seconds: float

    def __post_init__(self) -> None:
        self.deadline = self.clock.now + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - self.clock.now) * 1000))


@dataclass
class Rig:
    """moto SQS/ECS/DynamoDB with a cluster; queues and services are made per test."""

    clients: ScalerClients
    cluster: str
    table: str
    task_definition: str
    clock: FakeClock = field(default_factory=FakeClock)
    #: The parameters of each UpdateService call, as the scaler made them.
    updates: list[dict[str, Any]] = field(default_factory=list)

    def target(self, desired: int = 0) -> tuple[str, str]:
        """A new queue and a service at ``desired`` tasks: (queue name, cluster/service)."""
        suffix = uuid.uuid4().hex[:8]
        queue, service = f"work-{suffix}", f"consumers-{suffix}"
        self.clients.sqs.create_queue(QueueName=queue)
        self.clients.ecs.create_service(
            cluster=self.cluster,
            serviceName=service,
            taskDefinition=self.task_definition,
            desiredCount=desired,
        )
        return queue, f"{self.cluster}/{service}"

    def scaler(
        self, *targets: tuple[str, str], polls: int = 1, rules: ScalingPolicy = POLICY
    ) -> Scaler:
        return Scaler(
            targets=tuple(
                Target(number, queue, *path.split("/"))
                for number, (queue, path) in enumerate(targets, 1)
            ),
            policy=rules,
            clients=self.clients,
            memory=ScalerMemory(self.table, self.clients.dynamodb),
            polls_per_minute=polls,
            clock=self.clock,
            sleep=self.clock.sleep,
        )

    def url(self, queue: str) -> str:
        return self.clients.sqs.get_queue_url(QueueName=queue)["QueueUrl"]

    def send(self, queue: str, count: int) -> None:
        """Queue ``count`` messages as producers would."""
        url = self.url(queue)
        for start in range(0, count, 10):
            entries = [
                {"Id": str(n), "MessageBody": f"job {start + n}"}
                for n in range(min(10, count - start))
            ]
            self.clients.sqs.send_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]

    def receive(self, queue: str, count: int) -> list[str]:
        """Take ``count`` messages as consumers would, without deleting them (in flight)."""
        handles: list[str] = []
        while len(handles) < count:
            messages = self.clients.sqs.receive_message(
                QueueUrl=self.url(queue),
                MaxNumberOfMessages=min(10, count - len(handles)),
                VisibilityTimeout=3600,
            ).get("Messages", [])
            assert messages, f"only {len(handles)} messages to receive"
            handles += [message["ReceiptHandle"] for message in messages]
        return handles

    def delete(self, queue: str, handles: list[str]) -> None:
        """Consumers finish the messages they hold."""
        for start in range(0, len(handles), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": handle}
                for n, handle in enumerate(handles[start : start + 10])
            ]
            self.clients.sqs.delete_message_batch(QueueUrl=self.url(queue), Entries=entries)  # type: ignore[arg-type]

    def finish_all(self, queue: str) -> None:
        """Consumers finish every message, queued or held (quicker than one by one)."""
        self.clients.sqs.purge_queue(QueueUrl=self.url(queue))

    def desired(self, path: str) -> int:
        cluster, service = path.split("/")
        [described] = self.clients.ecs.describe_services(cluster=cluster, services=[service])[
            "services"
        ]
        return described["desiredCount"]

    def updated(self) -> list[tuple[str, int]]:
        """The UpdateService calls made: (cluster/service, desiredCount)."""
        return [(f"{u['cluster']}/{u['service']}", u["desiredCount"]) for u in self.updates]


@pytest.fixture
def rig() -> Iterator[Rig]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", REGION)
        table = f"idempotency-{uuid.uuid4().hex[:8]}"
        dynamodb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ecs = boto3.client("ecs", REGION)
        cluster = f"batch-jobs-{uuid.uuid4().hex[:8]}"
        ecs.create_cluster(clusterName=cluster)
        definition = ecs.register_task_definition(
            family=f"consumer-{uuid.uuid4().hex[:8]}",
            containerDefinitions=[{"name": "app", "image": "example/consumer", "memory": 256}],
        )["taskDefinition"]["taskDefinitionArn"]
        clients = ScalerClients(sqs=boto3.client("sqs", REGION), ecs=ecs, dynamodb=dynamodb)
        built = Rig(clients, cluster, table, definition)

        def count_update(params: dict[str, Any], **_: Any) -> None:
            built.updates.append(dict(params))

        ecs.meta.events.register("provide-client-params.ecs.UpdateService", count_update)
        yield built


def test_an_empty_queue_keeps_its_service_at_zero_without_calling_ecs(rig: Rig) -> None:
    # Given a service at zero tasks whose queue is empty
    queue, service = rig.target()

    # When the scaler runs
    [cycle] = rig.scaler((queue, service)).run({})

    # Then the service stays at zero and UpdateService was not called
    assert rig.desired(service) == 0
    assert rig.updated() == []
    assert [o.status for o in cycle.outcomes] == ["held"]


def test_the_first_message_brings_one_task_in_one_run(rig: Rig) -> None:
    # Given a service at zero and one message in its queue
    queue, service = rig.target()
    rig.send(queue, 1)

    # When the scaler runs once
    [cycle] = rig.scaler((queue, service)).run({"scheduledTime": "2026-11-23T02:01:00Z"})

    # Then the service has one task, for the reason the log gives
    assert rig.desired(service) == 1
    assert rig.updated() == [(service, 1)]
    [outcome] = cycle.outcomes
    assert (outcome.status, outcome.decision.reason) == (
        "scaled_out",
        "scale out 0 -> 1: 1 message (activation 1)",
    )
    # ... and the need is remembered for a week under the target's id
    item = rig.clients.dynamodb.get_item(
        TableName=rig.table, Key={"id": {"S": f"batchwire.scaler#{queue}#{service}"}}
    )["Item"]
    assert float(item["last_needed_at"]["N"]) == NOW
    assert int(item["expiration"]["N"]) == int(NOW) + MEMORY_KEEP_SECONDS


def test_a_burst_of_500_messages_brings_the_maximum_of_8_tasks(rig: Rig) -> None:
    # Given a service at zero, 50 messages a task and at most 8 tasks
    queue, service = rig.target()
    rig.send(queue, 500)

    # When the scaler runs once
    [cycle] = rig.scaler((queue, service)).run({})

    # Then the service goes to 8 in one step, each task facing 62.5 messages
    assert rig.desired(service) == 8
    assert rig.updated() == [(service, 8)]
    assert cycle.outcomes[0].decision.backlog_per_task == 62.5


def test_in_flight_messages_hold_the_floor_after_the_cooldown(rig: Rig) -> None:
    # Given 8 tasks after a burst of 500, which finished them, and now hold 120 new ones
    queue, service = rig.target()
    rig.send(queue, 500)
    scaler = rig.scaler((queue, service))
    list(scaler.run({}))
    rig.finish_all(queue)
    rig.send(queue, 120)
    rig.receive(queue, 120)

    # When the scaler runs again after the cooldown
    rig.clock.advance(300)
    [cycle] = scaler.run({})

    # Then 3 tasks stay for the 120 in-flight messages (50 a task), not zero
    assert rig.desired(service) == 3
    assert rig.updated() == [(service, 8), (service, 3)]
    assert cycle.outcomes[0].decision.floor == 3


def test_back_to_zero_one_cooldown_after_queue_and_in_flight_are_empty(rig: Rig) -> None:
    # Given a service scaled out for 60 messages, which its tasks then finish
    queue, service = rig.target()
    rig.send(queue, 60)
    scaler = rig.scaler((queue, service))
    list(scaler.run({}))
    rig.delete(queue, rig.receive(queue, 60))

    # When the scaler runs a minute later, then once the cooldown has passed
    rig.clock.advance(60)
    [early] = scaler.run({})
    after_early = rig.desired(service)
    rig.clock.advance(240)
    [late] = scaler.run({})

    # Then the service keeps its 2 tasks during the cooldown, and goes to 0 after it
    assert after_early == 2
    assert early.outcomes[0].decision.reason == (
        "hold 2: cooldown 240 s of 300 left, then 0 (queue and in-flight empty)"
    )
    assert rig.desired(service) == 0
    assert late.outcomes[0].decision.reason == (
        "scale in 2 -> 0: queue and in-flight empty for 300 s"
    )
    assert rig.updated() == [(service, 2), (service, 0)]


def test_a_missing_queue_fails_naming_its_target_and_changes_no_other(rig: Rig) -> None:
    # Given a first target with work waiting, and a second whose queue does not exist
    queue, service = rig.target()
    rig.send(queue, 100)
    _, other_service = rig.target()

    # When the scaler runs
    with pytest.raises(ConfigurationError) as raised:
        list(rig.scaler((queue, service), ("work-gone", other_service)).run({}))

    # Then the error names the second target and its queue, and no service was changed
    cluster, name = other_service.split("/")
    assert (
        f"target 2 (queue work-gone -> cluster {cluster} / service {name}): "
        "queue work-gone does not exist"
    ) in str(raised.value)
    assert rig.updated() == []
    assert rig.desired(service) == 0


@pytest.mark.parametrize("how", ["never created", "deleted", "cluster missing"])
def test_a_missing_service_fails_naming_its_target_and_changes_no_other(rig: Rig, how: str) -> None:
    # Given a first target with work waiting, and a second whose service does not exist
    queue, service = rig.target()
    rig.send(queue, 100)
    other_queue, other_service = rig.target()
    cluster, name = other_service.split("/")
    expected = f"service {name} does not exist in cluster {cluster}"
    if how == "never created":
        name = "consumers-gone"
        expected = f"service consumers-gone does not exist in cluster {cluster}"
    elif how == "deleted":
        rig.clients.ecs.delete_service(cluster=cluster, service=name)
        expected += " (status INACTIVE)"
    else:
        cluster = "cluster-gone"
        expected = "cluster cluster-gone does not exist"

    # When the scaler runs
    with pytest.raises(ConfigurationError) as raised:
        list(rig.scaler((queue, service), (other_queue, f"{cluster}/{name}")).run({}))

    # Then the error names the second target and what is missing; no service was changed
    assert (
        f"target 2 (queue {other_queue} -> cluster {cluster} / service {name}): {expected}"
    ) in str(raised.value)
    assert "target 1" not in str(raised.value)
    assert rig.updated() == []
    assert rig.desired(service) == 0


def test_two_targets_are_scaled_independently(rig: Rig) -> None:
    # Given one target with 120 messages, another at 5 tasks with an empty queue
    busy_queue, busy = rig.target()
    rig.send(busy_queue, 120)
    idle_queue, idle = rig.target(desired=5)
    scaler = rig.scaler((busy_queue, busy), (idle_queue, idle))

    # When the scaler runs, and again after the cooldown
    list(scaler.run({}))
    first = (rig.desired(busy), rig.desired(idle))
    rig.clock.advance(300)
    list(scaler.run({}))

    # Then the busy one scaled out at once; the idle one went to 0 (nothing remembered for it)
    # and the busy one kept its tasks, its cooldown having started with its need
    assert first == (3, 0)
    assert (rig.desired(busy), rig.desired(idle)) == (3, 0)
    assert rig.updated() == [(busy, 3), (idle, 0)]


def test_three_polls_a_minute_run_three_cycles_20_seconds_apart(rig: Rig) -> None:
    # Given three polls a minute and a message arriving during the first wait
    queue, service = rig.target()
    scaler = rig.scaler((queue, service), polls=3)
    rig.clock.while_asleep.append(lambda: rig.send(queue, 1))

    # When one invocation runs
    cycles = list(scaler.run({}, ClockContext(rig.clock, timeout_seconds=70)))

    # Then three cycles ran 20 s apart, and the message got its task 20 s after the tick
    assert [cycle.number for cycle in cycles] == [1, 2, 3]
    assert rig.clock.slept == [20.0, 20.0]
    assert [cycle.outcomes[0].status for cycle in cycles] == ["held", "scaled_out", "held"]
    assert rig.updated() == [(service, 1)]


def test_polling_stops_early_when_the_invocation_runs_out_of_time(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    # Given six polls a minute in an invocation of 35 s
    queue, service = rig.target()
    scaler = rig.scaler((queue, service), polls=6)

    # When it runs
    cycles = list(scaler.run({}, ClockContext(rig.clock, timeout_seconds=35)))

    # Then it stops before a cycle would start with under 10 s left (at 30 s: 5 s left)
    assert [cycle.number for cycle in cycles] == [1, 2, 3]
    assert rig.clock.slept == [10.0, 10.0]
    assert "scaler stopped after 3 of 6 cycles" in caplog.text


class RacingDynamoDB:
    """The DynamoDB client; ``after_get`` runs once, right after the next GetItem."""

    def __init__(self, dynamodb: Any) -> None:
        self._dynamodb = dynamodb
        self.after_get: list[Any] = []

    def get_item(self, **kwargs: Any) -> Any:
        answer = self._dynamodb.get_item(**kwargs)
        if self.after_get:
            self.after_get.pop(0)()
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dynamodb, name)


def test_a_run_that_lost_the_race_to_another_changes_nothing(rig: Rig) -> None:
    # Given 8 tasks whose queue is empty and no need remembered (this run would scale in)
    queue, service = rig.target(desired=8)
    # ... and an overlapping run that, after this one read the memory, sees a burst
    racing = RacingDynamoDB(rig.clients.dynamodb)
    stale = Scaler(
        targets=(Target(1, queue, *service.split("/")),),
        policy=POLICY,
        clients=ScalerClients(sqs=rig.clients.sqs, ecs=rig.clients.ecs, dynamodb=racing),  # type: ignore[arg-type]
        memory=ScalerMemory(rig.table, racing),  # type: ignore[arg-type]
        clock=rig.clock,
        sleep=rig.clock.sleep,
    )

    def overlapping_run() -> None:
        rig.send(queue, 400)
        list(rig.scaler((queue, service)).run({}))

    racing.after_get.append(overlapping_run)

    # When the first run decides on what it read
    [cycle] = stale.run({})

    # Then it does not scale in: the other run's need stands, the tasks stay
    [outcome] = cycle.outcomes
    assert (outcome.decision.desired, outcome.status) == (0, "lost")
    assert rig.desired(service) == 8
    assert rig.updated() == []


class FailingEcs:
    """The ECS client; UpdateService of ``service`` fails as a throttled call does."""

    def __init__(self, ecs: Any, service: str) -> None:
        self._ecs = ecs
        self.service = service

    def update_service(self, **kwargs: Any) -> Any:
        if kwargs["service"] == self.service:
            error: Any = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
            raise ClientError(error, "UpdateService")
        return self._ecs.update_service(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ecs, name)


def test_a_failed_update_fails_the_cycle_naming_it_after_scaling_the_others(rig: Rig) -> None:
    # Given two targets with work, the first of which ECS will not update
    first_queue, first = rig.target()
    second_queue, second = rig.target()
    rig.send(first_queue, 10)
    rig.send(second_queue, 10)
    scaler = rig.scaler((first_queue, first), (second_queue, second))
    scaler.clients = ScalerClients(
        sqs=rig.clients.sqs,
        ecs=FailingEcs(rig.clients.ecs, first.split("/")[1]),  # type: ignore[arg-type]
        dynamodb=rig.clients.dynamodb,
    )

    # When the scaler runs
    with pytest.raises(ScalingFailed) as raised:
        list(scaler.run({}))

    # Then the second target was scaled, and the error names the first and why
    assert rig.desired(second) == 1
    assert rig.desired(first) == 0
    assert "target 1 (queue" in str(raised.value)
    assert "ThrottlingException" in str(raised.value)
    assert [o.status for o in raised.value.cycle.outcomes] == ["failed", "scaled_out"]
