"""`make demo`: the whole batchwire flow on this machine, no AWS account and no Docker.

template.yaml is first deployed into a local engine (an embedded moto server, as
``make local-stack`` does) with a local HTTP server standing in for Slack; every function
then runs as ``make invoke STACK=...`` runs it: the deployed handler with exactly the
environment the local Lambda API reports, fed the events in ``events/``. Each stage is one
function in STAGES: adding a stage is writing a function and listing it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.parse
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.ecs_local import (
    CLUSTER,
    FAMILY,
    delay_queue_event,
    run_scheduled_task,
    stopped_event,
)
from devtools.local_aws import LocalAws, sqs_event
from devtools.local_stack import CONSUMER_QUEUE, LocalStack, running_local_stack
from devtools.slack_receiver import SlackReceiver
from devtools.template import ROOT

EVENTS = ROOT / "events"
#: The scaler's cooldown in the demo (the parameter's default is 300 s).
SCALER_COOLDOWN = 3
STACK_NAME = "batchwire-demo"
#: What the stages need of the deployed stack: a short backoff and three attempts, so the
#: retry stage gives up within seconds; the queue dispatcher on, running the ECS workload's
#: task definition, three tasks at most, and a deferred message back after a second. The
#: Slack secret, the retrier's security group and the dispatcher's subnet and security group
#: (the ECS workload's, created before the deploy) are set by ``running_local_stack``.
PARAMETERS = {
    "RetrierBackoffIntervalSeconds": "1",
    "RetrierBackoffRate": "2",
    "RetrierMaxAttempts": "3",
    "DispatcherTaskFamily": FAMILY,
    "DispatcherClusterName": CLUSTER,
    "DispatcherContainerName": "app",
    "DispatcherMaxTasks": "3",
    "DispatcherBusyBackoffSeconds": "1",
    # the scaler's pair (consumers-work, batch-jobs/consumers) is the local stack's; a short
    # cooldown so the scale stage gets back to zero within seconds
    "ScalerCooldownSeconds": str(SCALER_COOLDOWN),
}


@dataclass
class DemoRun:
    """What every stage can use: the running local stack.

    That is the local engine, the deployed stack, the Slack stand-in and the ECS and Batch
    workloads its functions act on. The deployed notifier already names the secret holding
    the stand-in's URL, so any stage can send a notification through it.
    """

    running: LocalStack

    @property
    def local(self) -> LocalAws:
        return self.running.local

    @property
    def slack(self) -> SlackReceiver:
        return self.running.slack

    def physical_id(self, logical_id: str) -> str:
        """The deployed queue URL, topic ARN, table or function name of a template resource."""
        return self.running.stack.physical_ids[logical_id]

    def invoke(self, function: str, event: Path | dict[str, Any]) -> Any:
        """Run a deployed function as ``make invoke STACK=...`` does; return its result."""
        result, _ = self.invoke_logged(function, event)
        return result

    def invoke_logged(
        self, function: str, event: Path | dict[str, Any]
    ) -> tuple[Any, list[dict[str, Any]]]:
        """Run a deployed function; return its result and the JSON log records it wrote."""
        if isinstance(event, dict):
            path = ROOT / ".venv" / f"demo-{function}.json"
            path.write_text(json.dumps(event))
            event = path
        stack = self.running.stack.name
        completed = subprocess.run(
            [sys.executable, "-m", "devtools.invoke", function, str(event), "--stack", stack],
            env={**os.environ, **self.local.environ},
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"{function} failed:\n{completed.stderr[-3000:]}")
        records = [
            json.loads(line) for line in completed.stderr.splitlines() if line.startswith("{")
        ]
        return json.loads(completed.stdout), records


def say(title: str) -> None:
    print(f"\n==> {title}", flush=True)


def show(label: str, value: Any) -> None:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, default=str)
    print(f"    {label}: {text}".rstrip().replace("\n", "\n    "), flush=True)


def stage_schedule(run: DemoRun) -> None:
    """A schedule fires; the submitter submits its jobs; the same firing again is absorbed."""
    say("EventBridge Scheduler fires events/schedule.json into SubmitterFunction")
    first = run.invoke("SubmitterFunction", EVENTS / "schedule.json")
    batch = run.local.client("batch")
    for job in first["jobs"]:
        detail = batch.describe_jobs(jobs=[job["jobId"]])["jobs"][0]
        show(
            "submitted",
            {
                "jobName": detail["jobName"],
                "jobId": detail["jobId"],
                "jobQueue": detail["jobQueue"],
                "status": detail["status"],
                "dependsOn": detail.get("dependsOn", []),
                "environment": detail.get("container", {}).get("environment", []),
                "command": detail.get("container", {}).get("command", []),
            },
        )
    say("Scheduler delivers the same firing again (at-least-once delivery)")
    second = run.invoke("SubmitterFunction", EVENTS / "schedule.json")
    same = [job["jobId"] for job in second["jobs"]] == [job["jobId"] for job in first["jobs"]]
    count = len(batch.list_jobs(jobQueue="feeds", jobStatus="SUCCEEDED")["jobSummaryList"])
    show("duplicate absorbed", f"{same} (same job ids returned; {count} jobs in the queue)")
    say("The classic cron rule fires its constant input (events/cron-constant.json)")
    cron = run.invoke("SubmitterFunction", EVENTS / "cron-constant.json")
    show("submitted", cron["jobs"])


def lambda_sns_event(notification: dict[str, Any], subscription_arn: str) -> dict[str, Any]:
    """An SNS notification (as an SQS subscriber receives it) shaped as Lambda receives it."""
    renamed = {"SigningCertURL": "SigningCertUrl", "UnsubscribeURL": "UnsubscribeUrl"}
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {renamed.get(key, key): value for key, value in notification.items()},
            }
        ]
    }


def stage_chain(run: DemoRun) -> None:
    """The nightly job publishes to ChainTopic; the chainer submits the consumer job."""
    say("The nightly import finishes and publishes to ChainTopic")
    sns, sqs = run.local.client("sns"), run.local.client("sqs")
    topic_arn = run.physical_id("ChainTopic")
    # moto invokes no Lambda subscribers, so a queue listens on the topic and its copy of
    # the notification is handed to the chainer as Lambda would receive it.
    tap_url = sqs.create_queue(QueueName="demo-chain-tap")["QueueUrl"]
    tap_arn = sqs.get_queue_attributes(QueueUrl=tap_url, AttributeNames=["QueueArn"])
    subscription = sns.subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=tap_arn["Attributes"]["QueueArn"]
    )["SubscriptionArn"]
    message = json.dumps(
        {
            "feed": "broadbean",
            "url": "s3://batchwire-feeds/broadbean/2026-11-23.xml",
            "updatedAt": "2026-11-23T02:41:07Z",
            "items": 1842,
        }
    )
    sns.publish(
        TopicArn=topic_arn,
        Message=message,
        Subject="feed-updated",
        MessageAttributes={"event": {"DataType": "String", "StringValue": "feed-updated"}},
    )
    received = sqs.receive_message(QueueUrl=tap_url, WaitTimeSeconds=2)["Messages"][0]
    event = lambda_sns_event(json.loads(received["Body"]), subscription)
    show("published", {"Subject": "feed-updated", "Message": message, "event": "feed-updated"})

    say("SNS invokes ChainerFunction with the notification")
    first = run.invoke("ChainerFunction", event)
    batch = run.local.client("batch")
    [chained] = first["records"][0]["jobs"]
    detail = batch.describe_jobs(jobs=[chained["jobId"]])["jobs"][0]
    show(
        "chained",
        {
            "jobName": detail["jobName"],
            "jobId": detail["jobId"],
            "jobQueue": detail["jobQueue"],
            "parameters": detail.get("parameters", {}),
            "command": detail.get("container", {}).get("command", []),
            "environment": [
                item
                for item in detail.get("container", {}).get("environment", [])
                if not item["name"].startswith("AWS_BATCH")
            ],
            "tags": detail.get("tags", {}),
        },
    )
    say("SNS delivers the same notification again")
    second = run.invoke("ChainerFunction", event)
    same = second["records"][0]["jobs"] == first["records"][0]["jobs"]
    show("duplicate absorbed", f"{same} (same job id returned, no second job)")


def stage_retry(run: DemoRun) -> None:
    """A scheduled ECS task keeps exiting 1: retried up to the cap, then dead-lettered."""
    say("A scheduled Fargate task (nightly-report) on the ECS cluster batch-jobs keeps failing")
    ecs, sqs = run.local.client("ecs"), run.local.client("sqs")
    workload = run.running.ecs
    delay_queue = run.physical_id("RetrierDelayQueue")
    dead_letter_queue = run.physical_id("RetrierDeadLetterQueue")
    inbox = subscribe_queue(run, "retrier-demo-inbox")
    task = run_scheduled_task(
        ecs,
        workload,
        {"containerOverrides": [{"name": "app", "command": ["report", "--day", "22"]}]},
    )
    show("scheduled run", {"taskArn": task["taskArn"], "startedBy": task["startedBy"]})
    origin = task["taskArn"].rsplit("/", 1)[-1]
    for _ in range(10):
        event = task_stops(ecs, task, {"app": 1, "log-router": 0})
        say(
            f"Task {task['taskArn'].rsplit('/', 1)[-1][:8]} STOPPED (app exited 1): RetrierFunction"
        )
        decided = run.invoke("RetrierFunction", event)
        show("decision", {k: decided.get(k) for k in ("action", "reason", "delaySeconds")})
        if decided["action"] != "retry":
            break
        body = wait_for_message(sqs, delay_queue, decided["delaySeconds"])
        relaunched = run.invoke("RetrierFunction", delay_queue_event(body))
        marker = f"batchwire-retry/{decided['nextAttempt']}/{origin}"
        [arn] = ecs.list_tasks(cluster=workload.cluster_arn, startedBy=marker)["taskArns"]
        task = ecs.describe_tasks(cluster=workload.cluster_arn, tasks=[arn])["tasks"][0]
        show(
            "relaunched after the backoff",
            {
                "batchItemFailures": relaunched["batchItemFailures"],
                "taskArn": task["taskArn"],
                "startedBy": task["startedBy"],
                "overrides": task["overrides"]["containerOverrides"],
            },
        )
    say("The retrier gave up: dead-letter record (RetrierDeadLetterQueue)")
    record = json.loads(wait_for_message(sqs, dead_letter_queue, 0))
    show("record", {k: v for k, v in record.items() if k != "task"} | {"task": "(full ECS detail)"})
    say("... and the notification published on NotificationTopic reaches Slack via the notifier")
    envelope = json.loads(wait_for_message(sqs, inbox, 0))
    show("MessageAttributes.kind", envelope["MessageAttributes"]["kind"]["Value"])
    subscription = f"{run.physical_id('NotificationTopic')}:demo-notifier"
    before = len(run.slack.accepted)
    run.invoke("NotifierFunction", lambda_sns_event(envelope, subscription))
    show("Slack received", [post["text"] for post in run.slack.accepted[before:]])


def task_stops(ecs: Any, task: dict[str, Any], exit_codes: dict[str, int]) -> dict[str, Any]:
    """Play ECS: the task stops with these exit codes; its STOPPED event for the retrier.

    The task is stopped in the local ECS too, so it no longer counts as running (the
    dispatcher counts the family's running tasks).
    """
    ecs.stop_task(
        cluster=task["clusterArn"], task=task["taskArn"], reason="Essential container exited"
    )
    return stopped_event(task, exit_codes)


#: What producers queue for the dispatcher. The demo's tasks for the first three end with
#: exit 0 (done), 3 (rejected: bad input) and 4 (not processed); the fourth finds no room.
WORK = (
    '{"feed": "s3://feeds-inbox/2026-11-23/orders.csv", "rows": 12040}',
    '{"feed": "s3://feeds-inbox/2026-11-23/returns.csv", "rows": -1}',
    '{"feed": "s3://feeds-inbox/2026-11-23/partners.csv", "rows": 1830}',
    '{"feed": "s3://feeds-inbox/2026-11-23/refunds.csv", "rows": 212}',
)


def stage_dispatch(run: DemoRun) -> None:
    """Messages in, tasks out; the retrier owns how each task ends (exit-code contract)."""
    ecs, sqs = run.local.client("ecs"), run.local.client("sqs")
    queue_url = run.physical_id("WorkQueue")
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    poller = WorkQueuePoller(run, queue_url, queue_arn["Attributes"]["QueueArn"])
    inbox = subscribe_queue(run, "dispatcher-demo-inbox")
    environment = run.running.stack.function_environment("DispatcherFunction")
    say(f"Producers send {len(WORK)} messages to WorkQueue")
    for body in WORK:
        message_id = sqs.send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"]
        poller.sent.append(message_id)
        show("sent", f"{message_id[:8]}  {body}")

    max_tasks = environment["DISPATCHER_MAX_TASKS"]
    say(
        f"Lambda's SQS poller (played here) hands them to DispatcherFunction "
        f"(DispatcherMaxTasks={max_tasks})"
    )
    started = poller.dispatch(len(WORK))
    [deferred] = [poller.logged(m, "deferred") for m in poller.sent if m not in started]

    first = started[poller.sent[0]]
    say(f"ECS: task {short_id(first['taskArn'])} stops, app exited 0 (done): RetrierFunction")
    decided = run.invoke("RetrierFunction", task_stops(ecs, first, {"app": 0, "log-router": 0}))
    show("decision", {k: decided.get(k) for k in ("action", "reason")})

    backoff = environment["DISPATCHER_BUSY_BACKOFF_SECONDS"]
    say(f"The deferred message is back after {backoff} s and a task has stopped: it runs now")
    started |= poller.dispatch(1)
    last = started[deferred["messageId"]]

    second = started[poller.sent[1]]
    say(f"ECS: task {short_id(second['taskArn'])} stops, app exited 3 (bad input): RetrierFunction")
    decided = run.invoke("RetrierFunction", task_stops(ecs, second, {"app": 3, "log-router": 0}))
    show("decision", {k: decided.get(k) for k in ("action", "reason", "notified")})
    say("... its task-rejected notice on NotificationTopic reaches Slack via the notifier")
    envelope = json.loads(wait_for_message(sqs, inbox, 0))
    subscription = f"{run.physical_id('NotificationTopic')}:demo-notifier"
    before = len(run.slack.accepted)
    run.invoke("NotifierFunction", lambda_sns_event(envelope, subscription))
    show("Slack received", [post["text"] for post in run.slack.accepted[before:]])

    third = started[poller.sent[2]]
    say(f"ECS: task {short_id(third['taskArn'])} stops, app exited 4 (put aside): RetrierFunction")
    decided = run.invoke("RetrierFunction", task_stops(ecs, third, {"app": 4, "log-router": 0}))
    show("decision", {k: decided.get(k) for k in ("action", "reason", "deadLettered")})
    record = json.loads(wait_for_message(sqs, run.physical_id("RetrierDeadLetterQueue"), 0))
    show(
        "dead-letter record (RetrierDeadLetterQueue)",
        {k: record.get(k) for k in ("kind", "reason", "attempt", "taskArn")}
        | {"Message": container_environment(record["task"])["Message"]},
    )
    running = ecs.list_tasks(cluster=CLUSTER, family=FAMILY, desiredStatus="RUNNING")["taskArns"]
    show("tasks still running", [short_id(arn) for arn in running])
    if running != [last["taskArn"]]:
        raise RuntimeError(f"expected only {last['taskArn']} still running, ECS has {running}")


def container_environment(task: dict[str, Any]) -> dict[str, str]:
    """The dispatched container's environment overrides, by name."""
    [override] = task["overrides"]["containerOverrides"]
    return {item["name"]: item["value"] for item in override.get("environment", [])}


def short_id(task_arn: str) -> str:
    return task_arn.rsplit("/", 1)[-1][:8]


class WorkQueuePoller:
    """Plays Lambda's SQS poller for WorkQueue (moto runs none): receive, invoke the
    dispatcher with the batch, delete the messages it did not report as failures."""

    def __init__(self, run: DemoRun, queue_url: str, queue_arn: str) -> None:
        self.run, self.queue_url, self.queue_arn = run, queue_url, queue_arn
        self.sent: list[str] = []
        self.logs: list[dict[str, Any]] = []
        # moto's own poller would receive each message at every send (counting a delivery)
        # and try to run the function in Docker; this one stands in for it instead
        run.local.client("lambda").update_event_source_mapping(
            UUID=run.physical_id("DispatcherWorkMessages"), Enabled=False
        )

    def dispatch(self, count: int) -> dict[str, dict[str, Any]]:
        """Hand ``count`` messages to DispatcherFunction; the tasks started, by message id."""
        sqs, ecs = self.run.local.client("sqs"), self.run.local.client("ecs")
        messages = self.receive(sqs, count)
        result, self.logs = self.run.invoke_logged(
            "DispatcherFunction", sqs_event(messages, self.queue_arn)
        )
        failed = {item["itemIdentifier"] for item in result["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        [batch] = [log for log in self.logs if log.get("message") == "batch dispatched"]
        show(
            "batch",
            {k: batch[k] for k in ("runningBefore", "maxTasks", "started", "deferred", "refused")},
        )
        started: dict[str, dict[str, Any]] = {}
        for message in messages:
            arn = self.logged(message["MessageId"], "started").get("taskArn")
            if arn is None:
                outcome = self.logged(message["MessageId"], "deferred")
                show(
                    f"deferred {message['MessageId'][:8]}",
                    f"{outcome['reason']}; back in {outcome['backInSeconds']} s",
                )
                continue
            [task] = ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"]
            started[message["MessageId"]] = task
            env = container_environment(task)
            show(
                f"task {short_id(arn)} started",
                f"startedBy {task['startedBy']}, MessageId {env['MessageId'][:8]}, "
                f"ApproximateReceiveCount {env['ApproximateReceiveCount']}, "
                f"Message {env['Message']}",
            )
        show(
            "batchItemFailures",
            [item["itemIdentifier"][:8] for item in result["batchItemFailures"]],
        )
        return started

    def logged(self, message_id: str, status: str) -> dict[str, Any]:
        """The dispatcher's log record of ``message_id`` if its outcome was ``status``."""
        for log in self.logs:
            if log.get("messageId") == message_id and log.get("status") == status:
                return log
        return {}

    def receive(self, sqs: Any, count: int) -> list[dict[str, Any]]:
        """``count`` messages, in the order they were sent (they stay until deleted)."""
        received: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 15
        while len(received) < count and time.monotonic() < deadline:
            answer = sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
            )
            for message in answer.get("Messages", []):
                received[message["MessageId"]] = message
        if len(received) < count:
            raise RuntimeError(f"{len(received)} of {count} messages arrived in {self.queue_url}")
        return sorted(received.values(), key=lambda message: self.sent.index(message["MessageId"]))


def subscribe_queue(run: DemoRun, name: str) -> str:
    """An SQS queue subscribed to NotificationTopic, to read what was published."""
    sqs, sns = run.local.client("sqs"), run.local.client("sns")
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(
        TopicArn=run.physical_id("NotificationTopic"), Protocol="sqs", Endpoint=arn["QueueArn"]
    )
    return url


def wait_for_message(sqs: Any, queue_url: str, delay_seconds: int) -> str:
    """Receive (and delete) one message, waiting out its delay as Lambda's poller would."""
    deadline = time.monotonic() + delay_seconds + 10
    while time.monotonic() < deadline:
        received = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)
        for message in received.get("Messages", []):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            body: str = message["Body"]
            return body
    raise RuntimeError(f"no message arrived in {queue_url}")


def block_kit_builder_link(payload: dict[str, Any]) -> str:
    """A link that opens ``payload``'s blocks in Slack's Block Kit Builder for a preview."""
    blocks = json.dumps({"blocks": payload["blocks"]}, separators=(",", ":"))
    return "https://app.slack.com/block-kit-builder/#" + urllib.parse.quote(blocks, safe="")


def stage_notify(run: DemoRun) -> None:
    """A failing job's error lines and a failed task start reach the local Slack stand-in."""
    say("The job's log group sends its error lines (events/cloudwatch-logs-batch-traceback.json)")
    before = len(run.slack.accepted)
    result = run.invoke("NotifierFunction", EVENTS / "cloudwatch-logs-batch-traceback.json")
    show("notifier", result["alerts"])
    message = run.slack.accepted[before]
    show("Slack received", message)
    show("preview in Block Kit Builder", block_kit_builder_link(message))
    say("CloudWatch Logs delivers the same batch again (at-least-once delivery)")
    run.invoke("NotifierFunction", EVENTS / "cloudwatch-logs-batch-traceback.json")
    reposted = len(run.slack.accepted) - before - 1
    show("new Slack posts", f"{reposted} (the first outcome is replayed)")
    say("An ECS task cannot pull its image (events/ecs-task-stopped-cannotpull.json)")
    run.invoke("NotifierFunction", EVENTS / "ecs-task-stopped-cannotpull.json")
    show("Slack received", run.slack.accepted[-1]["text"])


def stage_alarm(run: DemoRun) -> None:
    """One of the stack's alarms goes off and recovers: AlarmTopic brings both to Slack."""
    topic = run.physical_id("AlarmTopic")
    say("FailedInvocationsAlarm goes into ALARM; AlarmTopic delivers it (events/sns-alarm.json)")
    alarm = json.loads((EVENTS / "sns-alarm.json").read_text())
    alarm["Records"][0]["Sns"]["TopicArn"] = topic
    before = len(run.slack.accepted)
    run.invoke("NotifierFunction", alarm)
    show("Slack received", run.slack.accepted[before]["text"])
    say("SNS delivers the same notification again")
    run.invoke("NotifierFunction", alarm)
    show(
        "new Slack posts", f"{len(run.slack.accepted) - before - 1} (the first outcome is replayed)"
    )
    say("12 minutes later the alarm is OK again (events/sns-alarm-ok.json)")
    ok = json.loads((EVENTS / "sns-alarm-ok.json").read_text())
    ok["Records"][0]["Sns"]["TopicArn"] = topic
    run.invoke("NotifierFunction", ok)
    show("Slack received (saying how long it lasted)", run.slack.accepted[-1]["text"])


def stage_scale(run: DemoRun) -> None:
    """A queue's consumer service follows its backlog: 0, 1, 8, and back to 0."""
    sqs, ecs = run.local.client("sqs"), run.local.client("ecs")
    queue = sqs.get_queue_url(QueueName=CONSUMER_QUEUE)["QueueUrl"]
    environment = run.running.stack.function_environment("ScalerFunction")
    cluster, service = environment["SCALER_SERVICES"].split(",")[0].split("/")

    def tick(what: str) -> None:
        result = run.invoke("ScalerFunction", EVENTS / "scaler-tick.json")
        [target] = result["targets"]
        count = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
        show(what, f"desired count {count['desiredCount']}: {target.get('reason', '')}")

    say(
        f"The scaler runs (events/scaler-tick.json): queue {CONSUMER_QUEUE}, "
        f"service {cluster}/{service}"
    )
    tick("empty queue")
    sqs.send_message(QueueUrl=queue, MessageBody='{"order": 1}')
    tick("first message")
    for start in range(1, 500, 10):
        sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[{"Id": str(n), "MessageBody": f'{{"order": {start + n}}}'} for n in range(10)],
        )
    tick("a burst of 500 (50 per task, Max 8)")
    say("Consumers work the queue empty; the scaler waits its cooldown, then scales in")
    sqs.purge_queue(QueueUrl=queue)
    tick("queue and in-flight empty")
    time.sleep(SCALER_COOLDOWN + 0.5)
    tick(f"{SCALER_COOLDOWN} s later (the cooldown)")


