"""ECS task retrier: a scheduled task stopped; run it again, or tell someone why not.

Two entry points, both idempotent on their trigger's identity:

- :func:`handle_task_stopped` takes the ECS Task State Change (EventBridge, STOPPED)
  and decides (:func:`batchwire.retry_policy.retry_decision`). A retry is not started at
  once: a relaunch message waits out the backoff in the delay queue. Giving up writes a
  dead-letter record and/or publishes a notification.
- :func:`relaunch_when_due` takes a relaunch message from the delay queue and calls
  RunTask. A placement failure (``failures[]``) or throttling is tried again later,
  within its own bound, without using up an attempt.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar

import msgspec
from botocore.exceptions import BotoCoreError, ClientError

from batchwire.config import IdempotentSettings, comma_list
from batchwire.errors import RequestError, describe_validation_error
from batchwire.idempotency import RunOnce, run_once_noting
from batchwire.retry_policy import (
    Backoff,
    RetryDecision,
    RetryPolicy,
    RetryRules,
    retry_decision,
)
from batchwire.task_events import (
    Attempt,
    TaskDetail,
    attempt_of,
    check_run_task_request,
    message_id_of,
    parse_task_state_change,
    run_task,
    subnets_of,
    task_family,
    task_id,
)

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

#: Prefix of the idempotency records the retrier writes.
IDEMPOTENCY_PREFIX = "batchwire.retrier"
#: SQS DelaySeconds cannot exceed 15 minutes; longer waits are re-enqueued.
MAX_SQS_DELAY_SECONDS = 900
MAX_TAGS = 50
OUR_TAGS = ("batchwire:retry-of", "batchwire:attempt")
#: RunTask errors that mean "not now" rather than "never".
OVERRIDE_KEYS = (
    "containerOverrides",
    "cpu",
    "memory",
    "taskRoleArn",
    "executionRoleArn",
    "ephemeralStorage",
    "inferenceAcceleratorOverrides",
)

#: The longest text of a notification's field (what Slack shows of a field).
MAX_NOTICE_TEXT = 2000

NotificationKind = Literal["task-retries-exhausted", "task-rejected"]
DeadLetterKind = Literal["task-retries-exhausted", "task-not-processed"]

log = logging.getLogger(__name__)
ResultT = TypeVar("ResultT")


class RetrierSettings(IdempotentSettings, frozen=True, kw_only=True):
    """The retrier's configuration, one environment variable each (docs/retrier.md)."""

    json_variables: ClassVar[frozenset[str]] = frozenset({"RETRIER_RULES"})
    list_variables: ClassVar[frozenset[str]] = frozenset(
        {"RETRIER_CLUSTERS", "RETRIER_TASK_FAMILIES", "RETRIER_SECURITY_GROUPS"}
    )

    #: Cluster names (this account and region) or full cluster ARNs.
    clusters: Annotated[tuple[str, ...], msgspec.Meta(min_length=1)] = msgspec.field(
        name="RETRIER_CLUSTERS"
    )
    task_families: tuple[str, ...] = msgspec.field(name="RETRIER_TASK_FAMILIES", default=("*",))
    security_groups: tuple[str, ...] = msgspec.field(name="RETRIER_SECURITY_GROUPS", default=())
    assign_public_ip: Literal["ENABLED", "DISABLED"] = msgspec.field(
        name="RETRIER_ASSIGN_PUBLIC_IP", default="DISABLED"
    )
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=20)] = msgspec.field(
        name="RETRIER_MAX_ATTEMPTS", default=3
    )
    containers: Annotated[str, msgspec.Meta(min_length=1)] = msgspec.field(
        name="RETRIER_CONTAINERS", default="essential"
    )
    rules: RetryRules = msgspec.field(name="RETRIER_RULES", default=())
    unknown_stop_code: Literal["RETRY", "EXIT"] = msgspec.field(
        name="RETRIER_UNKNOWN_STOP_CODE", default="EXIT"
    )
    backoff_interval_seconds: Annotated[float, msgspec.Meta(ge=0)] = msgspec.field(
        name="RETRIER_BACKOFF_INTERVAL_SECONDS", default=60.0
    )
    backoff_rate: Annotated[float, msgspec.Meta(ge=1)] = msgspec.field(
        name="RETRIER_BACKOFF_RATE", default=2.0
    )
    backoff_max_delay_seconds: Annotated[float, msgspec.Meta(ge=0)] = msgspec.field(
        name="RETRIER_BACKOFF_MAX_DELAY_SECONDS", default=3600.0
    )
    backoff_jitter: Literal["FULL", "NONE"] = msgspec.field(
        name="RETRIER_BACKOFF_JITTER", default="FULL"
    )
    placement_max_tries: Annotated[int, msgspec.Meta(ge=1, le=20)] = msgspec.field(
        name="RETRIER_PLACEMENT_MAX_TRIES", default=5
    )
    delay_queue_url: Annotated[str, msgspec.Meta(min_length=1)] = msgspec.field(
        name="RETRIER_DELAY_QUEUE_URL"
    )
    dead_letter_queue_url: Annotated[str, msgspec.Meta(min_length=1)] = msgspec.field(
        name="RETRIER_DEAD_LETTER_QUEUE_URL"
    )
    notification_topic_arn: Annotated[str, msgspec.Meta(pattern="^arn:aws")] = msgspec.field(
        name="NOTIFICATION_TOPIC_ARN"
    )

    def __post_init__(self) -> None:
        for cluster in self.clusters:
            if cluster.startswith("arn:") and ":cluster/" not in cluster:
                raise ValueError(
                    f"environment variable RETRIER_CLUSTERS: {cluster!r} is not a cluster ARN "
                    "(arn:aws:ecs:REGION:ACCOUNT:cluster/NAME) nor a cluster name"
                )
            if not cluster.startswith("arn:") and ("/" in cluster or ":" in cluster):
                raise ValueError(
                    f"environment variable RETRIER_CLUSTERS: {cluster!r} is not a cluster name "
                    "(letters, digits, - and _) nor a cluster ARN"
                )

    def covers_cluster(self, cluster_arn: str) -> bool:
        """Whether ``cluster_arn`` is one of the configured clusters (by ARN or by name)."""
        name = cluster_arn.rpartition(":cluster/")[2]
        return any(
            cluster == cluster_arn if cluster.startswith("arn:") else cluster == name
            for cluster in self.clusters
        )

    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.rules, self.unknown_stop_code)

    @property
    def backoff(self) -> Backoff:
        return Backoff(
            self.backoff_interval_seconds,
            self.backoff_rate,
            self.backoff_max_delay_seconds,
            self.backoff_jitter,
        )


