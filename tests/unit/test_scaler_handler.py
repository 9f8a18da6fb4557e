"""The scaler's Lambda handler: the scheduler's tick, cycles, metrics and log lines."""

from __future__ import annotations

import importlib
import json
import logging
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batchwire.errors import ConfigurationError, RequestError
from devtools.invoke import LocalContext
from tests.emf import metric_totals

REGION = "us-east-1"
NOW = 1_795_400_000.0
EVENTS = Path(__file__).resolve().parents[2] / "events"
# A run that changes nothing emits BacklogPerTask only, as single metrics of their own
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def tick() -> dict[str, Any]:
    """What EventBridge Scheduler sends with the template's input."""
    event: dict[str, Any] = json.loads((EVENTS / "scaler-tick.json").read_text())
    return event


class FakeClock:
    """Epoch seconds that move only when the test or the scaler's sleep moves them."""

    def __init__(self) -> None:
        self.now = NOW
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class Aws:
    """moto with a state table and a cluster; queues and services are made per test."""

    table: str
    cluster: str
    task_definition: str
    clock: FakeClock = field(default_factory=FakeClock)
    #: Every AWS call the handler's clients made: "ecs.UpdateService"...
    calls: list[str] = field(default_factory=list)

    def target(self, messages: int = 0, desired: int = 0) -> tuple[str, str]:
        """A queue holding ``messages`` and a service at ``desired``: (queue, cluster/service)."""
        suffix = uuid.uuid4().hex[:8]
        queue, service = f"work-{suffix}", f"consumers-{suffix}"
        sqs = boto3.client("sqs", REGION)
        url = sqs.create_queue(QueueName=queue)["QueueUrl"]
        for number in range(messages):
            sqs.send_message(QueueUrl=url, MessageBody=f"job {number}")
        boto3.client("ecs", REGION).create_service(
            cluster=self.cluster,
            serviceName=service,
            taskDefinition=self.task_definition,
            desiredCount=desired,
        )
        return queue, f"{self.cluster}/{service}"

    def desired(self, path: str) -> int:
        cluster, service = path.split("/")
        [described] = boto3.client("ecs", REGION).describe_services(
            cluster=cluster, services=[service]
        )["services"]
        return described["desiredCount"]

    def count(self, operation: str) -> int:
        return self.calls.count(operation)


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        table = f"idempotency-{uuid.uuid4().hex[:8]}"
        boto3.client("dynamodb", REGION).create_table(
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
        yield Aws(table, cluster, definition)


Loader = Callable[..., ModuleType]


@pytest.fixture
def load_scaler(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Loader]:
    """Import the handler module afresh (a cold start) for the given targets and settings;
    its clock and sleep are the test's, its AWS calls are counted."""

    def load(*targets: tuple[str, str], **environ: str) -> ModuleType:
        settings = {
            "POWERTOOLS_SERVICE_NAME": "scaler",
            "SCALER_QUEUES": ",".join(queue for queue, _ in targets),
            "SCALER_SERVICES": ",".join(service for _, service in targets),
            "SCALER_MESSAGES_PER_TASK": "50",
            "SCALER_MIN_TASKS": "0",
            "SCALER_MAX_TASKS": "8",
            "SCALER_ACTIVATION_MESSAGES": "1",
            "SCALER_COOLDOWN_SECONDS": "300",
            "SCALER_POLLS_PER_MINUTE": "1",
            "SCALER_STATE_TABLE": aws.table,
            **environ,
        }
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        sys.modules.pop("scaler", None)  # handlers read their settings at import
        module = importlib.import_module("scaler")
        # A cold start is a new process; here the logger keeps the handler an earlier import
        # gave it, writing to that test's captured stdout, closed since
        for handler in logging.getLogger("scaler").handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.stream = sys.stdout
        module.scaler.clock = aws.clock
        module.scaler.sleep = aws.clock.sleep

        def record(event_name: str, **_: Any) -> None:
            aws.calls.append(event_name.removeprefix("before-call."))

        for client in (module.clients.sqs, module.clients.ecs, module.clients.dynamodb):
            client.meta.events.register("before-call", record)
        return module

    yield load
    sys.modules.pop("scaler", None)


def invoke(module: ModuleType, event: Any) -> Any:
    context = LocalContext(
        function_name="ScalerFunction", memory_limit_in_mb=256, timeout_seconds=70, region=REGION
    )
    return module.handler(event, context)


def backlog_per_task(output: str) -> dict[str, list[float]]:
    """The BacklogPerTask datapoints printed, by their ``target`` dimension."""
    points: dict[str, list[float]] = {}
    for line in output.splitlines():
        if '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            if [m["Name"] for m in directive["Metrics"]] == ["BacklogPerTask"]:
                assert directive["Dimensions"] == [["target", "service"]]
                points.setdefault(document["target"], []).extend(document["BacklogPerTask"])
    return points


def test_the_sample_tick_brings_a_task_to_a_queue_with_a_message_and_reports_it(
    aws: Aws,
    load_scaler: Loader,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given two targets at zero tasks: one message waits in the first queue, none in the other
    first, second = aws.target(messages=1), aws.target()
    module = load_scaler(first, second)

    # When Scheduler's tick arrives
    answer = invoke(module, tick())

    # Then the first service has a task, the second none, and the answer says so
    assert (aws.desired(first[1]), aws.desired(second[1])) == (1, 0)
    assert aws.count("ecs.UpdateService") == 1
    assert (answer["cycles"], answer["scaledOut"], answer["scaledIn"]) == (1, 1, 0)
    assert [(t["target"], t["status"], t["desired"]) for t in answer["targets"]] == [
        (first[1], "scaled_out", 1),
        (second[1], "held", 0),
    ]
    # ... the metrics count the scale-out, and give each target its backlog per task
    output = capsys.readouterr().out
    assert metric_totals(output)["ScaledOut"] == 1
    assert "ScaledIn" not in metric_totals(output)
    assert backlog_per_task(output) == {first[1]: [1.0], second[1]: [0.0]}
    # ... and one INFO line gives the change's reason; the target left alone has none
    infos = [r.getMessage() for r in caplog.records if r.levelname == "INFO"]
    assert f"{first[1]}: scale out 0 -> 1: 1 message (activation 1)" in infos
    assert not [line for line in infos if line.startswith(second[1])]


def test_three_polls_a_minute_make_three_cycles_with_the_injected_sleep(
    aws: Aws, load_scaler: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given three polls a minute and two targets, one with 120 messages
    busy, idle = aws.target(messages=120), aws.target()
    module = load_scaler(busy, idle, SCALER_POLLS_PER_MINUTE="3")

    # When one tick arrives
    answer = invoke(module, tick())

    # Then three cycles ran, 20 s apart on the injected clock, and only the first scaled
    assert aws.clock.slept == [20.0, 20.0]
    assert (answer["cycles"], answer["planned"], answer["scaledOut"]) == (3, 3, 1)
    assert aws.count("ecs.UpdateService") == 1
    assert aws.desired(busy[1]) == 3
    # ... and each target has three datapoints of its own: 120 messages over 3 tasks
    assert backlog_per_task(capsys.readouterr().out) == {
        busy[1]: [40.0, 40.0, 40.0],
        idle[1]: [0.0, 0.0, 0.0],
    }


def test_a_scale_in_after_the_cooldown_is_counted(
    aws: Aws,
    load_scaler: Loader,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a service scaled out for 60 messages, which its tasks then finished
    queue, service = aws.target(messages=60)
    module = load_scaler((queue, service))
    invoke(module, tick())
    sqs = boto3.client("sqs", REGION)
    sqs.purge_queue(QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"])
    capsys.readouterr()

    # When the tick comes again once the cooldown has passed
    aws.clock.now += 300
    answer = invoke(module, tick())

    # Then the service is back to zero, counted once as a scale-in, with its reason
    assert aws.desired(service) == 0
    assert answer["scaledIn"] == 1
    metrics = metric_totals(capsys.readouterr().out)
    assert metrics["ScaledIn"] == 1
    assert "ScaledOut" not in metrics
    assert f"{service}: scale in 2 -> 0: queue and in-flight empty for 300 s" in [
        r.getMessage() for r in caplog.records if r.levelname == "INFO"
    ]


@pytest.mark.parametrize("event", ["tick", ["scheduledTime"], None, 60])
def test_an_event_that_is_not_an_object_is_refused_before_any_aws_call(
    aws: Aws, load_scaler: Loader, caplog: pytest.LogCaptureFixture, event: Any
) -> None:
    # Given the scaler with a target that has work waiting
    target = aws.target(messages=5)
    module = load_scaler(target)

    # When it is invoked with something other than a JSON object
    with pytest.raises(RequestError) as raised:
        invoke(module, event)

    # Then the error names the event and what it is, and nothing was read or changed
    assert raised.value.problems[0].startswith(
        '(event): expected a JSON object such as {"scheduledTime": "..."}, '
        f"got {type(event).__name__}"
    )
    assert aws.calls == []
    assert aws.desired(target[1]) == 0
    [error] = [r for r in caplog.records if r.levelname == "ERROR" and r.name == "scaler"]
    assert "nothing was read or changed" in error.getMessage()


def test_no_targets_means_nothing_is_done_and_the_log_says_so(
    aws: Aws, load_scaler: Loader, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the scaler deployed with no queues (and so no services)
    module = load_scaler()

    # When the tick arrives
    answer = invoke(module, tick())

    # Then nothing is called, and the log says why
    assert answer == {"cycles": 0, "planned": 0, "scaledOut": 0, "scaledIn": 0, "targets": []}
    assert aws.calls == []
    assert "no targets: SCALER_QUEUES is empty, nothing to scale" in caplog.text


def test_a_missing_service_fails_the_invocation_naming_it_and_changes_nothing(
    aws: Aws,
    load_scaler: Loader,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a target with work waiting, and a second whose service was never created
    first = aws.target(messages=5)
    queue, _ = aws.target()
    module = load_scaler(first, (queue, f"{aws.cluster}/consumers-gone"))

    # When the tick arrives
    with pytest.raises(ConfigurationError):
        invoke(module, tick())

    # Then no service was changed; the ERROR line names the second target and what is missing
    assert aws.count("ecs.UpdateService") == 0
    assert aws.desired(first[1]) == 0
    [error] = [r for r in caplog.records if r.levelname == "ERROR" and r.name == "scaler"]
    assert (
        f"target 2 (queue {queue} -> cluster {aws.cluster} / service consumers-gone): "
        f"service consumers-gone does not exist in cluster {aws.cluster}"
    ) in error.getMessage()
    # ... and the failure is counted
    assert metric_totals(capsys.readouterr().out)["ScalingFailed"] == 1


def test_lists_of_different_lengths_stop_the_cold_start_naming_both(
    aws: Aws, load_scaler: Loader
) -> None:
    # Given two queues and one service
    first, second = aws.target(), aws.target()

    # When the function starts
    with pytest.raises(ConfigurationError) as raised:
        load_scaler(first, second, SCALER_SERVICES=first[1])

    # Then the error names both variables and how many entries each has
    assert "SCALER_QUEUES has 2, SCALER_SERVICES has 1" in str(raised.value)
