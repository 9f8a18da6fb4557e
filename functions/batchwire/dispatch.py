"""Queue dispatcher (watchbot): one ECS task per queued SQS message.

:func:`dispatch_messages` takes the SQS event of the work queue and starts, for each
message, one task of the configured task definition whose container gets the message in
its environment (watchbot's names: ``Message``, ``Subject``, ``MessageId``...). A message
too large for ECS's container overrides is put in S3 first (``DISPATCHER_PAYLOAD_BUCKET``)
and the task gets its location, ``MessageS3Uri``, instead of ``Message``. What the
task then does with it, and whether it runs again, is the task's and the retrier's
business: a task started here is attempt 1 for the retrier (``startedBy`` is not its
marker), which relaunches it with the same overrides when it fails.

Every record ends in one of five outcomes (:class:`DispatchOutcome`):

- ``started``: RunTask started a task; the message is deleted from the queue.
- ``duplicate``: an earlier delivery of the same message started its task already.
- ``deferred``: no room (``DISPATCHER_MAX_TASKS``), RunTask placed no task
  (``failures[]``), or RunTask or the S3 upload was throttled; the message comes back after
  ``DISPATCHER_BUSY_BACKOFF_SECONDS`` and nothing is recorded against it.
- ``refused``: the message cannot be run (bad SNS envelope, too large with the S3 route off
  or even with it); no RunTask call. With ``DISPATCHER_DEAD_LETTER_QUEUE_URL`` set it is
  sent there at once, with the reason in its attributes, and leaves the work queue; else
  SQS delivers it again until the queue's redrive policy moves it.
- ``failed``: any other error (the S3 upload refused included: no RunTask call); SQS
  delivers it again, then dead-letters it.

Only the first two are successes of the batch; the others are ``batchItemFailures``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import msgspec
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)
from botocore.exceptions import BotoCoreError, ClientError

from batchwire.config import IdempotentSettings
from batchwire.envelopes import check_sqs_event, sns_notification
from batchwire.errors import RequestError
from batchwire.idempotency import RunOnce
from batchwire.sqs_batch import QueueRecord, partial_batch_response
from batchwire.task_events import MAX_CLIENT_TOKEN, TRANSIENT_ERROR_CODES, run_task, task_family

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

#: Prefix of the idempotency records the dispatcher writes.
IDEMPOTENCY_PREFIX = "batchwire.dispatcher"
#: ``startedBy`` of every task the dispatcher starts; the retrier takes it for attempt 1.
STARTED_BY = "batchwire-dispatch"
#: The tag that says which message a task was started for.
MESSAGE_ID_TAG = "batchwire:message-id"
#: ECS refuses container overrides (JSON formatting characters included) over this size.
MAX_OVERRIDE_CHARACTERS = 8192
#: The variable that replaces ``Message`` when the message went through S3.
MESSAGE_S3_URI = "MessageS3Uri"
#: The attributes of each SQS record a task gets in its environment (SQS sends them all).
SQS_ATTRIBUTES = ("SentTimestamp", "ApproximateFirstReceiveTimestamp", "ApproximateReceiveCount")
#: How a stored message is typed: an SQS message body is text, stored as UTF-8.
PAYLOAD_CONTENT_TYPE = "text/plain; charset=utf-8"
#: S3 error codes worth trying again later (besides any 5xx answer).
S3_TRANSIENT_ERROR_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
    }
)

_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_CLUSTER_ARN = re.compile(r"^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:cluster/[A-Za-z0-9_-]{1,255}$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# What may stand in an object key as it is (S3's safe characters, minus the ones IAM and
# URIs treat specially); any other identity is hashed.
_KEY_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
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
    #: Where a refused message goes at once, with its reason; empty: SQS redrives it, late.
    dead_letter_queue_url: Annotated[str, msgspec.Meta(pattern="^$|^https?://")] = msgspec.field(
        name="DISPATCHER_DEAD_LETTER_QUEUE_URL", default=""
    )
    #: Where messages too large for the overrides go; empty: they are refused.
    payload_bucket: str = msgspec.field(name="DISPATCHER_PAYLOAD_BUCKET", default="")
    #: Key prefix of those messages, the one the dispatcher may write and tasks may read.
    payload_prefix: str = msgspec.field(name="DISPATCHER_PAYLOAD_PREFIX", default="work-messages/")

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
        if self.payload_bucket and not _BUCKET_NAME.match(self.payload_bucket):
            raise ValueError(
                f"environment variable DISPATCHER_PAYLOAD_BUCKET: {self.payload_bucket!r} is "
                "not an S3 bucket name (3-63 lowercase letters, digits, . and -); give the "
                "name, not an ARN or s3:// URI, or leave it empty to turn the S3 route off"
            )
        if not self.payload_prefix.endswith("/"):
            raise ValueError(
                f"environment variable DISPATCHER_PAYLOAD_PREFIX: {self.payload_prefix!r} "
                f"must end with '/', e.g. {self.payload_prefix + '/'!r}: the dispatcher's and "
                "the tasks' policies grant <bucket>/<prefix>*, which without the slash also "
                "covers every key that merely starts with it"
            )

    @property
    def family(self) -> str:
        """The task definition family whose running tasks count against the maximum."""
        return task_family(self.task_definition)

    @property
    def fargate(self) -> bool:
        """Whether the tasks run on Fargate (capacity providers cannot be named fargate*)."""
        return self.launch_type == "FARGATE" or self.capacity_provider.upper().startswith("FARGATE")


class DispatcherClients:
    """The AWS clients the dispatcher calls.

    S3 may be given as a factory: the client is then made on the first large message. Most
    messages never need it, and it costs about 5 MB and 27 ms of cold start (bench/).
    """

    def __init__(
        self,
        ecs: ECSClient,
        sqs: SQSClient,
        s3: S3Client | None = None,
        s3_factory: Callable[[], S3Client] | None = None,
    ) -> None:
        self.ecs = ecs
        self.sqs = sqs
        self._s3 = s3
        self._s3_factory = s3_factory

    @property
    def s3(self) -> S3Client:
        if self._s3 is None:
            if self._s3_factory is None:
                raise RuntimeError("DispatcherClients has no S3 client and no factory for one")
            self._s3 = self._s3_factory()
        return self._s3


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

    def environment(self, message_s3_uri: str | None = None) -> list[dict[str, str]]:
        """Watchbot's environment variables for the task's container.

        With ``message_s3_uri`` the message stays out: ``MessageS3Uri`` says where it is.
        """
        message = {MESSAGE_S3_URI: message_s3_uri} if message_s3_uri else {"Message": self.message}
        values = {
            **message,
            "Subject": self.subject,
            "MessageId": self.message_id,
            "SentTimestamp": self.sent_timestamp,
            "ApproximateFirstReceiveTimestamp": self.first_receive_timestamp,
            "ApproximateReceiveCount": self.receive_count,
        }
        return [{"name": name, "value": value} for name, value in values.items()]


def work_message(record: QueueRecord) -> WorkMessage:
    """Read one SQS record; an SNS notification (raw delivery off) is unwrapped.

    Raises RequestError naming the message when a notification has no ``Message``.
    """
    envelope = sns_notification(record.body)
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
        sent_timestamp=record.attribute("SentTimestamp"),
        first_receive_timestamp=record.attribute("ApproximateFirstReceiveTimestamp"),
        receive_count=record.attribute("ApproximateReceiveCount"),
    )


@dataclass(frozen=True)
class MessagePayload:
    """A message too large for the container overrides, to be put in S3 before its task."""

    bucket: str
    key: str
    body: str

    @property
    def uri(self) -> str:
        """What the task gets as ``MessageS3Uri``."""
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class TaskLaunch:
    """What starting a message's task takes."""

    #: RunTask's arguments (no clientToken yet).
    request: dict[str, Any]
    #: The message to put in S3 before RunTask; None when it travels in the overrides.
    payload: MessagePayload | None = None