@dataclass(frozen=True)
class RetrierClients:
    ecs: ECSClient
    sqs: SQSClient
    sns: SNSClient


class CountedContainers:
    """Which containers' exit codes decide, per task definition revision.

    The ECS event does not say which containers are essential, so in ``essential`` mode
    the task definition is described once per revision (revisions never change) and kept
    for the life of the Lambda container. ``all`` counts every container; any other value
    is a comma-separated list of container names.
    """

    def __init__(self, ecs: ECSClient, mode: str) -> None:
        self.ecs = ecs
        self.mode = mode.strip()
        self._essential: dict[str, frozenset[str]] = {}

    def names(self, task_definition_arn: str) -> frozenset[str] | None:
        if self.mode == "all":
            return None
        if self.mode != "essential":
            return frozenset(comma_list(self.mode))
        if task_definition_arn not in self._essential:
            try:
                described = self.ecs.describe_task_definition(taskDefinition=task_definition_arn)
            except ClientError as error:
                # A deleted revision cannot be described: count every container (the
                # cautious side: more retries, never a failure taken for a success).
                log.warning("cannot learn essential containers, counting all: %s", error)
                return None
            containers = described["taskDefinition"].get("containerDefinitions", [])
            self._essential[task_definition_arn] = frozenset(
                c["name"] for c in containers if c.get("essential", True)
            )
        return self._essential[task_definition_arn]