def stage_watch(run: DemoRun) -> None:
    """Two schedules promise their run within an hour: one fires and finishes, the other's
    firing is lost; the watch posts one alert, for the lost one only."""
    from datetime import timedelta

    from devtools.watched import create_watched_schedule, firing_event, next_firing, watch_tick

    lambda_client = run.local.client("lambda")
    submitter = lambda_client.get_function_configuration(
        FunctionName=run.physical_id("SubmitterFunction")
    )
    schedules = {
        name: create_watched_schedule(
            run.local.client("scheduler"),
            group=run.physical_id("ScheduleGroup"),
            name=name,
            target_arn=submitter["FunctionArn"],
            role_arn=submitter["Role"],
            jobs=[
                {
                    "jobName": f"{name}-{{scheduled_time:%Y%m%d}}",
                    "jobQueue": "feeds",
                    "jobDefinition": "feedstream-Broadbean",
                }
            ],
            expect={"withinMinutes": 60},
        )
        for name in ("demo-reports", "demo-exports")
    }
    firing = next_firing(schedules["demo-reports"])
    say(
        f"Schedules demo-reports and demo-exports declare expect withinMinutes=60; at "
        f"{firing:%Y-%m-%d %H:%M} UTC demo-reports fires, demo-exports' firing is lost"
    )
    fired = run.invoke("SubmitterFunction", firing_event(schedules["demo-reports"], firing))
    show("demo-reports submitted", [job["jobName"] for job in fired["jobs"]])
    batch = run.local.client("batch")
    ids = [job["jobId"] for job in fired["jobs"]]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if {job["status"] for job in batch.describe_jobs(jobs=ids)["jobs"]} == {"SUCCEEDED"}:
            break
        time.sleep(0.5)
    tap = subscribe_queue(run, "demo-watch-tap")
    say("The watch runs 61 minutes after the firing, then 5 minutes later")
    for minutes in (61, 66):
        result = run.invoke("WatchFunction", watch_tick(firing + timedelta(minutes=minutes)))
        verdicts = [f"{f['schedule']}: {f['verdict']}" for f in result["findings"]]
        show(f"+{minutes} min", verdicts or "nothing new")
    notice = json.loads(wait_for_message(run.local.client("sqs"), tap, 0))
    say("NotificationTopic delivers the watch's notice to the notifier")
    before = len(run.slack.accepted)
    run.invoke("NotifierFunction", lambda_sns_event(notice, f"{notice['TopicArn']}:notifier"))
    show("Slack received", run.slack.accepted[before]["text"])