def payload_key(message: WorkMessage, settings: DispatcherSettings) -> str:
    """The object key of ``message`` in S3: its identity under the prefix.

    The same on every delivery of the message (SNS's copies included), so a redelivery
    overwrites the object with the same bytes. ``sqs:<id>`` becomes ``<prefix>sqs-<id>``;
    an id with characters S3 or IAM treat specially is replaced by its SHA-256.
    """
    kind, _, name = message.identity.partition(":")
    if not _KEY_SAFE.match(name):
        name = "sha256-" + hashlib.sha256(name.encode()).hexdigest()
    return f"{settings.payload_prefix}{kind}-{name}"


def task_overrides(
    message: WorkMessage, settings: DispatcherSettings, message_s3_uri: str | None = None
) -> dict[str, Any]:
    """RunTask ``overrides``: the message (or its S3 location) in the container's environment."""
    environment = message.environment(message_s3_uri)
    return {"containerOverrides": [{"name": settings.container, "environment": environment}]}


def override_characters(overrides: dict[str, Any]) -> int:
    """The size ECS gives ``overrides``: compact JSON, formatting characters included."""
    return len(json.dumps(overrides, separators=(",", ":"), ensure_ascii=False))


def plan_launch(message: WorkMessage, settings: DispatcherSettings) -> TaskLaunch:
    """How ``message``'s task starts: inline when its overrides fit in 8,192 characters,
    else through S3 when ``DISPATCHER_PAYLOAD_BUCKET`` is set.

    Raises RequestError naming the message, its size and what to do when the overrides do
    not fit: the S3 route is off, or even without the message they pass the limit.
    """
    overrides = task_overrides(message, settings)
    size = override_characters(overrides)
    if size <= MAX_OVERRIDE_CHARACTERS:
        return TaskLaunch(build_run_task_request(message, settings, overrides))
    too_large = (
        f"message {message.message_id} is {len(message.message.encode()):,} bytes; "
        f"container overrides allow {MAX_OVERRIDE_CHARACTERS:,} characters"
    )
    if not settings.payload_bucket:
        raise RequestError(
            f"{too_large} and the S3 route (DISPATCHER_PAYLOAD_BUCKET) is off",
            [
                f"overrides: {size:,} characters with the message's attributes; set "
                "DISPATCHER_PAYLOAD_BUCKET to pass large messages through S3 (the task gets "
                f"{MESSAGE_S3_URI}), or put large input in S3 and queue its location"
            ],
        )
    payload = MessagePayload(
        settings.payload_bucket, payload_key(message, settings), message.message
    )
    overrides = task_overrides(message, settings, payload.uri)
    size = override_characters(overrides)
    if size > MAX_OVERRIDE_CHARACTERS:
        raise RequestError(
            too_large,
            [
                f"overrides: {size:,} characters even with the message in S3 "
                f"({MESSAGE_S3_URI}): the Subject ({len(message.subject):,} characters) and "
                "the other attributes alone pass the limit; send a shorter Subject"
            ],
        )
    return TaskLaunch(build_run_task_request(message, settings, overrides), payload)