def out_of_scope(
    cluster_arn: str, task_definition_arn: str, settings: RetrierSettings
) -> str | None:
    """Why a task is none of the retrier's business, or None when it is in scope."""
    if not settings.covers_cluster(cluster_arn):
        return f"cluster {cluster_arn} is not in RETRIER_CLUSTERS"
    family = task_family(task_definition_arn)
    if not any(fnmatchcase(family, glob) for glob in settings.task_families):
        return f"task definition family {family!r} is not in RETRIER_TASK_FAMILIES"
    return None


def build_run_task_request(
    detail: TaskDetail, attempt: Attempt, settings: RetrierSettings, tags: list[dict[str, str]]
) -> dict[str, Any]:
    """RunTask arguments that start ``detail`` again as ``attempt`` (no clientToken yet).

    Same cluster, task definition, group, overrides and platform version. A task whose
    capacity provider is FARGATE_SPOT or an EC2 provider goes back to that provider;
    a plain launch type (ECS reports provider FARGATE for launch type FARGATE) keeps it.
    Subnets come from the event; security groups and assignPublicIp from configuration.
    """
    request: dict[str, Any] = {
        "cluster": detail.clusterArn,
        "taskDefinition": detail.taskDefinitionArn,
        "count": 1,
        "startedBy": attempt.started_by,
    }
    if detail.group:
        request["group"] = detail.group
    overrides = {k: v for k, v in (detail.overrides or {}).items() if k in OVERRIDE_KEYS and v}
    if overrides:
        request["overrides"] = overrides
    provider = detail.capacityProviderName
    if provider and (provider != "FARGATE" or not detail.launchType):
        request["capacityProviderStrategy"] = [{"capacityProvider": provider, "weight": 1}]
    elif detail.launchType:
        request["launchType"] = detail.launchType
    fargate = detail.launchType == "FARGATE" or (provider or "").startswith("FARGATE")
    if detail.platformVersion and fargate:
        request["platformVersion"] = detail.platformVersion
    subnets = subnets_of(detail)
    if subnets:
        awsvpc: dict[str, Any] = {"subnets": subnets}
        if settings.security_groups:
            awsvpc["securityGroups"] = list(settings.security_groups)
        if fargate:
            awsvpc["assignPublicIp"] = settings.assign_public_ip
        request["networkConfiguration"] = {"awsvpcConfiguration": awsvpc}
    if tags:
        request["tags"] = tags
    return request


def tags_for_relaunch(ecs: ECSClient, detail: TaskDetail, attempt: Attempt) -> list[dict[str, str]]:
    """The stopped task's own tags (the event has none), plus where the relaunch came from."""
    copied: list[dict[str, str]] = []
    try:
        described = ecs.describe_tasks(
            cluster=detail.clusterArn, tasks=[detail.taskArn], include=["TAGS"]
        )
        for task in described.get("tasks", []):
            copied = [
                {"key": tag["key"], "value": tag.get("value", "")}
                for tag in task.get("tags", [])
                if "key" in tag
                and not tag["key"].lower().startswith("aws:")
                and tag["key"] not in OUR_TAGS
            ]
    except (BotoCoreError, ClientError) as error:  # the relaunch matters more than its tags
        log.warning("could not read the stopped task's tags: %s", error)
    ours = [
        {"key": "batchwire:retry-of", "value": attempt.origin},
        {"key": "batchwire:attempt", "value": str(attempt.number)},
    ]
    return copied[: MAX_TAGS - len(ours)] + ours


