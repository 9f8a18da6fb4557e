"""Queue dispatcher (watchbot): one ECS task per queued SQS message.

:func:`dispatch_messages` takes the SQS event of the work queue and starts, for each
message, one task of the configured task definition whose container gets the message in
its environment (watchbot's names: ``Message``, ``Subject``, ``MessageId``...). What the
task then does with it, and whether it runs again, is the task's and the retrier's
business: a task started here is attempt 1 for the retrier (``startedBy`` is not its
marker), which relaunches it with the same overrides when it fails.

Every record ends in one of five outcomes (:class:`DispatchOutcome`):

- ``started``: RunTask started a task; the message is deleted from the queue.
- ``duplicate``: an earlier delivery of the same message started its task already.
- ``deferred``: no room (``DISPATCHER_MAX_TASKS``), RunTask placed no task
  (``failures[]``) or was throttled; the message comes back after
  ``DISPATCHER_BUSY_BACKOFF_SECONDS`` and nothing is recorded against it.
- ``refused``: the message cannot be run (bad SNS envelope, too large); no RunTask call,
  SQS delivers it again until the queue's redrive policy moves it to the dead-letter queue.
- ``failed``: any other error; SQS delivers it again, then dead-letters it.

Only the first two are successes of the batch; the others are ``batchItemFailures``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import msgspec
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from batchwire.config import IdempotentSettings
from batchwire.errors import RequestError
from batchwire.idempotency import RunOnce
from batchwire.retrier import TRANSIENT_ERROR_CODES, run_task
from batchwire.task_events import MAX_CLIENT_TOKEN, task_family

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_sqs import SQSClient

#: Prefix of the idempotency records the dispatcher writes.
IDEMPOTENCY_PREFIX = "batchwire.dispatcher"
#: ``startedBy`` of every task the dispatcher starts; the retrier takes it for attempt 1.
STARTED_BY = "batchwire-dispatch"
#: The tag that says which message a task was started for.
MESSAGE_ID_TAG = "batchwire:message-id"
#: ECS refuses container overrides (JSON formatting characters included) over this size.
MAX_OVERRIDE_CHARACTERS = 8192

_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_CLUSTER_ARN = re.compile(r"^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:cluster/[A-Za-z0-9_-]{1,255}$")
_TASK_DEFINITION = re.compile(
    r"^(arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition/)?[A-Za-z0-9_-]{1,255}(:[1-9]\d*)?$"
)

DispatchStatus = Literal["started", "duplicate", "deferred", "refused", "failed"]

log = logging.getLogger(__name__)


class DispatcherSettings(IdempotentSettings, frozen=True, kw_only=True):
    """The dispatcher's configuration, one environment variable each (docs/dispatcher.md)."""

    list_variables: ClassVar[frozenset[str]] = frozenset(
        {"DISPATCHER_SUBNETS", "DISPATCHER_SECURITY_GROUPS"}
    )

    #: Cluster name (this account and region) or cluster ARN.
    cluster: Annotated[str, msgspec.Meta(min_length=1)] = msgspec.field(name="DISPATCHER_CLUSTER")
    #: Family (latest ACTIVE revision), family:revision or task definition ARN.
    task_definition: Annotated[str, msgspec.Meta(min_length=1)] = msgspec.field(
        name="DISPATCHER_TASK_DEFINITION"
    )
    container: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] = msgspec.field(
        name="DISPATCHER_CONTAINER"
    )
    launch_type: Literal["FARGATE", "EC2", ""] = msgspec.field(
        name="DISPATCHER_LAUNCH_TYPE", default=""
    )
    capacity_provider: str = msgspec.field(name="DISPATCHER_CAPACITY_PROVIDER", default="")
    subnets: tuple[str, ...] = msgspec.field(name="DISPATCHER_SUBNETS", default=())
    security_groups: tuple[str, ...] = msgspec.field(name="DISPATCHER_SECURITY_GROUPS", default=())
    assign_public_ip: Literal["ENABLED", "DISABLED"] = msgspec.field(
        name="DISPATCHER_ASSIGN_PUBLIC_IP", default="DISABLED"
    )
    max_tasks: Annotated[int, msgspec.Meta(ge=1)] = msgspec.field(name="DISPATCHER_MAX_TASKS")
    work_queue_url: Annotated[str, msgspec.Meta(pattern="^https?://")] = msgspec.field(
        name="DISPATCHER_WORK_QUEUE_URL"
    )
    #: How long a message waits before it comes back when it could not start (SQS: 12 h max).
    busy_backoff_seconds: Annotated[int, msgspec.Meta(ge=0, le=43200)] = msgspec.field(
        name="DISPATCHER_BUSY_BACKOFF_SECONDS", default=60
    )

    def __post_init__(self) -> None:
        if not (_CLUSTER_NAME.match(self.cluster) or _CLUSTER_ARN.match(self.cluster)):
            raise ValueError(
                f"environment variable DISPATCHER_CLUSTER: {self.cluster!r} is neither a "
                "cluster name (letters, digits, - and _) nor a cluster ARN "
                "(arn:aws:ecs:REGION:ACCOUNT:cluster/NAME)"
            )
        if not _TASK_DEFINITION.match(self.task_definition):
            raise ValueError(
                f"environment variable DISPATCHER_TASK_DEFINITION: {self.task_definition!r} is "
                "not a task definition family, family:revision or task definition ARN"
            )
        if bool(self.launch_type) == bool(self.capacity_provider):
            got = (
                f"both are set: {self.launch_type!r} and {self.capacity_provider!r}"
                if self.launch_type
                else "neither is set"
            )
            raise ValueError(
                "environment variables DISPATCHER_LAUNCH_TYPE and DISPATCHER_CAPACITY_PROVIDER: "
                f"set exactly one of the two ({got})"
            )
        if self.fargate and not self.subnets:
            raise ValueError(
                "environment variable DISPATCHER_SUBNETS is empty: Fargate tasks run in awsvpc "
                "mode and need at least one subnet"
            )
        if self.security_groups and not self.subnets:
            raise ValueError(
                "environment variable DISPATCHER_SECURITY_GROUPS is set but DISPATCHER_SUBNETS "
                "is empty: security groups apply to awsvpc tasks only; give the subnets too"
            )

    @property
    def family(self) -> str:
        """The task definition family whose running tasks count against the maximum."""
        return task_family(self.task_definition)

    @property
    def fargate(self) -> bool:
        """Whether the tasks run on Fargate (capacity providers cannot be named fargate*)."""
        return self.launch_type == "FARGATE" or self.capacity_provider.upper().startswith("FARGATE")


