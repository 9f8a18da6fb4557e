"""The scenarios: one realistic event per function and trigger, and how each trigger
delivers an event again."""

from __future__ import annotations

import contextlib
import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from devtools.faults.world import Invocation, World
from devtools.template import ROOT

EVENTS = ROOT / "events"


class Trigger(Enum):
    """How a function's trigger delivers an event again."""

    #: Lambda's asynchronous invocation (EventBridge, Scheduler, SNS, CloudWatch Logs): a
    #: failed invocation is retried with the same event and request id, twice, then the
    #: event goes to the on-failure destination.
    ASYNC = "Lambda retries the event (same request id)"
    #: An SQS event source: a record that failed, or that the function listed in
    #: batchItemFailures, comes back after the visibility timeout with one receive more.
    SQS = "SQS delivers the record again"
    #: A scheduled tick with no retry: the next tick, a minute later, decides again.
    TICK = "the next tick"


Event = dict[str, Any]


def _event_file(name: str) -> Callable[[World], Event]:
    def load(_: World) -> Event:
        event: Event = json.loads((EVENTS / name).read_text())
        return event

    return load


def fresh(event: Event, number: int) -> Event:
    """``event`` as another firing or message with the same content: the trigger's identity
    of each record made new (EventBridge id, SNS and SQS message ids, a Scheduler firing's
    time moved by ``number`` seconds), so that no cell finds what an earlier cell did."""
    event = copy.deepcopy(event)
    if "schedule" in event and "scheduledTime" in event:
        when = datetime.fromisoformat(str(event["scheduledTime"]).replace("Z", "+00:00"))
        event["scheduledTime"] = (when + timedelta(seconds=number)).isoformat()
    if "detail-type" in event:
        event["id"] = str(uuid.uuid4())
    for record in event.get("Records", []):
        if isinstance(record.get("Sns"), dict):
            record["Sns"]["MessageId"] = str(uuid.uuid4())
        if "messageId" in record:
            record["messageId"] = str(uuid.uuid4())
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                body = json.loads(record["body"])
                if isinstance(body, dict) and body.get("Type") == "Notification":
                    body["MessageId"] = str(uuid.uuid4())
                    record["body"] = json.dumps(body)
    return event


def redelivery(world: World, scenario: Scenario, event: Event, first: Invocation) -> Event:
    """The event as the trigger delivers it after ``first`` (see Trigger); after a delivery
    that succeeded, as the trigger's at-least-once duplicate."""
    if scenario.trigger is Trigger.TICK:
        when = datetime.fromisoformat(str(event["scheduledTime"]).replace("Z", "+00:00"))
        later = when + timedelta(minutes=scenario.tick_minutes)
        return {**event, "scheduledTime": later.isoformat()}
    if scenario.trigger is Trigger.ASYNC:
        return event
    failed = first.failed_records
    records = []
    for record in event["Records"]:
        # a record that succeeded comes again only as SQS's at-least-once duplicate
        if first.status != "records failed" or record["messageId"] in failed:
            copied = copy.deepcopy(record)
            attributes = copied.setdefault("attributes", {})
            count = int(attributes.get("ApproximateReceiveCount", "1"))
            attributes["ApproximateReceiveCount"] = str(count + 1)
            copied["receiptHandle"] = f"{record['receiptHandle']}-again"
            records.append(copied)
    return {"Records": records}


@dataclass(frozen=True)
class Scenario:
    """One realistic event of one trigger of one function."""

    key: str
    function: str
    title: str
    trigger: Trigger
    #: Where the event ends when every delivery fails, and the alarm that sees it.
    exhausted: str
    event: Callable[[World], Event]
    #: The event as the trigger delivers it again after the first delivery.
    redeliver: Callable[[World, Scenario, Event, Invocation], Event] = redelivery
    #: Whether each cell's event gets new trigger identities (see ``fresh``); False for an
    #: event received from a queue, which is new each time anyway.
    freshen: bool = True
    #: A ticking function's schedule: minutes to its next tick.
    tick_minutes: int = 1
    #: The metric of a record the function puts back in its queue on purpose (the
    #: dispatcher's DispatchDeferred): a delivery whose every batch item failure counts
    #: under it did its work, as the run without a fault does.
    deferred_metric: str = ""
    #: The input queue whose messages left after a delivery are side effects (a function
    #: that puts them back): Lambda's poller deletes the records a delivery answered as
    #: done, and the messages left are read back with the others.
    input_queue: str = ""

    def judged(self, delivery: Invocation) -> Invocation:
        """``delivery`` with the records it put back on purpose counted (deferred_metric)."""
        if not self.deferred_metric:
            return delivery
        count = sum(value for name, value in delivery.metrics if name == self.deferred_metric)
        return replace(delivery, deferred=int(count))