class SideEffects:
    """Runs each side effect once per identity, noting those an earlier delivery already did.

    A result lists those under ``replayed`` (absent when every side effect ran now), so the
    handler counts a relaunch, dead-letter or notification once, by the delivery that
    reports it. A delivery that succeeds made all its side effects and reports them all;
    one that failed after some reported none. So a side effect found done before one that
    runs now was made by a delivery that failed before reporting it: it is not listed,
    and this delivery counts it. (Two deliveries running at the same moment, the second
    overtaking the first between two side effects, may both count the first one.)
    """

    def __init__(self, once: RunOnce) -> None:
        self.once = once
        self.replayed: list[str] = []

    def run(self, effect: str, identity: str, action: Callable[[], ResultT]) -> ResultT:
        done = run_once_noting(self.once, identity, action)
        if done.ran_now:
            # the delivery that made the side effects found done failed before reporting them
            self.replayed.clear()
        else:
            self.replayed.append(effect)
        return done.result

    def noted(self, result: dict[str, Any]) -> dict[str, Any]:
        """``result`` with ``replayed`` added when some side effect was found done."""
        return {**result, "replayed": list(self.replayed)} if self.replayed else result


def handle_task_stopped(
    event: Any,
    *,
    settings: RetrierSettings,
    clients: RetrierClients,
    counted: CountedContainers,
    once: RunOnce,
    now: datetime,
    random: Callable[[], float],
) -> dict[str, Any]:
    """Decide about one STOPPED task and act: schedule a relaunch, dead-letter, notify.

    Every side effect is recorded under the stopped task's ARN, so a duplicate or a
    repeated STOPPED event of the same task acts once. Returns what was done; side effects
    a duplicate found done (``relaunch``, ``dead-letter``, ``notify``) are in ``replayed``.
    """
    change = parse_task_state_change(event)
    detail = change.detail
    result: dict[str, Any] = {"taskArn": detail.taskArn}
    if detail.lastStatus != "STOPPED":
        return {**result, "action": "ignore", "reason": f"lastStatus is {detail.lastStatus}"}
    reason = out_of_scope(detail.clusterArn, detail.taskDefinitionArn, settings)
    if reason:
        return {**result, "action": "ignore", "reason": f"out of scope: {reason}"}

    attempt = attempt_of(detail)
    decision = retry_decision(
        detail, attempt.number, settings.policy, counted.names(detail.taskDefinitionArn)
    )
    result.update(
        action=decision.action,
        reason=decision.reason,
        attempt=attempt.number,
        maxAttempts=settings.max_attempts,
    )
    facts = TaskFacts.of(event, detail, decision)
    effects = SideEffects(once)

    if decision.action == "retry":
        following = attempt.next()
        request = build_run_task_request(
            detail, following, settings, tags_for_relaunch(clients.ecs, detail, following)
        )
        delay = settings.backoff.delay_seconds(attempt.number, random)
        message = {
            "kind": "relaunch",
            "attempt": following.number,
            "origin": following.origin,
            "placementTry": 1,
            "notBefore": (now + timedelta(seconds=delay)).isoformat(),
            "request": request,
            "facts": facts.as_dict(),
        }
        queued = effects.run(
            "relaunch",
            f"{detail.taskArn}#relaunch",
            lambda: _enqueue(clients.sqs, settings, message, delay),
        )
        result.update(nextAttempt=following.number, delaySeconds=queued["delaySeconds"])
    if decision.action in ("exhausted", "park"):
        kind: DeadLetterKind = (
            "task-retries-exhausted" if decision.action == "exhausted" else "task-not-processed"
        )
        record = dead_letter_record(kind, facts, attempt.number, settings.max_attempts, now)
        effects.run(
            "dead-letter",
            f"{detail.taskArn}#dead-letter",
            lambda: _send_dead_letter(clients.sqs, settings, record),
        )
        result["deadLettered"] = kind
    if decision.action in ("exhausted", "reject"):
        note_kind: NotificationKind = (
            "task-retries-exhausted" if decision.action == "exhausted" else "task-rejected"
        )
        note = notification(note_kind, facts, attempt.number, settings.max_attempts)
        effects.run(
            "notify", f"{detail.taskArn}#notify", lambda: _publish(clients.sns, settings, note)
        )
        result["notified"] = note_kind
    return effects.noted(result)


