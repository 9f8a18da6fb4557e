"""Scaler: long-running queue consumers (ECS services) sized to their SQS backlog, down to zero.

Every minute EventBridge Scheduler invokes the scaler. For each configured target, an SQS
queue and the ECS service consuming it, it reads the queue's counts from SQS and the
service's ``desiredCount`` from ECS, decides how many tasks the backlog needs
(:func:`decide`, a pure function) and sets ``desiredCount`` where that differs.

- Out at once: the backlog needs more tasks than run, the service gets them in this run.
- From zero: a service at zero tasks stays there until ``activation_messages`` wait.
- In slowly: fewer tasks are set only after ``cooldown_seconds`` in which the current count
  was not needed, then straight to what is needed; never fewer than the in-flight messages
  need (``floor``), so that no task is stopped while it still holds work.

When a target was last needed is remembered in a DynamoDB table (one item per target);
the write is conditional on the value read, and a run that loses that race to another
changes nothing for the target: the next run decides again.
"""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Protocol

import msgspec
from botocore.exceptions import BotoCoreError, ClientError

from batchwire.config import EnvSettings
from batchwire.errors import BatchwireError, ConfigurationError, RequestError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)

#: Prefix of the id of each target's memory item in the state table.
MEMORY_PREFIX = "batchwire.scaler"
#: How long a target's memory is kept after it last changed (the table's TTL, ``expiration``).
MEMORY_KEEP_SECONDS = 7 * 24 * 3600
#: A further cycle starts only if the invocation would still have this long left then.
MIN_SECONDS_LEFT = 10
#: Service statuses ECS reports for a service that is deleted or being deleted.
GONE_STATUSES = frozenset({"INACTIVE", "DRAINING"})

# SQS: up to 80 characters, a FIFO queue's name ending in .fifo (the suffix counts)
_QUEUE_NAME = re.compile(r"^(?:[A-Za-z0-9_-]{1,80}|[A-Za-z0-9_-]{1,75}\.fifo)$")
_ECS_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


# --------------------------------------------------------------------------- the decision


@dataclass(frozen=True)
class ScalingPolicy:
    """How a target's service follows its queue's backlog."""

    #: Backlog one task is meant to hold (>= 1).
    messages_per_task: int
    #: Fewest tasks, whatever the queue holds (>= 0).
    min_tasks: int
    #: Most tasks (>= 1 and >= min_tasks).
    max_tasks: int
    #: Backlog needed to leave zero tasks (>= 1).
    activation_messages: int = 1
    #: Scale in only after this long without need for the current count (>= 0).
    cooldown_seconds: int = 300
    #: Count ApproximateNumberOfMessagesDelayed in the backlog.
    count_delayed: bool = False

    def __post_init__(self) -> None:
        _check_int("messages_per_task", self.messages_per_task, 1)
        _check_int("min_tasks", self.min_tasks, 0)
        floor = max(1, self.min_tasks)
        _check_int("max_tasks", self.max_tasks, floor, f"{floor} (1, and min_tasks)")
        _check_int("activation_messages", self.activation_messages, 1)
        _check_int("cooldown_seconds", self.cooldown_seconds, 0)
        if not isinstance(self.count_delayed, bool):
            raise ValueError(f"count_delayed must be True or False (got {self.count_delayed!r})")