@dataclass(frozen=True)
class DispatcherClients:
    ecs: ECSClient
    sqs: SQSClient


@dataclass(frozen=True)
class WorkMessage:
    """One queued message, as the task's container will see it."""

    #: The SQS message id (``MessageId`` in the task's environment, the task's tag).
    message_id: str
    #: What a task is started once per: the SNS MessageId of a notification (SNS may
    #: deliver one notification to the queue twice), else ``sqs:<message id>``.
    identity: str
    message: str
    subject: str
    sent_timestamp: str
    first_receive_timestamp: str
    receive_count: str

    def environment(self) -> list[dict[str, str]]:
        """Watchbot's environment variables for the task's container."""
        values = {
            "Message": self.message,
            "Subject": self.subject,
            "MessageId": self.message_id,
            "SentTimestamp": self.sent_timestamp,
            "ApproximateFirstReceiveTimestamp": self.first_receive_timestamp,
            "ApproximateReceiveCount": self.receive_count,
        }
        return [{"name": name, "value": value} for name, value in values.items()]


def work_message(record: SQSRecord) -> WorkMessage:
    """Read one SQS record; an SNS notification (raw delivery off) is unwrapped.

    Raises RequestError naming the message when a notification has no ``Message``.
    """
    attributes = record.attributes
    envelope = _sns_envelope(record.body)
    message, subject, identity = record.body, "", f"sqs:{record.message_id}"
    if envelope is not None:
        inner = envelope.get("Message")
        if not isinstance(inner, str):
            got = "missing" if inner is None else f"a JSON {type(inner).__name__}, not a string"
            raise RequestError(
                f"message {record.message_id} is an SNS notification without a usable Message",
                [f"body.Message: {got}"],
            )
        message, subject = inner, str(envelope.get("Subject") or "")
        if isinstance(envelope.get("MessageId"), str):
            identity = f"sns:{envelope['MessageId']}"
    return WorkMessage(
        message_id=record.message_id,
        identity=identity,
        message=message,
        subject=subject,
        sent_timestamp=attributes.sent_timestamp or "",
        first_receive_timestamp=attributes.approximate_first_receive_timestamp or "",
        receive_count=attributes.approximate_receive_count or "",
    )


def task_overrides(message: WorkMessage, settings: DispatcherSettings) -> dict[str, Any]:
    """RunTask ``overrides``: the message in the configured container's environment.

    Raises RequestError when they exceed ECS's 8,192 characters (counted as compact JSON,
    as ECS counts them), naming the message, its size and what to do.
    """
    overrides = {
        "containerOverrides": [{"name": settings.container, "environment": message.environment()}]
    }
    size = len(json.dumps(overrides, separators=(",", ":"), ensure_ascii=False))
    if size > MAX_OVERRIDE_CHARACTERS:
        raise RequestError(
            f"message {message.message_id} is {len(message.message.encode()):,} bytes; "
            f"container overrides allow {MAX_OVERRIDE_CHARACTERS:,} characters",
            [
                f"overrides: {size:,} characters with the message's attributes; put large "
                "input in S3 and queue its location (messages through S3 are not supported yet)"
            ],
        )
    return overrides