def relaunch_when_due(
    body: Any,
    *,
    settings: RetrierSettings,
    clients: RetrierClients,
    once: RunOnce,
    now: datetime,
    random: Callable[[], float],
) -> dict[str, Any]:
    """Start the relaunch a delay-queue message asks for, once its time has come.

    Before ``notBefore`` the message goes back into the queue for the rest of the wait.
    RunTask is called once per (origin, attempt, placement try), with a clientToken made of
    the same, so a redelivered message never starts a second task. ``failures[]`` and
    throttling schedule the next placement try; after RETRIER_PLACEMENT_MAX_TRIES the
    attempt is given up: dead-letter record and notification. Side effects a redelivered
    message found done (``run``, ``defer``, ``dead-letter``, ``notify``) are in ``replayed``.
    """
    message, parsed = _parse_relaunch(body, clients.ecs)
    attempt = Attempt(parsed.attempt, parsed.origin)
    placement_try = parsed.placementTry
    request: dict[str, Any] = message["request"]
    facts = parsed.facts
    result: dict[str, Any] = {
        "origin": attempt.origin,
        "attempt": attempt.number,
        "placementTry": placement_try,
    }
    reason = out_of_scope(str(request.get("cluster")), str(request.get("taskDefinition")), settings)
    if reason:
        return {**result, "action": "ignore", "reason": f"out of scope: {reason}"}

    remaining = (parsed.notBefore - now).total_seconds()
    if remaining >= 1:
        _enqueue(clients.sqs, settings, message, int(remaining))
        return {**result, "action": "waiting", "delaySeconds": int(remaining)}

    identity = f"{attempt.origin}#{attempt.number}#{placement_try}"
    token = attempt.client_token(placement_try)
    effects = SideEffects(once)
    started = effects.run("run", f"{identity}#run", lambda: run_task(clients.ecs, request, token))
    if "taskArn" in started:
        return effects.noted({**result, "action": "relaunched", "taskArn": started["taskArn"]})

    failures = started["failures"]
    result["failures"] = failures
    if placement_try < settings.placement_max_tries:
        delay = settings.backoff.delay_seconds(placement_try, random)
        retry = {
            **message,
            "placementTry": placement_try + 1,
            "notBefore": (now + timedelta(seconds=delay)).isoformat(),
        }
        effects.run(
            "defer", f"{identity}#defer", lambda: _enqueue(clients.sqs, settings, retry, delay)
        )
        return effects.noted({**result, "action": "deferred", "delaySeconds": delay})

    summary = ", ".join(sorted({str(f.get("reason")) for f in failures}))
    facts = facts.with_reason(
        f"RunTask could not start run {attempt.number} of {settings.max_attempts} after "
        f"{placement_try} tries: {summary}"
    )
    record = dead_letter_record(
        "task-retries-exhausted",
        facts,
        attempt.number,
        settings.max_attempts,
        now,
        extra={"runTask": request, "failures": failures},
    )
    effects.run(
        "dead-letter",
        f"{attempt.origin}#{attempt.number}#dead-letter",
        lambda: _send_dead_letter(clients.sqs, settings, record),
    )
    note = notification("task-retries-exhausted", facts, attempt.number, settings.max_attempts)
    effects.run(
        "notify",
        f"{attempt.origin}#{attempt.number}#notify",
        lambda: _publish(clients.sns, settings, note),
    )
    return effects.noted(
        {
            **result,
            "action": "exhausted",
            "reason": facts.reason,
            "deadLettered": "task-retries-exhausted",
            "notified": "task-retries-exhausted",
        }
    )