def poll_done(world: World, scenario: Scenario, event: Event, delivery: Invocation) -> None:
    """What Lambda's poller does after a delivery from the scenario's input queue: it
    deletes the records the function answered as done (none when it raised)."""
    if not scenario.input_queue or delivery.status not in ("succeeded", "records failed"):
        return
    url = world.physical(scenario.input_queue)
    for record in event["Records"]:
        if record["messageId"] not in delivery.failed_records:
            world.client("sqs").delete_message(QueueUrl=url, ReceiptHandle=record["receiptHandle"])


def _once(world: World, key: str, make: Callable[[], Any]) -> Any:
    """What ``make`` gives, made once per world."""
    if key not in world.made:
        world.made[key] = make()
    return world.made[key]


def _stopped_task(world: World, key: str, exit_code: int, attempt: int = 1) -> Event:
    """The STOPPED event of a task of the ECS workload (started once per world) whose
    container ``app`` exited ``exit_code``; ``attempt`` > 1 marks it a relaunch."""
    from devtools.ecs_local import run_scheduled_task, stopped_event

    def start() -> Event:
        ecs = world.client("ecs")
        task = run_scheduled_task(ecs, world.ecs)
        if attempt > 1:
            origin = task["taskArn"].rsplit("/", 1)[-1]
            task = dict(task, startedBy=f"batchwire-retry/{attempt}/{origin}")
        event: Event = stopped_event(task, {"app": exit_code, "log-router": 0})
        return event

    event: Event = _once(world, key, start)
    return copy.deepcopy(event)