def build_run_task_request(message: WorkMessage, settings: DispatcherSettings) -> dict[str, Any]:
    """RunTask arguments that start one task for ``message`` (no clientToken yet)."""
    request: dict[str, Any] = {
        "cluster": settings.cluster,
        "taskDefinition": settings.task_definition,
        "count": 1,
        "startedBy": STARTED_BY,
        "overrides": task_overrides(message, settings),
        "tags": [{"key": MESSAGE_ID_TAG, "value": message.message_id}],
    }
    if settings.capacity_provider:
        request["capacityProviderStrategy"] = [
            {"capacityProvider": settings.capacity_provider, "weight": 1}
        ]
    else:
        request["launchType"] = settings.launch_type
    if settings.subnets:
        awsvpc: dict[str, Any] = {"subnets": list(settings.subnets)}
        if settings.security_groups:
            awsvpc["securityGroups"] = list(settings.security_groups)
        if settings.fargate:
            awsvpc["assignPublicIp"] = settings.assign_public_ip
        request["networkConfiguration"] = {"awsvpcConfiguration": awsvpc}
    return request


def client_token(message: WorkMessage) -> str:
    """RunTask's idempotency token for this delivery of ``message`` (64 hex characters).

    ECS answers ConflictException to a token it has seen with other parameters, and the
    environment carries ApproximateReceiveCount, which changes with every delivery: so the
    token covers one delivery (botocore's retries of a call that timed out) and the
    idempotency record covers redeliveries. A delivery after a placement failure gets a
    fresh token, never the earlier answer again.
    """
    seed = f"{STARTED_BY}/{message.identity}/{message.receive_count}"
    return hashlib.sha256(seed.encode()).hexdigest()[:MAX_CLIENT_TOKEN]


def running_tasks(ecs: ECSClient, settings: DispatcherSettings) -> int:
    """Tasks of the configured family that ECS means to keep running in the cluster.

    Counts every revision and every starter (the retrier's relaunches too), pending ones
    included: ``desiredStatus`` RUNNING.
    """
    pages = ecs.get_paginator("list_tasks").paginate(
        cluster=settings.cluster, family=settings.family, desiredStatus="RUNNING"
    )
    return sum(len(page.get("taskArns", [])) for page in pages)


class NotPlaced(Exception):
    """RunTask started no task (``failures[]``) or was throttled: try again later.

    Raised inside the idempotent call, so that no record of it is kept and the next
    delivery of the message can start its task.
    """

    def __init__(self, failures: list[dict[str, str]]) -> None:
        self.failures = failures
        self.throttled = all(f.get("reason") in TRANSIENT_ERROR_CODES for f in failures)
        reasons = ", ".join(sorted({str(f.get("reason")) for f in failures}))
        what = "was throttled" if self.throttled else "placed no task"
        super().__init__(f"RunTask {what}: {reasons}")


@dataclass(frozen=True)
class DispatchOutcome:
    """What became of one message."""

    message_id: str
    status: DispatchStatus
    task_arn: str | None = None
    reason: str | None = None
    problems: tuple[str, ...] = ()
    failures: tuple[dict[str, str], ...] = ()
    #: Seconds until a deferred message comes back (None: the queue's visibility timeout).
    back_in_seconds: int | None = None
    error: str | None = None

    @property
    def done(self) -> bool:
        """Whether the message has its task and can leave the queue."""
        return self.status in ("started", "duplicate")

    def as_dict(self) -> dict[str, Any]:
        fields = {
            "messageId": self.message_id,
            "status": self.status,
            "taskArn": self.task_arn,
            "reason": self.reason,
            "problems": list(self.problems),
            "failures": list(self.failures),
            "backInSeconds": self.back_in_seconds,
            "error": self.error,
        }
        return {key: value for key, value in fields.items() if value not in (None, [])}


@dataclass
class DispatchResult:
    """The answer for Lambda (``batchItemFailures``) and what became of each message."""

    response: dict[str, Any]
    outcomes: list[DispatchOutcome]
    running: int
    max_tasks: int

    def count(self, status: DispatchStatus) -> int:
        """How many messages ended with ``status``."""
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    def summary(self) -> dict[str, Any]:
        """One line for the log: room at the start and the count of each outcome."""
        counts = {
            status: self.count(status)
            for status in ("started", "duplicate", "deferred", "refused", "failed")
        }
        return {"runningBefore": self.running, "maxTasks": self.max_tasks, **counts}


