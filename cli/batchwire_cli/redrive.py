"""Send a failure queue's messages back where they came from, then delete them.

A message is deleted from the failure queue only after it was resent; one that cannot be
resent stays (visible again at once) and is reported with the reason.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from batchwire_cli import invoker
from batchwire_cli.dlq import RECEIVE_BATCH, FailureQueue, find_failure_queue, peek
from batchwire_cli.errors import CliError
from batchwire_cli.output import Report, silent
from batchwire_cli.stack import Stack, aws_errors

#: Failure queues that are an SQS queue's dead-letter queue, and that queue.
SQS_SOURCES = {
    "ChainDeadLetterQueue": "ChainQueue",
    "WorkDeadLetterQueue": "WorkQueue",
    "ExampleWorkDeadLetterQueue": "ExampleWorkQueue",
}
#: Failure queues whose messages name the function to invoke again (on-failure records).
ON_FAILURE_QUEUES = ("FailedInvocationsQueue",)
#: Failure queues of EventBridge Scheduler and EventBridge rules: each message is the input or
#: event that was not delivered, and its message attribute TARGET_ARN names the target.
TARGET_ATTRIBUTE_QUEUES = ("SchedulerDeadLetterQueue",)
TARGET_ATTRIBUTE = "TARGET_ARN"
#: Why the others are not redriven, and what to do by hand.
NOT_REDRIVEN = {
    "SubscriptionDeadLetterQueue": "it is shared by the topics' Lambda and SQS subscriptions "
    "and a message does not say which one failed (republishing would reach every "
    "subscriber): read them with `batchwire dlq show subscriptions` and republish by hand",
    "NotifierRuleDeadLetterQueue": "these are ECS/Batch failure events the notifier never "
    "saw: read them with `batchwire dlq show notifier-rules`; the failures they report "
    "are already over, so delete the messages once read",
    "RetrierDeadLetterQueue": "these are ECS tasks the retrier gave up on: fix the cause and "
    "start the task again with aws ecs run-task, then delete the messages",
}
#: How long a received message stays hidden while it is being moved.
MOVE_VISIBILITY_SECONDS = 60
#: The message attribute fields SendMessage accepts.
ATTRIBUTE_FIELDS = ("DataType", "StringValue", "BinaryValue")


def _url(stack: Stack, logical_id: str) -> str:
    url = stack.physical_id(logical_id) or stack.outputs.get(f"{logical_id}Url")
    if url is None:
        raise CliError(f"queue {logical_id} is not deployed in stack {stack.name}")
    return url


def _arn(sqs: Any, url: str) -> str:
    return str(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    )


def _destination(
    queue: FailureQueue, message: dict[str, Any], functions: frozenset[str] = frozenset()
) -> tuple[str | None, str]:
    """Where a message goes back to (None: it stays) and that place, or why not, in words.
    ``functions``: the names of the stack's functions, the only targets invoked again."""
    if queue.logical_id in SQS_SOURCES:
        return SQS_SOURCES[queue.logical_id], SQS_SOURCES[queue.logical_id]
    if queue.logical_id in TARGET_ATTRIBUTE_QUEUES:
        attribute = message.get("MessageAttributes", {}).get(TARGET_ATTRIBUTE, {})
        target = str(attribute.get("StringValue") or "")
        if not target:
            return None, f"no {TARGET_ATTRIBUTE} message attribute: its target is unknown"
        if invoker.function_name(target) not in functions:
            return None, f"its target {target} is not a function of this stack"
        return f"{TARGET_ATTRIBUTE}:{target}", f"function {invoker.function_name(target)}"
    try:
        record = json.loads(message.get("Body", ""))
    except ValueError:
        record = None
    context = record.get("requestContext") if isinstance(record, dict) else None
    if not isinstance(context, dict) or not context.get("functionArn"):
        return None, "not a Lambda on-failure record (no requestContext.functionArn)"
    if "requestPayload" not in record:
        return None, "the on-failure record has no requestPayload"
    arn = str(context["functionArn"])
    return arn, f"function {invoker.function_name(arn)}"


def _attributes(message: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {key: value[key] for key in ATTRIBUTE_FIELDS if key in value}
        for name, value in message.get("MessageAttributes", {}).items()
    }


def _resend(stack: Stack, sqs: Any, destination: str, message: dict[str, Any]) -> str | None:
    """Send one message back; None when it went, else why not."""
    try:
        if destination in SQS_SOURCES.values():
            sqs.send_message(
                QueueUrl=_url(stack, destination),
                MessageBody=message["Body"],
                MessageAttributes=_attributes(message),
            )
            return None
        if destination.startswith(f"{TARGET_ATTRIBUTE}:"):
            # the undelivered input or event itself, as the schedule or rule would send it
            function, payload = destination.partition(":")[2], json.loads(message["Body"])
        else:
            function, payload = destination, json.loads(message["Body"])["requestPayload"]
        answer = invoker.invoke_function(stack.target, function, payload, asynchronous=True)
    except CliError as error:
        return str(error)
    except (ClientError, BotoCoreError) as error:
        return str(error)
    if answer.status != 202:
        return f"Lambda answered {answer.status} to the asynchronous invoke"
    return None