def build_run_task_request(
    message: WorkMessage, settings: DispatcherSettings, overrides: dict[str, Any]
) -> dict[str, Any]:
    """RunTask arguments that start one task for ``message`` (no clientToken yet)."""
    request: dict[str, Any] = {
        "cluster": settings.cluster,
        "taskDefinition": settings.task_definition,
        "count": 1,
        "startedBy": STARTED_BY,
        "overrides": overrides,
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


class PayloadNotStored(Exception):
    """The message could not be put in S3, so its task is not started.

    ``transient`` (throttling, 5xx): try again later, like a throttled RunTask. Raised
    inside the idempotent call, so that no record of it is kept.
    """

    def __init__(self, payload: MessagePayload, code: str, detail: str, transient: bool) -> None:
        self.code = code
        self.transient = transient
        advice = {
            "AccessDenied": (
                "; the dispatcher's role needs s3:PutObject on "
                f"arn:aws:s3:::{payload.bucket}/<DISPATCHER_PAYLOAD_PREFIX>* (and "
                "kms:GenerateDataKey when the bucket encrypts with a customer managed key)"
            ),
            "NoSuchBucket": (
                f"; bucket {payload.bucket} does not exist: check DISPATCHER_PAYLOAD_BUCKET"
            ),
        }.get(code, "")
        super().__init__(f"S3 PutObject {payload.uri}: {code}: {detail}{advice}")


def store_message(s3: S3Client, payload: MessagePayload) -> None:
    """Put the message where its task will read it (server-side encryption: the bucket's).

    Raises PayloadNotStored, ``transient`` for throttling and server errors.
    """
    try:
        s3.put_object(
            Bucket=payload.bucket,
            Key=payload.key,
            Body=payload.body.encode(),
            ContentType=PAYLOAD_CONTENT_TYPE,
        )
    except ClientError as error:
        details = error.response.get("Error", {})
        code = str(details.get("Code", "")) or "ClientError"
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        transient = code in S3_TRANSIENT_ERROR_CODES or status >= 500
        raise PayloadNotStored(payload, code, str(details.get("Message", "")), transient) from error
    except BotoCoreError as error:
        raise PayloadNotStored(payload, type(error).__name__, str(error), False) from error


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


class TaskStart:
    """RunTask for one message, after putting a large message in S3 (a Recoverable action
    for OnceStore.run_once: the task is tagged with the message's id, so an attempt whose
    outcome is unknown finds the task it started)."""

    def __init__(
        self,
        message: WorkMessage,
        launch: TaskLaunch,
        settings: DispatcherSettings,
        clients: DispatcherClients,
    ) -> None:
        self.message = message
        self.launch = launch
        self.settings = settings
        self.clients = clients
        #: The task this delivery started or found: counted as started by this delivery.
        self.started_now: list[str] = []

    def __call__(self) -> dict[str, str]:
        if self.launch.payload is not None:
            store_message(self.clients.s3, self.launch.payload)
        answer = run_task(self.clients.ecs, self.launch.request, client_token(self.message))
        if "taskArn" not in answer:
            raise NotPlaced(answer["failures"])
        return self._started(answer["taskArn"])

    def recover(self) -> dict[str, str] | None:
        """The task an earlier delivery started for the message, running or stopped."""
        arn = task_for_message(self.clients.ecs, self.settings, self.message.message_id)
        return None if arn is None else self._started(arn)

    def _started(self, task_arn: str) -> dict[str, str]:
        self.started_now.append(task_arn)
        stored = {"messageS3Uri": self.launch.payload.uri} if self.launch.payload else {}
        return {"taskArn": task_arn, **stored}


def task_for_message(ecs: ECSClient, settings: DispatcherSettings, message_id: str) -> str | None:
    """The ARN of a task of the family started for ``message_id`` (its MESSAGE_ID_TAG)."""
    for status in ("RUNNING", "STOPPED"):
        pages = ecs.get_paginator("list_tasks").paginate(
            cluster=settings.cluster, family=settings.family, desiredStatus=status
        )
        arns = [arn for page in pages for arn in page.get("taskArns", [])]
        for start in range(0, len(arns), 100):
            described = ecs.describe_tasks(
                cluster=settings.cluster, tasks=arns[start : start + 100], include=["TAGS"]
            )
            for task in described.get("tasks", []):
                tags = {tag.get("key"): tag.get("value") for tag in task.get("tags", [])}
                if task.get("startedBy") == STARTED_BY and tags.get(MESSAGE_ID_TAG) == message_id:
                    return str(task["taskArn"])
    return None


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
    #: Where the message was put for its task (None: it went inline).
    message_s3_uri: str | None = None
    #: A refused message was put in the dead-letter queue (it can leave the work queue).
    dead_lettered: bool = False

    @property
    def done(self) -> bool:
        """Whether the message has its task, or was put aside, and can leave the queue."""
        return self.status in ("started", "duplicate") or self.dead_lettered

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
            "messageS3Uri": self.message_s3_uri,
            "deadLettered": self.dead_lettered or None,
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
    """Tells the batch answer that a record stays in the queue (its outcome says why)."""


def dispatch_messages(
    event: Mapping[str, Any],
    *,
    settings: DispatcherSettings,
    clients: DispatcherClients,
    once: RunOnce,
) -> DispatchResult:
    """Start one task per message of an SQS event, within ``DISPATCHER_MAX_TASKS``.

    The family's running tasks are counted once per batch; messages beyond the room left
    are deferred. RunTask runs once per message identity (idempotency record and
    clientToken), after putting a message too large for the overrides in S3; a placement
    failure or throttling defers the message and every later one of the batch, leaving no
    record behind (a throttled S3 upload defers that message only). Messages that are not
    done are returned in ``batchItemFailures``; a deferred one gets the busy backoff as
    visibility timeout.
    An error counting the running tasks fails the whole batch (SQS delivers it again). An
    event no queue could deliver raises RequestError naming its wrong fields, before any call.
    """
    check_sqs_event(event, SQS_ATTRIBUTES)
    running = running_tasks(clients.ecs, settings)
    room = max(0, settings.max_tasks - running)
    outcomes: list[DispatchOutcome] = []
    blocked: list[str] = []  # why RunTask is not worth calling for the rest of the batch

    def handle(record: QueueRecord) -> None:
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

    response = partial_batch_response(event, handle)
    return DispatchResult(dict(response), outcomes, running, settings.max_tasks)


def _dispatch_record(
    record: QueueRecord,
    room: int,
    blocked: list[str],
    settings: DispatcherSettings,
    clients: DispatcherClients,
    once: RunOnce,
) -> DispatchOutcome:
    message_id = record.message_id
    try:
        message = work_message(record)
        launch = plan_launch(message, settings)
    except RequestError as error:
        refused = DispatchOutcome(
            message_id, "refused", reason=error.summary, problems=tuple(error.problems)
        )
        return _put_aside(record, refused, settings, clients)
    if room <= 0:
        reason = f"{settings.max_tasks} tasks of family {settings.family} already running"
        return _defer(record, reason, (), settings, clients)
    if blocked:
        return _defer(record, f"not tried: {blocked[0]}", (), settings, clients)

    start = TaskStart(message, launch, settings, clients)
    started_now = start.started_now
    try:
        started = once.run_once(message.identity, start)
    except NotPlaced as error:
        blocked.append(str(error))
        return _defer(record, str(error), tuple(error.failures), settings, clients)
    except PayloadNotStored as error:
        # S3 is not the cluster: the rest of the batch may still start (inline ones surely)
        if error.transient:
            return _defer(record, str(error), (), settings, clients)
        return DispatchOutcome(message_id, "failed", reason=str(error), error=error.code)
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
    via_s3 = started.get("messageS3Uri")
    if started_now:
        return DispatchOutcome(
            message_id, "started", task_arn=started["taskArn"], message_s3_uri=via_s3
        )
    return DispatchOutcome(
        message_id,
        "duplicate",
        task_arn=started["taskArn"],
        reason=f"{message.identity} already started its task",
        message_s3_uri=via_s3,
    )


def _put_aside(
    record: QueueRecord,
    refused: DispatchOutcome,
    settings: DispatcherSettings,
    clients: DispatcherClients,
) -> DispatchOutcome:
    """Send a refused message to the dead-letter queue now, with why, so a person finds it
    there at once instead of after every redelivery the redrive policy allows."""
    if not settings.dead_letter_queue_url:
        return refused
    why = "; ".join([refused.reason or "refused", *refused.problems])
    attributes = {
        "batchwire-refused": why[:1024],
        "batchwire-message-id": record.message_id,
        "batchwire-receive-count": record.attribute("ApproximateReceiveCount"),
    }
    clients.sqs.send_message(
        QueueUrl=settings.dead_letter_queue_url,
        MessageBody=record.body,
        MessageAttributes={
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
        },
    )
    return replace(refused, dead_lettered=True)


def _defer(
    record: QueueRecord,
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