@dataclass(frozen=True)
class TaskFacts:
    """What a person needs to know about a stopped task and the retrier's verdict on it."""

    clusterArn: str
    taskArn: str
    taskDefinitionArn: str
    group: str | None
    container: str | None
    exitCode: int | None
    stopCode: str | None
    stoppedReason: str | None
    reason: str
    region: str
    account: str
    eventId: str
    task: dict[str, Any]
    cause: str = ""
    #: The queued message the task was started for (the dispatcher's); None otherwise.
    #: Defaulted, so relaunch messages queued before this field existed still read.
    messageId: str | None = None

    @classmethod
    def of(cls, event: dict[str, Any], detail: TaskDetail, decision: RetryDecision) -> TaskFacts:
        return cls(
            clusterArn=detail.clusterArn,
            taskArn=detail.taskArn,
            taskDefinitionArn=detail.taskDefinitionArn,
            group=detail.group,
            container=decision.container,
            exitCode=decision.exit_code,
            stopCode=detail.stopCode,
            # the whole task travels with the facts: its texts are cut to what a notice shows
            stoppedReason=(
                None if detail.stoppedReason is None else _clipped(detail.stoppedReason)
            ),
            reason=_clipped(decision.reason),
            region=event.get("region") or detail.clusterArn.split(":")[3],
            account=event.get("account") or detail.clusterArn.split(":")[4],
            eventId=str(event.get("id", "")),
            task=event.get("detail", {}),
            cause=_clipped(decision.cause or decision.reason),
            messageId=message_id_of(detail),
        )

    def with_reason(self, reason: str) -> TaskFacts:
        return TaskFacts(**{**self.as_dict(), "reason": reason, "cause": reason})

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def notification(
    kind: NotificationKind, facts: TaskFacts, attempt: int, max_attempts: int
) -> dict[str, Any]:
    """The SNS message the log notifier formats for Slack (contract in docs/retrier.md)."""
    family = task_family(facts.taskDefinitionArn)
    cluster = facts.clusterArn.rsplit("/", 1)[-1]
    where = f"ECS task {family} ({task_id(facts.taskArn)}) in cluster {cluster}"
    if facts.messageId:
        where += f" for message {facts.messageId}"
    if kind == "task-rejected":
        summary = f"{where} was not retried: {facts.cause or facts.reason}"
    else:
        summary = (
            f"{where} failed {attempt} of {max_attempts} runs, giving up: "
            f"{facts.cause or facts.reason}"
        )
    note: dict[str, Any] = {
        "kind": kind,
        "summary": summary,
        "clusterArn": facts.clusterArn,
        "taskArn": facts.taskArn,
        "taskDefinitionArn": facts.taskDefinitionArn,
        "group": facts.group,
        "container": facts.container,
        "exitCode": facts.exitCode,
        "stopCode": facts.stopCode,
        "stoppedReason": facts.stoppedReason,
        "attempt": attempt,
        "maxAttempts": max_attempts,
        "reason": facts.reason,
        "region": facts.region,
        "account": facts.account,
    }
    if facts.messageId:
        note["messageId"] = facts.messageId
    # Slack shows 2,000 characters of a field; an event's far longer text must not push the
    # notice past SNS's 256 KB (Publish would refuse it, and no one would be told)
    return {
        key: _clipped(value) if isinstance(value, str) else value for key, value in note.items()
    }


def _clipped(text: str) -> str:
    return text if len(text) <= MAX_NOTICE_TEXT else text[: MAX_NOTICE_TEXT - 1] + "…"