class _NotDone(Exception):
    """Tells the batch processor that a record stays in the queue (the outcome says why)."""


def dispatch_messages(
    event: Mapping[str, Any],
    *,
    settings: DispatcherSettings,
    clients: DispatcherClients,
    once: RunOnce,
    context: LambdaContext | None = None,
) -> DispatchResult:
    """Start one task per message of an SQS event, within ``DISPATCHER_MAX_TASKS``.

    The family's running tasks are counted once per batch; messages beyond the room left
    are deferred. RunTask runs once per message identity (idempotency record and
    clientToken); a placement failure or throttling defers the message and every later one
    of the batch, leaving no record behind. Messages that are not done are returned in
    ``batchItemFailures``; a deferred one gets the busy backoff as visibility timeout.
    An error counting the running tasks fails the whole batch (SQS delivers it again).
    """
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        raise RequestError("not an SQS event", ["Records: expected a non-empty list"])
    running = running_tasks(clients.ecs, settings)
    room = max(0, settings.max_tasks - running)
    outcomes: list[DispatchOutcome] = []
    blocked: list[str] = []  # why RunTask is not worth calling for the rest of the batch

    def handle(record: SQSRecord) -> None:
        nonlocal room
        try:
            outcome = _dispatch_record(record, room, blocked, settings, clients, once)
        except Exception as error:
            outcomes.append(
                DispatchOutcome(
                    record.message_id, "failed", reason=str(error), error=type(error).__name__
                )
            )
            raise
        outcomes.append(outcome)
        if outcome.status == "started":
            room -= 1
        if not outcome.done:
            raise _NotDone(outcome.reason)

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(
        event=dict(event), record_handler=handle, processor=processor, context=context
    )
    return DispatchResult(dict(response), outcomes, running, settings.max_tasks)


def _dispatch_record(
    record: SQSRecord,
    room: int,
    blocked: list[str],
    settings: DispatcherSettings,
    clients: DispatcherClients,
    once: RunOnce,
) -> DispatchOutcome:
    message_id = record.message_id
    try:
        message = work_message(record)
        request = build_run_task_request(message, settings)
    except RequestError as error:
        return DispatchOutcome(
            message_id, "refused", reason=error.summary, problems=tuple(error.problems)
        )
    if room <= 0:
        reason = f"{settings.max_tasks} tasks of family {settings.family} already running"
        return _defer(record, reason, (), settings, clients)
    if blocked:
        return _defer(record, f"not tried: {blocked[0]}", (), settings, clients)

    token = client_token(message)
    started_now: list[str] = []

    def start() -> dict[str, str]:
        answer = run_task(clients.ecs, request, token)
        if "taskArn" not in answer:
            raise NotPlaced(answer["failures"])
        started_now.append(answer["taskArn"])
        return {"taskArn": answer["taskArn"]}

    try:
        started = once.run_once(message.identity, start)
    except NotPlaced as error:
        blocked.append(str(error))
        return _defer(record, str(error), tuple(error.failures), settings, clients)
    except IdempotencyAlreadyInProgressError:
        return DispatchOutcome(
            message_id,
            "failed",
            reason=f"another delivery of {message.identity} is starting its task",
            error="IdempotencyAlreadyInProgressError",
        )
    except (ClientError, BotoCoreError) as error:
        return DispatchOutcome(
            message_id, "failed", reason=f"RunTask: {error}", error=type(error).__name__
        )
    if started_now:
        return DispatchOutcome(message_id, "started", task_arn=started["taskArn"])
    return DispatchOutcome(
        message_id,
        "duplicate",
        task_arn=started["taskArn"],
        reason=f"{message.identity} already started its task",
    )


def _defer(
    record: SQSRecord,
    reason: str,
    failures: tuple[dict[str, str], ...],
    settings: DispatcherSettings,
    clients: DispatcherClients,
) -> DispatchOutcome:
    back_in: int | None = settings.busy_backoff_seconds
    try:
        clients.sqs.change_message_visibility(
            QueueUrl=settings.work_queue_url,
            ReceiptHandle=record.receipt_handle,
            VisibilityTimeout=settings.busy_backoff_seconds,
        )
    except (ClientError, BotoCoreError) as error:
        # Still in the queue: it comes back after the queue's own visibility timeout.
        log.warning("message %s: visibility not changed: %s", record.message_id, error)
        back_in = None
    return DispatchOutcome(
        record.message_id, "deferred", reason=reason, failures=failures, back_in_seconds=back_in
    )


def _sns_envelope(body: str) -> dict[str, Any] | None:
    if not body.lstrip().startswith("{"):
        return None
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        return None
    if isinstance(document, dict) and document.get("Type") == "Notification":
        return document
    return None