STAGES: list[Callable[[DemoRun], None]] = [
    stage_schedule,
    stage_chain,
    stage_notify,
    stage_alarm,
    stage_watch,
    stage_retry,
    stage_dispatch,
    stage_scale,
]


def show_deployed(running: LocalStack) -> None:
    """What the demo runs against: the stack deployed from template.yaml."""
    stack = running.stack
    show("endpoint", running.local.endpoint_url)
    show("Slack stand-in", f"{running.slack.url} (its URL is the webhook secret)")
    show("stack", f"{stack.name}: {sum(stack.created.values())} resources created")
    show("functions", "")
    width = max(len(function) for function in stack.functions())
    for function in stack.functions():
        print(f"      {function:<{width}}  {stack.function_name(function)}", flush=True)
    skipped = [f"{kind} ({len(ids)})" for kind, ids in sorted(stack.skipped.items())]
    show("skipped by the local engine", ", ".join(skipped) or "none")
    show("parameters", " ".join(f"{name}={value}" for name, value in PARAMETERS.items()))
    dispatcher = stack.function_environment("DispatcherFunction")
    show(
        "dispatcher's tasks run in",
        f"subnet {dispatcher['DISPATCHER_SUBNETS']}, security group "
        f"{dispatcher['DISPATCHER_SECURITY_GROUPS']} (the ECS workload's)",
    )


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)
    # The deployed event source mapping makes moto try to run RetrierFunction in Docker when
    # the delay queue gets a message; it fails, leaves the message, and the demo plays the
    # poller's part (wait_for_message), so that attempt's "error running docker" is noise.
    logging.getLogger("moto.awslambda").setLevel(logging.CRITICAL)
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Tried to parse AWS::")
    started = time.monotonic()
    say("Deploying template.yaml into a local engine (moto server on 127.0.0.1)")
    with running_local_stack(PARAMETERS, STACK_NAME) as running:
        say(f"Deployed stack {running.stack.name}; every function below runs as deployed there")
        show_deployed(running)
        run = DemoRun(running)
        for stage in STAGES:
            stage(run)
    say(f"Done in {time.monotonic() - started:.1f} s; the local AWS and Slack are stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
