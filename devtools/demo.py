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

from devtools.ecs_local import delay_queue_event, run_scheduled_task, stopped_event
from devtools.local_aws import LocalAws
from devtools.local_stack import LocalStack, running_local_stack
from devtools.slack_receiver import SlackReceiver
from devtools.template import ROOT

EVENTS = ROOT / "events"
STACK_NAME = "batchwire-demo"
#: What the stages need of the deployed stack: a short backoff and three attempts, so the
#: retry stage gives up within seconds. The Slack secret and the retrier's security group
#: are set by ``running_local_stack``.
PARAMETERS = {
    "RetrierBackoffIntervalSeconds": "1",
    "RetrierBackoffRate": "2",
    "RetrierMaxAttempts": "3",
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
        return json.loads(completed.stdout)


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
        event = stopped_event(task, {"app": 1, "log-router": 0})
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


STAGES: list[Callable[[DemoRun], None]] = [stage_schedule, stage_chain, stage_notify, stage_retry]


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