def dead_letter_record(
    kind: DeadLetterKind,
    facts: TaskFacts,
    attempt: int,
    max_attempts: int,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The dead-letter record: the verdict, and the full task as ECS reported it.

    ``messageId`` is there only for a task started for a queued message, as in the
    notification.
    """
    shown = {
        key: value
        for key, value in facts.as_dict().items()
        if key not in ("task", "reason", "cause") and not (key == "messageId" and value is None)
    }
    return {
        "record": "batchwire.retrier.dead-letter",
        "kind": kind,
        "reason": facts.reason,
        "attempt": attempt,
        "maxAttempts": max_attempts,
        "deadLetteredAt": now.isoformat(),
        **shown,
        "task": facts.task,
        **(extra or {}),
    }


# The messages below keep their characters as they are: JSON's \u escapes would make an
# event's emoji take three times their bytes, past what SQS (1 MiB) and SNS (256 KB) hold.


def _enqueue(
    sqs: SQSClient, settings: RetrierSettings, message: dict[str, Any], delay: int
) -> dict[str, Any]:
    response = sqs.send_message(
        QueueUrl=settings.delay_queue_url,
        MessageBody=json.dumps(message, ensure_ascii=False),
        DelaySeconds=max(0, min(delay, MAX_SQS_DELAY_SECONDS)),
    )
    return {"messageId": response["MessageId"], "delaySeconds": delay}


def _send_dead_letter(
    sqs: SQSClient, settings: RetrierSettings, record: dict[str, Any]
) -> dict[str, Any]:
    response = sqs.send_message(
        QueueUrl=settings.dead_letter_queue_url,
        MessageBody=json.dumps(record, ensure_ascii=False),
        MessageAttributes={"kind": {"DataType": "String", "StringValue": record["kind"]}},
    )
    return {"messageId": response["MessageId"]}


def _publish(sns: SNSClient, settings: RetrierSettings, note: dict[str, Any]) -> dict[str, Any]:
    response = sns.publish(
        TopicArn=settings.notification_topic_arn,
        Message=json.dumps(note, ensure_ascii=False),
        MessageAttributes={"kind": {"DataType": "String", "StringValue": note["kind"]}},
    )
    return {"messageId": response["MessageId"]}


class _RelaunchRequest(msgspec.Struct, frozen=True):
    """What the retrier reads of a relaunch message's RunTask request (botocore checks it all)."""

    cluster: str
    taskDefinition: str


class _Relaunch(msgspec.Struct, frozen=True):
    """A relaunch message, as :func:`handle_task_stopped` and a deferral queue it."""

    kind: Literal["relaunch"]
    attempt: Annotated[int, msgspec.Meta(ge=1, le=999)]
    #: A task id, as the startedBy marker carries it (128 characters in all).
    origin: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9-]{1,100}$")]
    placementTry: Annotated[int, msgspec.Meta(ge=1)]
    notBefore: datetime
    request: _RelaunchRequest
    facts: TaskFacts


def _parse_relaunch(body: Any, ecs: ECSClient) -> tuple[dict[str, Any], _Relaunch]:
    """The relaunch message in ``body``, as written and as read; RequestError naming each
    wrong field, a RunTask request botocore would refuse included."""
    try:
        message = json.loads(body) if isinstance(body, str) else body
    except json.JSONDecodeError as error:
        raise RequestError("relaunch message is not JSON", [f"body: {error}"]) from None
    if not isinstance(message, dict) or message.get("kind") != "relaunch":
        raise RequestError("not a relaunch message", ["kind: expected 'relaunch'"])
    problems = [
        f"{key}: missing"
        for key in ("attempt", "origin", "placementTry", "notBefore", "request", "facts")
        if key not in message
    ]
    if problems:
        raise RequestError("incomplete relaunch message", problems)
    try:
        parsed = msgspec.convert(message, _Relaunch)
    except msgspec.ValidationError as error:
        raise RequestError(
            "invalid relaunch message", describe_validation_error(error, message)
        ) from None
    if parsed.notBefore.tzinfo is None:
        raise RequestError("invalid relaunch message", ["notBefore: needs a time zone"])
    check_run_task_request(ecs, message["request"], "invalid relaunch message", "request")
    return message, parsed