def _relaunch_due(world: World) -> Event:
    """A relaunch message of the retrier's delay queue, due now (the stack's backoff is 0)."""
    from devtools.ecs_local import delay_queue_event

    def make() -> str:
        stopped = _stopped_task(world, "relaunch-origin", 1)
        world.injector.begin()
        done = world.invoke("RetrierFunction", stopped, request_id=str(uuid.uuid4()), cold=True)
        if done.failed:
            raise RuntimeError(f"the retrier did not queue a relaunch: {done.error}")
        sqs = world.client("sqs")
        url = world.physical("RetrierDelayQueue")
        [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
        return str(message["Body"])

    body: str = _once(world, "relaunch-body", make)
    event = delay_queue_event(body)
    event["Records"][0]["messageId"] = "5d6f1b0e-relaunch-0001"
    return event


def _work_message(size: int) -> Callable[[World], Event]:
    """A producer's message in WorkQueue, received as Lambda's poller receives it."""

    def make(world: World) -> Event:
        body = json.dumps({"feed": "s3://feeds-inbox/2026-11-23/orders.csv", "rows": 12040})
        if size:
            body = json.dumps({"feed": "orders", "rows": ["x" * 99] * (size // 100)})
        world.client("sqs").send_message(QueueUrl=world.physical("WorkQueue"), MessageBody=body)
        return world.receive_input("WorkQueue")

    return make


def _work_message_at_capacity(world: World) -> Event:
    """A producer's message in WorkQueue while the task family already runs its
    DISPATCHER_MAX_TASKS tasks (a schedule's, started before the message arrived)."""
    from devtools.ecs_local import run_scheduled_task

    environment = world.setup("DispatcherFunction").environment
    for _ in range(int(environment["DISPATCHER_MAX_TASKS"])):
        run_scheduled_task(world.client("ecs"), world.ecs)
    world.as_found()
    return _work_message(0)(world)


def _work_redelivery(world: World, scenario: Scenario, event: Event, first: Invocation) -> Event:
    """WorkQueue's messages received again: Lambda's poller deleted those the dispatcher
    did not list as failures; the others come back after their visibility timeout (after a
    delivery that succeeded, every message comes back, as SQS's at-least-once duplicate,
    unless the scenario's poller deleted it already)."""
    sqs = world.client("sqs")
    url = world.physical("WorkQueue")
    for record in event["Records"]:
        if first.status == "records failed" and record["messageId"] not in first.failed_records:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=record["receiptHandle"])
        elif not (scenario.input_queue and first.status == "succeeded"):
            sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
            )
    return world.receive_input("WorkQueue")


def _backlog(world: World) -> Event:
    """A tick with 60 messages waiting for the consumer service (50 a task: 2 tasks needed),
    sent once: the scaler only counts them."""

    def send() -> None:
        for start in range(0, 60, 10):
            world.client("sqs").send_message_batch(
                QueueUrl=world.consumer_queue,
                Entries=[{"Id": str(n), "MessageBody": f"work {start + n}"} for n in range(10)],
            )

    _once(world, "backlog", send)
    return {"scheduledTime": "2026-11-23T02:01:00Z"}


def _job_without_environment(world: World) -> Event:
    """The success of a job whose event carries no container environment (a multi-node or
    EKS job): the chainer reads the finished job's chain position with DescribeJobs."""

    def submit() -> str:
        answer = world.client("batch").submit_job(
            jobName="nightly-20261123",
            jobQueue="feeds",
            jobDefinition="feedstream-Broadbean",
            containerOverrides={
                "environment": [
                    {"name": "BATCHWIRE_CHAIN_ID", "value": "nightly-20261123"},
                    {"name": "BATCHWIRE_CHAIN_HOP", "value": "0"},
                ]
            },
        )
        return str(answer["jobArn"])

    job_arn: str = _once(world, "finished-job", submit)
    event = _event_file("batch-job-succeeded.json")(world)
    detail = event["detail"]
    del detail["container"]
    detail["jobArn"], detail["jobId"] = job_arn, job_arn.rsplit("/", 1)[-1]
    event["resources"] = [job_arn]
    return event


def _missed_firing(world: World) -> Event:
    """The watch's tick an hour after a firing of a watched schedule that never came."""
    from devtools.watched import create_watched_schedule, next_firing, watch_tick

    def make() -> Event:
        submitter = world.client("lambda").get_function_configuration(
            FunctionName=world.stack.function_name("SubmitterFunction")
        )
        schedule = create_watched_schedule(
            world.client("scheduler"),
            group=world.physical("ScheduleGroup"),
            name="nightly-watched",
            target_arn=submitter["FunctionArn"],
            role_arn=submitter["Role"],
            jobs=[
                {
                    "jobName": "nightly-watched-{scheduled_time:%Y%m%d}",
                    "jobQueue": "feeds",
                    "jobDefinition": "feedstream-Broadbean",
                }
            ],
            expect={"withinMinutes": 60},
        )
        return watch_tick(next_firing(schedule) + timedelta(minutes=61))

    event: Event = _once(world, "watch-tick", make)
    return copy.deepcopy(event)


_ON_FAILURE = "FailedInvocationsQueue (the on-failure destination; FailedInvocationsAlarm)"
SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "submitter-scheduler",
        "SubmitterFunction",
        "Submitter: an EventBridge Scheduler firing of two jobs (events/schedule.json)",
        Trigger.ASYNC,
        _ON_FAILURE,
        _event_file("schedule.json"),
    ),
    Scenario(
        "submitter-cron-rule",
        "SubmitterFunction",
        "Submitter: a cron rule's constant input (events/cron-constant.json)",
        Trigger.ASYNC,
        _ON_FAILURE,
        _event_file("cron-constant.json"),
    ),
    Scenario(
        "chainer-sns",
        "ChainerFunction",
        "Chainer: a job's message on ChainTopic (events/sns-job-finished.json)",
        Trigger.ASYNC,
        _ON_FAILURE,
        _event_file("sns-job-finished.json"),
    ),
    Scenario(
        "chainer-sqs",
        "ChainerFunction",
        "Chainer: a message of ChainQueue (events/sqs-chain-batch.json, its second record)",
        Trigger.SQS,
        "ChainDeadLetterQueue after ChainMaxReceiveCount receives (ChainDeadLetterAlarm)",
        lambda world: {"Records": _event_file("sqs-chain-batch.json")(world)["Records"][1:2]},
    ),
    Scenario(
        "chainer-batch-job-succeeded",
        "ChainerFunction",
        "Chainer: a Batch job succeeded (events/batch-job-succeeded.json)",
        Trigger.ASYNC,
        _ON_FAILURE,
        _event_file("batch-job-succeeded.json"),
    ),
    Scenario(
        "chainer-batch-job-without-environment",
        "ChainerFunction",
        "Chainer: a multi-node job succeeded (no environment in its event: DescribeJobs)",
        Trigger.ASYNC,
        _ON_FAILURE,
        _job_without_environment,
    ),
    Scenario(
        "notifier-logs",
        "NotifierFunction",
        "Notifier: error lines of a job's log (events/cloudwatch-logs-batch-traceback.json)",
        Trigger.ASYNC,
        _ON_FAILURE,
        _event_file("cloudwatch-logs-batch-traceback.json"),
    ),
    Scenario(
        "notifier-ecs-task-failed",
        "NotifierFunction",
        "Notifier: an ECS task that failed to start (events/ecs-task-stopped-cannotpull.json)",
        Trigger.ASYNC,
        _ON_FAILURE,
        _event_file("ecs-task-stopped-cannotpull.json"),
    ),
    Scenario(
        "notifier-batch-job-failed",
        "NotifierFunction",
        "Notifier: a Batch job that failed (events/batch-job-failed.json)",
        Trigger.ASYNC,
        _ON_FAILURE,
        _event_file("batch-job-failed.json"),
    ),
    Scenario(
        "notifier-retrier-notice",
        "NotifierFunction",
        "Notifier: the retrier's notice (events/sns-task-retries-exhausted.json)",
        Trigger.ASYNC,
        _ON_FAILURE,
        _event_file("sns-task-retries-exhausted.json"),
    ),
    Scenario(
        "notifier-alarm",
        "NotifierFunction",
        "Notifier: a CloudWatch alarm on AlarmTopic (events/sns-alarm.json)",
        Trigger.ASYNC,
        _ON_FAILURE,
        _event_file("sns-alarm.json"),
    ),
    Scenario(
        "retrier-task-failed",
        "RetrierFunction",
        "Retrier: a scheduled task's container exited 1 (a relaunch is queued)",
        Trigger.ASYNC,
        _ON_FAILURE,
        lambda world: _stopped_task(world, "exit-1", 1),
    ),
    Scenario(
        "retrier-relaunch-due",
        "RetrierFunction",
        "Retrier: a relaunch message of RetrierDelayQueue is due (RunTask)",
        Trigger.SQS,
        "FailedInvocationsQueue after 5 receives (redrive; FailedInvocationsAlarm)",
        _relaunch_due,
    ),
    Scenario(
        "retrier-retries-exhausted",
        "RetrierFunction",
        "Retrier: the third run of a task exited 1 (dead-letter record and notice)",
        Trigger.ASYNC,
        _ON_FAILURE,
        lambda world: _stopped_task(world, "exit-1-third-run", 1, attempt=3),
    ),
    Scenario(
        "dispatcher-work-message",
        "DispatcherFunction",
        "Dispatcher: a message of WorkQueue",
        Trigger.SQS,
        "WorkDeadLetterQueue after WorkMaxReceiveCount receives (WorkDeadLetterAlarm)",
        _work_message(0),
        _work_redelivery,
        freshen=False,
    ),
    Scenario(
        "dispatcher-large-message",
        "DispatcherFunction",
        "Dispatcher: a 20 KB message of WorkQueue (through WorkPayloadBucket)",
        Trigger.SQS,
        "WorkDeadLetterQueue after WorkMaxReceiveCount receives (WorkDeadLetterAlarm)",
        _work_message(20_000),
        _work_redelivery,
        freshen=False,
    ),
    Scenario(
        "dispatcher-at-capacity",
        "DispatcherFunction",
        "Dispatcher: a message of WorkQueue while DispatcherMaxTasks tasks of the family run "
        "(deferred)",
        Trigger.SQS,
        "WorkDeadLetterQueue after WorkMaxReceiveCount receives (WorkDeadLetterAlarm)",
        _work_message_at_capacity,
        _work_redelivery,
        freshen=False,
        deferred_metric="DispatchDeferred",
        input_queue="WorkQueue",
    ),
    Scenario(
        "scaler-tick",
        "ScalerFunction",
        "Scaler: a tick with 60 messages waiting for a service at 0 tasks",
        Trigger.TICK,
        "FailedInvocationsQueue at once (no retries: the next tick decides again)",
        _backlog,
    ),
    Scenario(
        "watch-missed-firing",
        "WatchFunction",
        "Watch: a tick after the deadline of a watched schedule's firing that never came",
        Trigger.TICK,
        "FailedInvocationsQueue at once (no retries: the next tick judges again)",
        _missed_firing,
        tick_minutes=5,
    ),
)
SCENARIOS_BY_KEY = {scenario.key: scenario for scenario in SCENARIOS}