def _check_int(name: str, value: object, least: int, words: str | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ValueError(f"{name} must be an int of at least {words or least} (got {value!r})")


@dataclass(frozen=True)
class Reading:
    """A target's queue and service as read now."""

    #: ApproximateNumberOfMessages.
    visible: int
    #: ApproximateNumberOfMessagesNotVisible: received by a consumer, not yet deleted.
    in_flight: int
    #: ApproximateNumberOfMessagesDelayed.
    delayed: int
    #: The service's desiredCount now.
    running: int


@dataclass(frozen=True)
class Memory:
    """What the scaler keeps about a target between runs."""

    #: Epoch seconds when the current count was last needed (None: nothing remembered).
    last_needed_at: float | None = None


@dataclass(frozen=True)
class Decision:
    """The count to set for a target, and why."""

    #: The desiredCount to set (== reading.running: no call).
    desired: int
    #: clamp(ceil(backlog / messages_per_task), min_tasks, max_tasks), activation applied.
    wanted: int
    #: min(max_tasks, ceil(in_flight / messages_per_task)): never fewer tasks than this.
    floor: int
    backlog: int
    #: backlog / max(desired, 1).
    backlog_per_task: float
    #: For people, e.g. "scale out 0 -> 1: 1 message (activation 1)".
    reason: str
    #: What to remember for the next run.
    memory: Memory


def decide(reading: Reading, policy: ScalingPolicy, memory: Memory, now: float) -> Decision:
    """The desiredCount a target's service should have for ``reading``, at epoch ``now``.

    Scales out at once to what the backlog needs; at zero tasks, only once the backlog
    reaches ``activation_messages``. Scales in only after ``cooldown_seconds`` in which the
    current count was not needed, then in one step to what is needed, never below the tasks
    the in-flight messages need (``floor``) or ``min_tasks``.
    """
    per_task = policy.messages_per_task
    counted_delayed = reading.delayed if policy.count_delayed else 0
    backlog = reading.visible + reading.in_flight + counted_delayed
    floor = min(policy.max_tasks, _ceil_div(reading.in_flight, per_task))
    dormant = reading.running == 0 and backlog < policy.activation_messages
    needed = 0 if dormant else _ceil_div(backlog, per_task)
    wanted = min(max(needed, policy.min_tasks), policy.max_tasks)
    words = _Words(reading, policy, backlog, needed, floor)

    if wanted >= reading.running:
        # The floor rises above wanted only at zero tasks below the activation: messages
        # another consumer holds come back to the queue, and are work for a task
        desired = max(wanted, floor)
        reason = words.more(desired)
        return _decision(reading, desired, wanted, floor, backlog, reason, Memory(now))

    since = None if memory.last_needed_at is None else now - memory.last_needed_at
    target = max(wanted, floor, policy.min_tasks)
    if since is not None and since < policy.cooldown_seconds:
        left = math.ceil(policy.cooldown_seconds - since)
        reason = (
            f"hold {reading.running}: cooldown {left} s of {policy.cooldown_seconds} left, "
            f"then {target} ({words.backlog_words()})"
        )
        return _decision(reading, reading.running, wanted, floor, backlog, reason, memory)
    reason = words.fewer(target, since)
    return _decision(reading, target, wanted, floor, backlog, reason, Memory(now))


def _decision(
    reading: Reading,
    desired: int,
    wanted: int,
    floor: int,
    backlog: int,
    reason: str,
    memory: Memory,
) -> Decision:
    return Decision(
        desired=desired,
        wanted=wanted,
        floor=floor,
        backlog=backlog,
        backlog_per_task=backlog / max(desired, 1),
        reason=reason,
        memory=memory,
    )


def _ceil_div(count: int, per: int) -> int:
    return -(-count // per) if count > 0 else 0


@dataclass(frozen=True)
class _Words:
    """The reasons of a decision, in words a person on call reads in the log."""

    reading: Reading
    policy: ScalingPolicy
    backlog: int
    needed: int
    floor: int

    def backlog_words(self) -> str:
        reading = self.reading
        if self.backlog == 0:
            return "queue and in-flight empty" if self.reading.running else "queue empty"
        total = f"{self.backlog} message{'' if self.backlog == 1 else 's'}"
        parts = []
        if reading.in_flight:
            parts.append(f"{reading.in_flight} in flight")
        if self.policy.count_delayed and reading.delayed:
            parts.append(f"{reading.delayed} delayed")
        if not parts:
            return total
        return f"{total} ({', '.join([f'{reading.visible} visible', *parts])})"

    def limits(self, desired: int) -> list[str]:
        """What bounded ``desired``, if not the backlog alone: max, min or floor."""
        policy, needed = self.policy, self.needed
        if needed > policy.max_tasks and desired == policy.max_tasks:
            return [f"{needed} needed at {policy.messages_per_task} per task, max {desired}"]
        if needed < policy.min_tasks and desired == policy.min_tasks:
            return [f"min {desired}"]
        if self.floor > max(needed, policy.min_tasks) and desired == self.floor:
            return [f"floor {desired} for the in-flight messages"]
        return []

    def more(self, desired: int) -> str:
        """Reason of a count needed now: scale out, or hold it."""
        running, activation = self.reading.running, self.policy.activation_messages
        if running == 0 and desired == 0 and self.backlog:
            return f"hold 0: {self.backlog_words()}, below activation {activation}"
        details = self.limits(desired)
        if not details and desired > 1:
            details = [f"{self.policy.messages_per_task} per task"]
        if running == 0 and self.backlog >= activation:
            details.insert(0, f"activation {activation}")
        suffix = f" ({', '.join(details)})" if details else ""
        if desired == running:
            return f"hold {running}: {self.backlog_words()}{suffix}"
        return f"scale out {running} -> {desired}: {self.backlog_words()}{suffix}"

    def fewer(self, desired: int, since: float | None) -> str:
        """Reason of a scale-in after the cooldown (or with nothing remembered)."""
        running = self.reading.running
        if self.backlog == 0:
            what = "queue and in-flight empty"
        else:
            what = f"{self.backlog_words()}, no more than {desired} needed"
        when = f" for {round(since)} s" if since is not None else ", no earlier need remembered"
        details = self.limits(desired)
        suffix = f" ({', '.join(details)})" if details else ""
        return f"scale in {running} -> {desired}: {what}{when}{suffix}"


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Target:
    """One queue and the ECS service that consumes it."""

    #: Position in SCALER_QUEUES / SCALER_SERVICES, from 1.
    number: int
    queue: str
    cluster: str
    service: str

    @property
    def service_path(self) -> str:
        """``cluster/service``, as configured; the ``target`` dimension of its metrics."""
        return f"{self.cluster}/{self.service}"

    @property
    def memory_id(self) -> str:
        """The id of the target's memory item in the state table."""
        return f"{MEMORY_PREFIX}#{self.queue}#{self.service_path}"

    def __str__(self) -> str:
        return (
            f"target {self.number} (queue {self.queue} -> cluster {self.cluster} / "
            f"service {self.service})"
        )


class ScalerSettings(EnvSettings, frozen=True, kw_only=True):
    """The scaler's configuration, one environment variable each.

    Target n is the n-th queue of SCALER_QUEUES and the n-th ``cluster/service`` of
    SCALER_SERVICES; the scaling variables apply to every target. The defaults are the
    template's.
    """

    list_variables: ClassVar[frozenset[str]] = frozenset({"SCALER_QUEUES", "SCALER_SERVICES"})

    #: Queue names (this account and region); empty: no targets, nothing to do.
    queues: tuple[str, ...] = msgspec.field(name="SCALER_QUEUES", default=())
    #: ``cluster/service`` names, one per queue, in the same order.
    services: tuple[str, ...] = msgspec.field(name="SCALER_SERVICES", default=())
    messages_per_task: Annotated[int, msgspec.Meta(ge=1)] = msgspec.field(
        name="SCALER_MESSAGES_PER_TASK", default=50
    )
    min_tasks: Annotated[int, msgspec.Meta(ge=0)] = msgspec.field(
        name="SCALER_MIN_TASKS", default=0
    )
    max_tasks: Annotated[int, msgspec.Meta(ge=1)] = msgspec.field(
        name="SCALER_MAX_TASKS", default=8
    )
    activation_messages: Annotated[int, msgspec.Meta(ge=1)] = msgspec.field(
        name="SCALER_ACTIVATION_MESSAGES", default=1
    )
    #: At most a day: the memory it relies on is kept for a week.
    cooldown_seconds: Annotated[int, msgspec.Meta(ge=0, le=86400)] = msgspec.field(
        name="SCALER_COOLDOWN_SECONDS", default=300
    )
    count_delayed: bool = msgspec.field(name="SCALER_COUNT_DELAYED", default=False)
    #: Read/decide/update cycles per invocation, spaced 60/N seconds (a faster start from 0).
    polls_per_minute: Annotated[int, msgspec.Meta(ge=1, le=6)] = msgspec.field(
        name="SCALER_POLLS_PER_MINUTE", default=1
    )
    #: The DynamoDB table of the targets' memory (key ``id``, TTL ``expiration``).
    state_table: str = msgspec.field(name="SCALER_STATE_TABLE", default="")

    def __post_init__(self) -> None:
        if len(self.queues) != len(self.services):
            raise ValueError(
                "environment variables SCALER_QUEUES and SCALER_SERVICES must list as many "
                "entries, in the same order (target n is the n-th of each): SCALER_QUEUES has "
                f"{len(self.queues)}, SCALER_SERVICES has {len(self.services)}"
            )
        for number, queue in enumerate(self.queues, 1):
            if not _QUEUE_NAME.match(queue):
                raise ValueError(
                    f"environment variable SCALER_QUEUES, entry {number} {queue!r}: not a queue "
                    "name (up to 80 letters, digits, - and _, a FIFO queue's ending in .fifo); "
                    "give the name, not the URL or ARN"
                )
        seen: dict[str, int] = {}
        for number, entry in enumerate(self.services, 1):
            cluster, _, service = entry.partition("/")
            if not (_ECS_NAME.match(cluster) and _ECS_NAME.match(service)):
                raise ValueError(
                    f"environment variable SCALER_SERVICES, entry {number} {entry!r}: expected "
                    "cluster/service, each 1-255 letters, digits, - and _ (names, not ARNs)"
                )
            if entry in seen:
                raise ValueError(
                    f"environment variable SCALER_SERVICES, entries {seen[entry]} and {number}: "
                    f"both scale {entry}; a service follows one queue"
                )
            seen[entry] = number
        if self.min_tasks > self.max_tasks:
            raise ValueError(
                f"environment variables SCALER_MIN_TASKS={self.min_tasks} and "
                f"SCALER_MAX_TASKS={self.max_tasks}: the maximum must be at least the minimum"
            )
        if self.queues and not self.state_table:
            raise ValueError(
                "environment variable SCALER_STATE_TABLE is not set: the scaler remembers in it "
                "when each target last needed its tasks (the stack's IdempotencyTable)"
            )

    @property
    def targets(self) -> tuple[Target, ...]:
        """The configured targets, numbered from 1."""
        pairs = zip(self.queues, self.services, strict=True)
        return tuple(
            Target(number, queue, *entry.split("/", 1))
            for number, (queue, entry) in enumerate(pairs, 1)
        )

    @property
    def policy(self) -> ScalingPolicy:
        """The scaling policy every target follows."""
        return ScalingPolicy(
            messages_per_task=self.messages_per_task,
            min_tasks=self.min_tasks,
            max_tasks=self.max_tasks,
            activation_messages=self.activation_messages,
            cooldown_seconds=self.cooldown_seconds,
            count_delayed=self.count_delayed,
        )


# --------------------------------------------------------------------------- AWS


@dataclass(frozen=True)
class ScalerClients:
    """The AWS clients the scaler calls."""

    sqs: SQSClient
    ecs: ECSClient
    dynamodb: DynamoDBClient


@dataclass(frozen=True)
class Remembered:
    """A target's memory as read, and the stored value the next write is conditional on."""

    memory: Memory
    #: ``last_needed_at`` exactly as the table holds it (None: no such attribute).
    stored: str | None = None


class ScalerMemory:
    """When each target last needed its tasks: one item per target in the state table."""

    def __init__(
        self, table: str, dynamodb: DynamoDBClient, keep_seconds: int = MEMORY_KEEP_SECONDS
    ) -> None:
        self.table = table
        self.dynamodb = dynamodb
        self.keep_seconds = keep_seconds

    def recall(self, target: Target) -> Remembered:
        """The target's memory (strongly consistent: an overlapping run may just have written)."""
        item = self.dynamodb.get_item(
            TableName=self.table, Key={"id": {"S": target.memory_id}}, ConsistentRead=True
        ).get("Item", {})
        stored = item.get("last_needed_at", {}).get("N")
        return Remembered(Memory(None if stored is None else float(stored)), stored)

    def keep(self, target: Target, before: Remembered, memory: Memory, now: float) -> bool:
        """Store ``memory`` unless another run changed the item since ``before`` was read.

        False when it did: this run's decision rests on stale memory and is not applied.
        """
        if memory.last_needed_at is None:  # decide never forgets; nothing to store
            return True
        values: dict[str, AttributeValueTypeDef] = {
            ":at": {"N": f"{memory.last_needed_at:.3f}"},
            ":expires": {"N": str(int(now) + self.keep_seconds)},
            # which write this is: botocore sends an update again when its answer was lost,
            # and the second then fails its condition on the first, this run's own change
            ":writer": {"S": uuid.uuid4().hex},
        }
        if before.stored is None:
            condition = "attribute_not_exists(last_needed_at)"
        else:
            condition = "last_needed_at = :before"
            values[":before"] = {"N": before.stored}
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"id": {"S": target.memory_id}},
                UpdateExpression=(
                    "SET last_needed_at = :at, expiration = :expires, written_by = :writer"
                ),
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException as error:
            answer: Mapping[str, Any] = error.response
            return bool(answer.get("Item", {}).get("written_by") == values[":writer"])
        return True


class _Missing(Exception):
    """What of a target does not exist."""


def read_target(target: Target, sqs: SQSClient, ecs: ECSClient) -> Reading:
    """The queue's counts and the service's desiredCount.

    Raises _Missing naming what does not exist (the queue, the cluster, the service or
    several of them); other errors propagate.
    """
    missing: list[str] = []
    counts = (0, 0, 0)
    try:
        url = sqs.get_queue_url(QueueName=target.queue)["QueueUrl"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        ).get("Attributes", {})
        counts = (
            int(attributes.get("ApproximateNumberOfMessages", "0")),
            int(attributes.get("ApproximateNumberOfMessagesNotVisible", "0")),
            int(attributes.get("ApproximateNumberOfMessagesDelayed", "0")),
        )
    except sqs.exceptions.QueueDoesNotExist:
        missing.append(f"queue {target.queue} does not exist")
    running = 0
    try:
        answer = ecs.describe_services(cluster=target.cluster, services=[target.service])
    except ecs.exceptions.ClusterNotFoundException:
        missing.append(f"cluster {target.cluster} does not exist")
    else:
        failures = answer.get("failures", [])
        services = answer.get("services", [])
        if any(failure.get("reason") == "MISSING" for failure in failures):
            missing.append(f"service {target.service} does not exist in cluster {target.cluster}")
        elif failures:
            reasons = ", ".join(str(failure.get("reason")) for failure in failures)
            raise BatchwireError(f"{target}: ECS did not describe the service: {reasons}")
        elif services and services[0].get("status") in GONE_STATUSES:
            status = services[0].get("status")
            missing.append(
                f"service {target.service} does not exist in cluster {target.cluster} "
                f"(status {status})"
            )
        elif services:
            running = services[0].get("desiredCount", 0)
        else:
            raise BatchwireError(f"{target}: ECS described no service and no failure")
    if missing:
        raise _Missing("; ".join(missing))
    visible, in_flight, delayed = counts
    return Reading(visible=visible, in_flight=in_flight, delayed=delayed, running=running)


@dataclass(frozen=True)
class Observation:
    """What one run read about a target before deciding."""

    target: Target
    reading: Reading
    remembered: Remembered


def observe(
    targets: tuple[Target, ...], clients: ScalerClients, memory: ScalerMemory
) -> list[Observation]:
    """Read every target, then the memory of each.

    Raises ConfigurationError naming each target whose queue or service does not exist,
    before anything is changed for any target.
    """
    readings: list[tuple[Target, Reading]] = []
    problems: list[str] = []
    for target in targets:
        try:
            readings.append((target, read_target(target, clients.sqs, clients.ecs)))
        except _Missing as missing:
            problems.append(f"{target}: {missing}")
    if problems:
        raise ConfigurationError(
            f"scaler targets not found; no service was changed: {'; '.join(problems)}. Create "
            "what is missing, or correct SCALER_QUEUES and SCALER_SERVICES"
        )
    return [Observation(target, reading, memory.recall(target)) for target, reading in readings]


# --------------------------------------------------------------------------- runs

OutcomeStatus = Literal["scaled_out", "scaled_in", "held", "lost", "failed"]


@dataclass(frozen=True)
class TargetOutcome:
    """What one cycle did for one target.

    ``lost``: another run changed the target's memory after this one read it; this run's
    change was not applied (the next run decides again). ``failed``: UpdateService failed.
    """

    target: Target
    reading: Reading
    decision: Decision
    status: OutcomeStatus
    error: str | None = None

    @property
    def changed(self) -> bool:
        """Whether the service's desiredCount was set."""
        return self.status in ("scaled_out", "scaled_in")

    def as_dict(self) -> dict[str, Any]:
        reading, decision = self.reading, self.decision
        fields: dict[str, Any] = {
            "target": self.target.service_path,
            "queue": self.target.queue,
            "status": self.status,
            "running": reading.running,
            "desired": decision.desired,
            "wanted": decision.wanted,
            "floor": decision.floor,
            "backlog": decision.backlog,
            "visible": reading.visible,
            "inFlight": reading.in_flight,
            "delayed": reading.delayed,
            "backlogPerTask": round(decision.backlog_per_task, 3),
            "reason": decision.reason,
        }
        if self.error is not None:
            fields["error"] = self.error
        return fields


@dataclass(frozen=True)
class Cycle:
    """One read/decide/update pass over every target."""

    number: int
    #: Cycles planned for the invocation (SCALER_POLLS_PER_MINUTE).
    planned: int
    outcomes: tuple[TargetOutcome, ...]

    def count(self, status: OutcomeStatus) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)