def _move_task(stack: Stack, sqs: Any, queue: FailureQueue, url: str) -> dict[str, Any] | None:
    """SQS's own redrive (StartMessageMoveTask), when the source queue's redrive policy
    names this queue and the endpoint has the API; None otherwise."""
    source_url = _url(stack, SQS_SOURCES[queue.logical_id])
    with aws_errors(stack.target, f"reading queue {queue.logical_id}"):
        arn = _arn(sqs, url)
        attributes = sqs.get_queue_attributes(
            QueueUrl=source_url, AttributeNames=["QueueArn", "RedrivePolicy"]
        )["Attributes"]
        depth = int(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]["ApproximateNumberOfMessages"]
        )
    policy = json.loads(attributes.get("RedrivePolicy") or "{}")
    if policy.get("deadLetterTargetArn") != arn or not hasattr(sqs, "start_message_move_task"):
        return None
    try:
        started = sqs.start_message_move_task(SourceArn=arn, DestinationArn=attributes["QueueArn"])
    except (ClientError, BotoCoreError):
        return None  # not offered here (moto has no move tasks): move message by message
    return {"task_handle": started.get("TaskHandle"), "approximate_messages": depth}


def redrive_queue(
    stack: Stack,
    name: str,
    dry_run: bool = False,
    limit: int | None = None,
    report: Report = silent,
) -> dict[str, Any]:
    """Move up to ``limit`` (all) messages of a failure queue back; ``dry_run`` moves nothing."""
    queue = find_failure_queue(name)
    if queue.logical_id in NOT_REDRIVEN:
        raise CliError(f"{queue.short_name} is not redriven: {NOT_REDRIVEN[queue.logical_id]}")
    url = _url(stack, queue.logical_id)
    if queue.logical_id in SQS_SOURCES:
        _url(stack, SQS_SOURCES[queue.logical_id])  # the source must be deployed too
    sqs = stack.target.client("sqs")
    result: dict[str, Any] = {
        "queue": queue.logical_id,
        "name": queue.short_name,
        "dry_run": dry_run,
        "method": "messages",
        "messages": [],
    }
    report(f"reading queue {queue.logical_id}")
    if queue.logical_id in SQS_SOURCES and not dry_run and limit is None:
        task = _move_task(stack, sqs, queue, url)
        if task is not None:
            source = SQS_SOURCES[queue.logical_id]
            return {**result, "method": "move-task", "destination": source, **task}
    rows: list[dict[str, Any]] = result["messages"]
    with aws_errors(stack.target, f"redriving queue {queue.logical_id}"):
        if dry_run:
            depth = int(
                sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]["ApproximateNumberOfMessages"]
            )
            wanted = depth if limit is None else min(limit, depth)
            report(f"peeking at {wanted} of the {depth} message(s) of {queue.logical_id}")
            functions = _functions(stack)
            for message in peek(sqs, url, max(wanted, 1), depth):
                destination, where = _destination(queue, message, functions)
                rows.append(
                    _row(message, where, moved=False, problem=None if destination else where)
                )
            return result
        _move_messages(stack, sqs, queue, url, limit, rows, report)
    return result


def _row(message: dict[str, Any], where: str, moved: bool, problem: str | None) -> dict[str, Any]:
    return {
        "message_id": message["MessageId"],
        "destination": where,
        "moved": moved,
        "problem": problem,
    }


def _move_messages(
    stack: Stack,
    sqs: Any,
    queue: FailureQueue,
    url: str,
    limit: int | None,
    rows: list[dict[str, Any]],
    report: Report,
) -> None:
    seen: set[str] = set()
    empty_receives = 0
    functions = _functions(stack)
    while (limit is None or len(rows) < limit) and empty_receives < 2:
        batch = min(RECEIVE_BATCH, RECEIVE_BATCH if limit is None else limit - len(rows))
        received = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=batch,
            VisibilityTimeout=MOVE_VISIBILITY_SECONDS,  # hidden while moved: seen once
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        new = [m for m in received if m["MessageId"] not in seen]
        empty_receives = 0 if new else empty_receives + 1
        for message in received:
            if message["MessageId"] in seen:  # one kept earlier: leave it visible
                _show_again(sqs, url, message)
        for message in new:
            seen.add(message["MessageId"])
            destination, where = _destination(queue, message, functions)
            report(f"redriving queue {queue.logical_id}: message {len(rows) + 1}")
            problem = where if destination is None else _resend(stack, sqs, destination, message)
            if problem is None:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            else:  # it stays: visible again at once, for the next look
                _show_again(sqs, url, message)
            rows.append(_row(message, where, moved=problem is None, problem=problem))


def _functions(stack: Stack) -> frozenset[str]:
    return frozenset(r.physical_id for r in stack.of_type("AWS::Lambda::Function"))


def _show_again(sqs: Any, url: str, message: dict[str, Any]) -> None:
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
