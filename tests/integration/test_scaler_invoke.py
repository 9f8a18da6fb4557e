"""ScalerFunction as `make invoke` runs it against a deployed stack: the issue's acceptance.

A real SQS queue and ECS service in the moto server; each scaler run is the deployed
function with events/scaler-tick.json, what EventBridge Scheduler sends every minute.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from devtools.ecs_local import EcsWorkload, create_consumer_service, create_ecs_workload
from devtools.rehearse import DeployedStack
from tests.integration.invoke import (
    ROOT,
    SKIPPED_TYPES,
    Invocation,
    LocalStack,
    deploy_stack,
    invoke,
)

pytestmark = [pytest.mark.integration, SKIPPED_TYPES]

TICK = ROOT / "events" / "scaler-tick.json"
#: Short enough to wait for in a test, long enough for a test step to fit in it; the
#: parameter's default is 300.
COOLDOWN = 45  # a step here takes up to ~20 s on a loaded CI machine


@dataclass
class Target:
    local: LocalStack
    stack: DeployedStack
    queue_url: str
    service: str  # cluster/service

    def run(self) -> Invocation:
        return invoke(self.stack, "ScalerFunction", TICK)

    def scale(self) -> int:
        run = self.run()
        assert run.returncode == 0, run.stderr[-3000:]
        return self.desired()

    def desired(self) -> int:
        cluster, name = self.service.split("/")
        [service] = self.local.client("ecs").describe_services(cluster=cluster, services=[name])[
            "services"
        ]
        count: int = service["desiredCount"]
        return count

    def send(self, count: int) -> None:
        sqs = self.local.client("sqs")
        for start in range(0, count, 10):
            entries = [
                {"Id": str(n), "MessageBody": f'{{"item": {start + n}}}'}
                for n in range(min(10, count - start))
            ]
            sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)

    def receive(self, count: int) -> list[str]:
        """Take ``count`` messages in hand (in flight), as consumers do; their receipts."""
        sqs = self.local.client("sqs")
        handles: list[str] = []
        while len(handles) < count:
            batch = sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, count - len(handles)),
                VisibilityTimeout=600,
            ).get("Messages", [])
            assert batch, "the queue ran out of messages"
            handles += [message["ReceiptHandle"] for message in batch]
        return handles

    def delete(self, handles: list[str]) -> None:
        sqs = self.local.client("sqs")
        for start in range(0, len(handles), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": handle}
                for n, handle in enumerate(handles[start : start + 10])
            ]
            sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)


@pytest.fixture(scope="module")
def workload(local_stack: LocalStack) -> EcsWorkload:
    return create_ecs_workload(local_stack.client("ec2"), local_stack.client("ecs"))


def new_target(local_stack: LocalStack, workload: EcsWorkload) -> tuple[str, str, str]:
    """A queue and a consumer service at 0 tasks of their own: (queue name, URL, service)."""
    name = f"work-{uuid.uuid4().hex[:8]}"
    url = local_stack.client("sqs").create_queue(QueueName=name)["QueueUrl"]
    service = create_consumer_service(local_stack.client("ecs"), workload, f"consumers-{name}")
    return name, url, service


@pytest.fixture(scope="module")
def target(local_stack: LocalStack, workload: EcsWorkload) -> Target:
    """The stack deployed with one pair: MessagesPerTask 50, Max 8, a 3-second cooldown."""
    name, url, service = new_target(local_stack, workload)
    parameters = {
        "ScalerQueueNames": name,
        "ScalerServices": service,
        "ScalerMessagesPerTask": "50",
        "ScalerMaxTasks": "8",
        "ScalerCooldownSeconds": str(COOLDOWN),
    }
    return Target(local_stack, deploy_stack(local_stack.local, parameters), url, service)


def test_acceptance_zero_to_one_to_max_and_back_to_zero_after_one_cooldown(
    target: Target,
) -> None:
    # Given an empty queue: the service stays at 0
    assert target.scale() == 0

    # When the first message arrives: one scaler run brings the service to 1
    target.send(1)
    assert target.scale() == 1

    # When a burst brings the backlog to 500 (50 per task, Max 8): 8
    target.send(499)
    assert target.scale() == 8
    needed_at = time.monotonic()

    # When consumers hold 120 messages and the other 380 are done: it holds 8 within the
    # cooldown, then scales in, but never below ceil(120 / 50) = 3
    held = target.receive(120)
    target.delete(target.receive(380))
    assert target.scale() == 8
    wait_until(needed_at + COOLDOWN)
    assert target.scale() == 3
    scaled_in_at = time.monotonic()
    wait_until(scaled_in_at + COOLDOWN)
    assert target.scale() == 3

    # When the last messages are done, the queue and in-flight both empty: it holds for one
    # cooldown, then returns to 0
    target.delete(held)
    emptied_at = time.monotonic()
    assert target.scale() == 3
    wait_until(emptied_at + COOLDOWN)
    assert target.scale() == 0


def wait_until(moment: float) -> None:
    """Sleep until ``moment`` (time.monotonic) and a little after: a cooldown has passed."""
    time.sleep(max(0.0, moment - time.monotonic()) + 0.5)


def test_a_target_that_does_not_exist_fails_naming_it_and_changes_nothing(
    local_stack: LocalStack, workload: EcsWorkload
) -> None:
    # Given a stack whose second pair names a queue that does not exist, and a first pair
    # whose queue has a message (a run that acted would scale its service to 1)
    name, url, service = new_target(local_stack, workload)
    local_stack.client("sqs").send_message(QueueUrl=url, MessageBody="{}")
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    stack = deploy_stack(
        local_stack.local,
        {
            "ScalerQueueNames": f"{name},{missing}",
            "ScalerServices": f"{service},{service}-b",
        },
    )

    # When the scaler runs
    run: Any = invoke(stack, "ScalerFunction", TICK)

    # Then it fails, naming the entry and what is missing, and no service was touched
    assert run.returncode == 1
    assert f"queue {missing} does not exist" in run.stderr
    assert "target 2" in run.stderr
    target = Target(local_stack, stack, url, service)
    assert target.desired() == 0