class ScalingFailed(BatchwireError):
    """UpdateService failed for some targets; the cycle's other targets were scaled."""

    def __init__(self, cycle: Cycle) -> None:
        self.cycle = cycle
        failed = [o for o in cycle.outcomes if o.status == "failed"]
        details = "; ".join(f"{o.target}: {o.error}" for o in failed)
        super().__init__(f"desiredCount not set for {len(failed)} target(s): {details}")


class RemainingTime(Protocol):
    """The part of the Lambda context the scaler uses."""

    def get_remaining_time_in_millis(self) -> int: ...


@dataclass
class Scaler:
    """The targets, their policy and clients, and the clock the cycles are spaced by."""

    targets: tuple[Target, ...]
    policy: ScalingPolicy
    clients: ScalerClients
    memory: ScalerMemory
    polls_per_minute: int = 1
    #: Epoch seconds now; the memory's timestamps and the spacing of cycles.
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_settings(cls, settings: ScalerSettings, clients: ScalerClients) -> Scaler:
        return cls(
            targets=settings.targets,
            policy=settings.policy,
            clients=clients,
            memory=ScalerMemory(settings.state_table, clients.dynamodb),
            polls_per_minute=settings.polls_per_minute,
        )

    def run(self, event: object, context: RemainingTime | None = None) -> Iterator[Cycle]:
        """The cycles of one scheduled invocation, each yielded once done.

        The event is checked first (RequestError: not an object; no AWS call made). Cycles
        are spaced 60/SCALER_POLLS_PER_MINUTE seconds from the first; one starts only if
        ``context`` would have MIN_SECONDS_LEFT left when it does. A cycle that cannot read
        every target raises ConfigurationError; one whose updates failed, ScalingFailed.
        """
        check_tick(event)
        return self._cycles(context)

    def _cycles(self, context: RemainingTime | None) -> Iterator[Cycle]:
        if not self.targets:
            return
        interval = 60 / self.polls_per_minute
        start = self.clock()
        for number in range(1, self.polls_per_minute + 1):
            if number > 1:
                wait = max(0.0, start + (number - 1) * interval - self.clock())
                if context is not None:
                    left = context.get_remaining_time_in_millis() / 1000 - wait
                    if left < MIN_SECONDS_LEFT:
                        log.warning(
                            "scaler stopped after %d of %d cycles: cycle %d would start with "
                            "%.0f s left (under %d s); give the function a longer timeout",
                            number - 1,
                            self.polls_per_minute,
                            number,
                            left,
                            MIN_SECONDS_LEFT,
                        )
                        return
                self.sleep(wait)
            yield self.scale_once(number)

    def scale_once(self, number: int = 1) -> Cycle:
        """Read every target, decide each, and set desiredCount where it changes."""
        observations = observe(self.targets, self.clients, self.memory)
        now = self.clock()
        outcomes = tuple(self._apply(observation, now) for observation in observations)
        cycle = Cycle(number, self.polls_per_minute, outcomes)
        if cycle.count("failed"):
            raise ScalingFailed(cycle)
        return cycle

    def _apply(self, observation: Observation, now: float) -> TargetOutcome:
        target, reading, before = observation.target, observation.reading, observation.remembered
        decision = decide(reading, self.policy, before.memory, now)
        changes = decision.desired != reading.running
        # Memory first: a run that lost the race to another acts on nothing it read
        if decision.memory != before.memory and not self.memory.keep(
            target, before, decision.memory, now
        ):
            return TargetOutcome(target, reading, decision, "lost" if changes else "held")
        if not changes:
            return TargetOutcome(target, reading, decision, "held")
        try:
            self.clients.ecs.update_service(
                cluster=target.cluster, service=target.service, desiredCount=decision.desired
            )
        except (ClientError, BotoCoreError) as error:
            return TargetOutcome(target, reading, decision, "failed", error=str(error))
        status: OutcomeStatus = "scaled_out" if decision.desired > reading.running else "scaled_in"
        return TargetOutcome(target, reading, decision, status)


def check_tick(event: object) -> Mapping[str, Any]:
    """The scheduler's input, which must be a JSON object (its content is informational)."""
    if not isinstance(event, Mapping):
        raise RequestError(
            "not a scaler tick; nothing was read or changed",
            [
                '(event): expected a JSON object such as {"scheduledTime": "..."}, '
                f"got {type(event).__name__} {event!r:.80}"
            ],
        )
    return event
