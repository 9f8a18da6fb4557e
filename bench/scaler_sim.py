"""A deterministic simulation of one SQS queue consumed by one ECS service, scaled two ways.

batchwire's scaler (``batchwire.scaler.decide`` on the queue's true counts, once a minute or
N times a minute) against the step-scaling policy of an aws-cdk QueueProcessingFargateService
scaled to zero (CloudWatch alarms on ApproximateNumberOfMessagesVisible, whose datapoints
arrive late). Time moves in 1-second steps and nothing is random, so a run is a pure
function of its parameters. Every figure and where it comes from: bench/README.md, "The
scaler simulation". ``python -m bench --only scaler`` prints the tables.

Within one second the order is: messages arrive, messages of stopped tasks become visible
again, the controller decides on the counts as they stand, ECS starts and stops tasks, tasks
finish (and delete) their messages, idle tasks receive. With fixed durations many tasks finish
on the same seconds, often the seconds a controller acts on; a stop in the second a task
finishes is counted as a stop mid-message (in a busy queue a consumer holds a message all but
an instant between two), and the scaler's reading still counts that message in flight.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bench.stats import Row, Target, render_table

# -- the timeline ---------------------------------------------------------------------
IDLE_BEFORE_SECONDS = 600
BURST_MESSAGES = 500
TRICKLE_EVERY_SECONDS = 20
#: Long enough to outlast the burst: the trickle goes on for about half an hour after the
#: burst is drained, with one consumer busy and no message visible (30 minutes ended before the
#: burst was drained, so that timeline had no trickle of its own; bench/README.md).
TRICKLE_FOR_SECONDS = 60 * 60
IDLE_AFTER_SECONDS = 60 * 60
#: After the timeline, how long a strategy may take to drain and get back to zero tasks.
SETTLE_LIMIT_SECONDS = 2 * 60 * 60

# -- the consumer ------------------------------------------------------------------------------
#: One message at a time, a fixed time each.
PROCESSING_SECONDS = 20
#: From desiredCount rising to the task polling the queue (Fargate: placement, image pull,
#: container start).
START_LATENCY_SECONDS = 60
#: The CDK pattern's queue default (``visibilityTimeout``: 30 s); the same queue for everyone.
VISIBILITY_TIMEOUT_SECONDS = 30
#: A message whose processing starts later than this after its arrival counts as late.
LATE_AFTER_SECONDS = 5 * 60

# -- batchwire's scaler ------------------------------------------------------------------------
MESSAGES_PER_TASK = 50
MAX_TASKS = 8
SCALER_COOLDOWN_SECONDS = 300
#: The EventBridge schedule fires at second 30 of each minute: the burst (at 10:00) waits half
#: a poll interval for the 1-poll scaler. With N polls a minute the polls are 60/N s apart from
#: there (4 polls: :00, :15, :30, :45, so for that variant the burst lands on a poll).
SCALER_FIRST_POLL_SECOND = 30

# -- the CDK step policy -----------------------------------------------------------------------
#: Datapoints of an active queue's SQS metrics reach CloudWatch this long after their minute.
SQS_METRIC_DELAY_SECONDS = 3 * 60
#: A queue idle for more than six hours stops sending metrics; after it wakes, its first
#: datapoints reach CloudWatch this long after the first message.
SQS_WAKE_DELAY_SECONDS = 15 * 60
#: The alarms are evaluated at second 0 of every minute.
ALARM_EVALUATION_EVERY_SECONDS = 60


@dataclass(frozen=True)
class ScalingInterval:
    """One of aws-cdk's ``ScalingInterval``s: ``change`` tasks when the metric is in range."""

    change: int
    lower: float | None = None
    upper: float | None = None


#: QueueProcessingServiceBase's default ``scalingSteps``.
CDK_DEFAULT_STEPS = (
    ScalingInterval(-1, upper=0),
    ScalingInterval(+1, lower=100),
    ScalingInterval(+5, lower=500),
)


@dataclass(frozen=True)
class Timeline:
    """Arrivals: empty, a burst at once, a steady trickle, empty again."""

    idle_before_seconds: int = IDLE_BEFORE_SECONDS
    burst_messages: int = BURST_MESSAGES
    trickle_every_seconds: int = TRICKLE_EVERY_SECONDS
    trickle_for_seconds: int = TRICKLE_FOR_SECONDS
    idle_after_seconds: int = IDLE_AFTER_SECONDS
    #: Shifts every trickle message later by this many seconds (less than the interval): the
    #: trickle's phase against the minute on which the scaler polls and alarms are evaluated.
    trickle_offset_seconds: int = 0

    def __post_init__(self) -> None:
        if self.trickle_every_seconds and not (
            0 <= self.trickle_offset_seconds < self.trickle_every_seconds
        ):
            raise ValueError(
                f"trickle_offset_seconds must be 0 to {self.trickle_every_seconds - 1}, "
                f"got {self.trickle_offset_seconds}"
            )

    @property
    def burst_at(self) -> int:
        return self.idle_before_seconds

    @property
    def end(self) -> int:
        return self.idle_before_seconds + self.trickle_for_seconds + self.idle_after_seconds

    def arrivals(self) -> list[tuple[int, bool]]:
        """``(second, in_burst)`` of every message, in arrival order."""
        times = [(self.burst_at, True)] * self.burst_messages
        if self.trickle_every_seconds > 0:
            at = self.burst_at + self.trickle_every_seconds + self.trickle_offset_seconds
            while at <= self.burst_at + self.trickle_for_seconds + self.trickle_offset_seconds:
                times.append((at, False))
                at += self.trickle_every_seconds
        return times


@dataclass(frozen=True)
class Consumers:
    """What one consumer task does and how long it takes to start."""

    processing_seconds: int = PROCESSING_SECONDS
    start_latency_seconds: int = START_LATENCY_SECONDS
    visibility_timeout_seconds: int = VISIBILITY_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        # a healthy consumer deletes its message before it becomes visible again; duplicate
        # deliveries to live consumers are another benchmark
        if self.processing_seconds >= self.visibility_timeout_seconds:
            raise ValueError(
                f"processing_seconds ({self.processing_seconds}) must be shorter than "
                f"visibility_timeout_seconds ({self.visibility_timeout_seconds})"
            )


@dataclass(frozen=True)
class ScalerStrategy:
    """batchwire's scaler: ``decide`` on the true counts, ``polls_per_minute`` times a minute."""

    label: str
    polls_per_minute: int = 1
    #: Consumers set ECS task scale-in protection while they hold a message.
    scale_in_protection: bool = True
    messages_per_task: int = MESSAGES_PER_TASK
    min_tasks: int = 0
    max_tasks: int = MAX_TASKS
    activation_messages: int = 1
    cooldown_seconds: int = SCALER_COOLDOWN_SECONDS
    first_poll_second: int = SCALER_FIRST_POLL_SECOND

    def __post_init__(self) -> None:
        if self.polls_per_minute < 1 or 60 % self.polls_per_minute:
            raise ValueError(f"polls_per_minute must divide 60, got {self.polls_per_minute}")


@dataclass(frozen=True)
class StepStrategy:
    """A CDK QueueProcessingFargateService's step scaling on ApproximateNumberOfMessagesVisible
    (Maximum over ``period_seconds``), through CloudWatch's late datapoints. No scale-in
    protection: its consumers are stopped wherever they are."""

    label: str
    steps: tuple[ScalingInterval, ...] = CDK_DEFAULT_STEPS
    min_capacity: int = 0
    max_capacity: int = MAX_TASKS
    cooldown_seconds: int = 300
    period_seconds: int = 300
    evaluation_periods: int = 1
    metric_delay_seconds: int = SQS_METRIC_DELAY_SECONDS
    #: The queue had been idle for more than six hours before the first message.
    asleep_before_first_message: bool = False
    wake_delay_seconds: int = SQS_WAKE_DELAY_SECONDS

    def __post_init__(self) -> None:
        if self.period_seconds % 60:
            raise ValueError(f"period_seconds must be whole minutes, got {self.period_seconds}")


Strategy = ScalerStrategy | StepStrategy


@dataclass(frozen=True)
class MessageRecord:
    """What happened to one message."""

    arrived_at: int
    in_burst: bool
    #: Times a consumer received it.
    receives: int
    #: Times the task holding it was stopped before it finished.
    interrupted: int
    #: Times a consumer finished it (and deleted it).
    completions: int
    #: Start of the processing that finished it (None: never finished).
    started_at: int | None
    finished_at: int | None


@dataclass(frozen=True)
class Outcome:
    """The figures of one run and the records they come from."""

    label: str
    #: From the first message to the first task able to receive (None: never).
    first_consumer_seconds: int | None
    #: From the burst to the deletion of its last message (None: not within the horizon).
    burst_drained_seconds: int | None
    task_minutes: float
    stopped_holding_message: int
    #: From the last deletion (queue and in-flight empty) to zero tasks (None: not within
    #: the horizon).
    back_to_zero_seconds: int | None
    #: Messages whose finished processing started more than LATE_AFTER_SECONDS after their
    #: arrival, plus those never finished.
    late_messages: int
    #: Scaling decisions taken: ``decide`` calls, or scaling-policy invocations by an alarm.
    decisions: int
    ended_at: int
    messages: tuple[MessageRecord, ...]
    #: ``(launched_at, stopped_at)`` of every task.
    task_spans: tuple[tuple[int, int], ...]
    #: Tasks in the service at the end of each second.
    tasks_per_second: tuple[int, ...]
    #: ``(minute, visible, not_visible)`` at the end of each minute, as SQS would count them.
    minute_samples: tuple[tuple[int, int, int], ...]
    #: The step policy's CloudWatch datapoints, ``(minute, value)``; empty for the scaler.
    datapoints: tuple[tuple[int, int], ...]


@dataclass(slots=True)
class _Message:
    arrived_at: int
    in_burst: bool
    receives: int = 0
    interrupted: int = 0
    completions: int = 0
    started_at: int | None = None
    finished_at: int | None = None


@dataclass(slots=True)
class _Task:
    number: int
    launched_at: int
    ready_at: int
    idle_since: int
    holding: _Message | None = None
    busy_until: int = 0
    protected: bool = False


class _ScalerController:
    """Calls ``batchwire.scaler.decide`` with the queue's true counts, carrying its memory."""

    def __init__(self, strategy: ScalerStrategy) -> None:
        from batchwire import scaler

        # looked up on every call, so that a test may wrap batchwire.scaler.decide
        self._scaler = scaler
        self.policy = scaler.ScalingPolicy(
            messages_per_task=strategy.messages_per_task,
            min_tasks=strategy.min_tasks,
            max_tasks=strategy.max_tasks,
            activation_messages=strategy.activation_messages,
            cooldown_seconds=strategy.cooldown_seconds,
        )
        self.memory = scaler.Memory()
        self.first = strategy.first_poll_second
        self.interval = 60 // strategy.polls_per_minute
        self.calls = 0

    def due(self, now: int) -> bool:
        return now >= self.first and (now - self.first) % self.interval == 0

    def desired(self, now: int, visible: int, not_visible: int, running: int) -> int:
        reading = self._scaler.Reading(
            visible=visible, in_flight=not_visible, delayed=0, running=running
        )
        decision = self._scaler.decide(reading, self.policy, self.memory, float(now))
        self.memory = decision.memory
        self.calls += 1
        return decision.desired


class _StepController:
    """Two CloudWatch alarms and two step-scaling policies, as aws-cdk's StepScalingPolicy
    builds them, fed only with ApproximateNumberOfMessagesVisible datapoints."""

    def __init__(self, strategy: StepStrategy, first_message_at: int | None) -> None:
        self.strategy = strategy
        self.wakes_at = first_message_at if strategy.asleep_before_first_message else None
        out = [step for step in strategy.steps if step.change > 0]
        down = [step for step in strategy.steps if step.change < 0]
        # each alarm's threshold is the edge of the steps nearest to the no-action range
        self.out_threshold = min((_bound(step.lower) for step in out), default=math.inf)
        self.in_threshold = max((_bound(step.upper, -math.inf) for step in down), default=-math.inf)
        self.out_steps = sorted(out, key=lambda step: _bound(step.lower))
        self.in_steps = sorted(down, key=lambda step: -_bound(step.upper, -math.inf))
        self.window_minutes = strategy.period_seconds // 60 * strategy.evaluation_periods
        self.datapoints: dict[int, int] = {}
        self.invocations = 0
        self.out_cooldown_until = -1
        self.out_base = 0
        self.in_cooldown_until = -1

    def record_minute(self, minute: int, visible: int) -> None:
        """The minute's ApproximateNumberOfMessagesVisible datapoint (an asleep queue sends
        none until its first message)."""
        if self.wakes_at is not None and (minute + 1) * 60 <= self.wakes_at:
            return
        self.datapoints[minute] = visible

    def available_at(self, minute: int) -> int:
        at = (minute + 1) * 60 + self.strategy.metric_delay_seconds
        if self.wakes_at is not None:
            at = max(at, self.wakes_at + self.strategy.wake_delay_seconds)
        return at

    def due(self, now: int) -> bool:
        return now % ALARM_EVALUATION_EVERY_SECONDS == 0

    def desired(self, now: int, current: int) -> int:
        value = self._metric(now)
        if value is None:  # INSUFFICIENT_DATA: neither alarm acts
            return current
        if value >= self.out_threshold:
            self.invocations += 1
            return self._scale_out(now, current, self._change(self.out_steps, value))
        if value <= self.in_threshold:
            self.invocations += 1
            return self._scale_in(now, current, self._change(self.in_steps, value))
        return current

    def _metric(self, now: int) -> int | None:
        """Maximum of the datapoints CloudWatch holds for the latest period (a sliding window
        ending at the newest datapoint that has arrived)."""
        arrived = [minute for minute in self.datapoints if self.available_at(minute) <= now]
        if not arrived:
            return None
        newest = max(arrived)
        window = [
            self.datapoints[minute]
            for minute in range(newest - self.window_minutes + 1, newest + 1)
            if minute in self.datapoints
        ]
        return max(window)

    @staticmethod
    def _change(steps: Sequence[ScalingInterval], value: int) -> int:
        chosen = steps[0].change
        for step in steps:
            edge = step.lower if step.change > 0 else step.upper
            if edge is None or (value >= edge if step.change > 0 else value <= edge):
                chosen = step.change
        return chosen

    def _scale_out(self, now: int, current: int, change: int) -> int:
        cap = self.strategy.max_capacity
        if now < self.out_cooldown_until:
            # Application Auto Scaling: during the cooldown the earlier increase counts as
            # part of a larger one; only the difference is added
            return max(current, min(cap, self.out_base + change))
        wanted = min(cap, current + change)
        if wanted > current:
            self.out_base = current
            self.out_cooldown_until = now + self.strategy.cooldown_seconds
            self.in_cooldown_until = now  # a scale-out ends a scale-in cooldown
        return max(current, wanted)

    def _scale_in(self, now: int, current: int, change: int) -> int:
        if now < self.in_cooldown_until:  # scale-ins during the cooldown are ignored
            return current
        wanted = max(self.strategy.min_capacity, current + change)
        if wanted < current:
            self.in_cooldown_until = now + self.strategy.cooldown_seconds
        return min(current, wanted)


def _bound(value: float | None, missing: float = math.inf) -> float:
    return missing if value is None else value


def simulate(
    strategy: Strategy,
    timeline: Timeline | None = None,
    consumers: Consumers | None = None,
    settle_limit_seconds: int = SETTLE_LIMIT_SECONDS,
) -> Outcome:
    """Run one strategy over the timeline, second by second, until every message is deleted
    and the service is back at zero tasks (or ``settle_limit_seconds`` after the timeline)."""
    timeline = timeline or Timeline()
    consumers = consumers or Consumers()
    arrivals = timeline.arrivals()
    messages = [_Message(at, in_burst) for at, in_burst in arrivals]
    first_message_at = messages[0].arrived_at if messages else None
    scaler = _ScalerController(strategy) if isinstance(strategy, ScalerStrategy) else None
    step = (
        _StepController(strategy, first_message_at) if isinstance(strategy, StepStrategy) else None
    )
    protection = isinstance(strategy, ScalerStrategy) and strategy.scale_in_protection

    visible: deque[_Message] = deque()
    returning: list[tuple[int, int, _Message]] = []  # (visible again at, sequence, message)
    returned = 0
    tasks: list[_Task] = []  # in launch order: the oldest first
    spans: list[tuple[int, int]] = []
    tasks_per_second: list[int] = []
    samples: list[tuple[int, int, int]] = []
    next_arrival = 0
    held = 0
    finished = 0
    stopped_holding = 0
    launched = 0
    desired = 0
    first_consumer_at: int | None = None
    horizon = timeline.end + settle_limit_seconds
    now = 0
    while True:
        while next_arrival < len(messages) and messages[next_arrival].arrived_at == now:
            visible.append(messages[next_arrival])
            next_arrival += 1
        while returning and returning[0][0] <= now:
            visible.append(heapq.heappop(returning)[2])
        if scaler is not None and scaler.due(now):
            desired = scaler.desired(now, len(visible), held + len(returning), desired)
        elif step is not None and step.due(now):
            desired = step.desired(now, desired)

        while len(tasks) < desired:
            ready = now + consumers.start_latency_seconds
            tasks.append(_Task(launched, now, ready, idle_since=ready))
            launched += 1
        excess = len(tasks) - desired
        if excess > 0:
            # ECS stops the oldest tasks first, never one under scale-in protection
            stopping = [task for task in tasks if not task.protected][:excess]
            for task in stopping:
                message = task.holding
                if message is not None:
                    # the consumer dies with the message; SQS hands it out again once the
                    # visibility timeout of its receive expires
                    message.interrupted += 1
                    assert message.started_at is not None
                    again = message.started_at + consumers.visibility_timeout_seconds
                    heapq.heappush(returning, (again, returned, message))
                    returned += 1
                    held -= 1
                    stopped_holding += 1
                spans.append((task.launched_at, now))
            gone = {task.number for task in stopping}
            tasks = [task for task in tasks if task.number not in gone]

        for task in tasks:
            message = task.holding
            if message is not None and task.busy_until <= now:
                message.completions += 1
                message.finished_at = now
                finished += 1
                held -= 1
                task.holding = None
                task.protected = False
                task.idle_since = now

        idle = sorted(
            (task for task in tasks if task.holding is None and task.ready_at <= now),
            key=lambda task: (task.idle_since, task.number),
        )
        waiting = first_message_at is not None and now >= first_message_at
        if idle and waiting and first_consumer_at is None:
            first_consumer_at = now
        for task in idle:  # the consumer polling longest gets the next message
            if not visible:
                break
            message = visible.popleft()
            message.receives += 1
            message.started_at = now
            task.holding = message
            task.busy_until = now + consumers.processing_seconds
            task.protected = protection
            held += 1

        tasks_per_second.append(len(tasks))
        if (now + 1) % 60 == 0:
            minute = now // 60
            samples.append((minute, len(visible), held + len(returning)))
            if step is not None:
                step.record_minute(minute, len(visible))  # visible only: what the metric is
        settled = finished == len(messages) and not tasks and next_arrival == len(messages)
        if (now >= timeline.end and settled) or now >= horizon:
            break
        now += 1

    spans.extend((task.launched_at, now + 1) for task in tasks)
    records = tuple(
        MessageRecord(
            arrived_at=m.arrived_at,
            in_burst=m.in_burst,
            receives=m.receives,
            interrupted=m.interrupted,
            completions=m.completions,
            started_at=m.started_at if m.completions else None,
            finished_at=m.finished_at,
        )
        for m in messages
    )
    return Outcome(
        label=strategy.label,
        first_consumer_seconds=(
            None
            if first_consumer_at is None or first_message_at is None
            else first_consumer_at - first_message_at
        ),
        burst_drained_seconds=_burst_drained(records, timeline),
        task_minutes=sum(tasks_per_second) / 60,
        stopped_holding_message=stopped_holding,
        back_to_zero_seconds=_back_to_zero(records, tasks_per_second),
        late_messages=sum(
            1
            for r in records
            if r.started_at is None or r.started_at - r.arrived_at > LATE_AFTER_SECONDS
        ),
        decisions=(scaler.calls if scaler else 0) + (step.invocations if step else 0),
        ended_at=now,
        messages=records,
        task_spans=tuple(sorted(spans)),
        tasks_per_second=tuple(tasks_per_second),
        minute_samples=tuple(samples),
        datapoints=tuple(sorted(step.datapoints.items())) if step is not None else (),
    )


def _burst_drained(records: Sequence[MessageRecord], timeline: Timeline) -> int | None:
    burst = [r.finished_at for r in records if r.in_burst]
    if not burst or None in burst:
        return None
    return max(at for at in burst if at is not None) - timeline.burst_at


def _back_to_zero(records: Sequence[MessageRecord], tasks_per_second: Sequence[int]) -> int | None:
    if not records or any(r.finished_at is None for r in records):
        return None
    empty_at = max(r.finished_at for r in records if r.finished_at is not None)
    for second in range(empty_at, len(tasks_per_second)):
        if tasks_per_second[second] == 0:
            return second - empty_at
    return None


# -- the report ---------------------------------------------------------------------------------

SCALER = ScalerStrategy("scaler, 1 poll/min")
STEP = StepStrategy("CDK step, metrics 3 min late")
STRATEGIES: tuple[Strategy, ...] = (
    SCALER,
    ScalerStrategy("scaler, 4 polls/min", polls_per_minute=4),
    ScalerStrategy("scaler, no protection", scale_in_protection=False),
    STEP,
    StepStrategy("CDK step, queue asleep before", asleep_before_first_message=True),
    StepStrategy("CDK step, metrics on time", metric_delay_seconds=0),
)


@dataclass(frozen=True)
class Verdict:
    """The issue's acceptance for one scaler run against one step-policy run."""

    passed: bool
    text: str


@dataclass(frozen=True)
class PhaseSweep:
    """Tasks stopped mid-message by two strategies at every phase of the trickle."""

    scaler_stops: tuple[int, ...]
    step_stops: tuple[int, ...]

    @property
    def ahead_at_every_phase(self) -> bool:
        return max(self.scaler_stops) < min(self.step_stops)

    def text(self, scaler_label: str, step_label: str) -> str:
        return (
            f"tasks stopped mid-message at each of the {len(self.scaler_stops)} phases of the "
            f"trickle (offsets 0-{len(self.scaler_stops) - 1} s): {scaler_label} "
            f"{_spread(self.scaler_stops)}, {step_label} {_spread(self.step_stops)}"
        )


def phase_sweep(scaler: Strategy, step: Strategy, timeline: Timeline | None = None) -> PhaseSweep:
    """Both strategies on the timeline with its trickle shifted by every offset from 0 to one
    interval less: a lead that holds at every phase is not a coincidence of timing."""
    timeline = timeline or Timeline()
    offsets = range(max(1, timeline.trickle_every_seconds))
    shifted = [replace(timeline, trickle_offset_seconds=offset) for offset in offsets]
    return PhaseSweep(
        scaler_stops=tuple(simulate(scaler, t).stopped_holding_message for t in shifted),
        step_stops=tuple(simulate(step, t).stopped_holding_message for t in shifted),
    )


def _spread(values: Sequence[int]) -> str:
    low, high = min(values), max(values)
    return f"{low} at every phase" if low == high else f"{low} to {high}"


def acceptance(scaler: Outcome, step: Outcome, sweep: PhaseSweep | None = None) -> Verdict:
    """The scaler ahead of the step policy on time to first consumer and on tasks stopped
    mid-message (strictly fewer, and at every phase of the trickle when a sweep is given), at
    no more task-minutes."""
    first = _or_inf(scaler.first_consumer_seconds) < _or_inf(step.first_consumer_seconds)
    stopped = scaler.stopped_holding_message < step.stopped_holding_message
    if sweep is not None:
        stopped = stopped and sweep.ahead_at_every_phase
    tie_at_zero = scaler.stopped_holding_message == step.stopped_holding_message == 0
    cost = round(scaler.task_minutes, 1) <= round(step.task_minutes, 1)
    parts = [
        f"time to first consumer {_show(scaler.first_consumer_seconds)} vs "
        f"{_show(step.first_consumer_seconds)} s ({'ahead' if first else 'NOT ahead'})",
        f"tasks stopped mid-message {scaler.stopped_holding_message} vs "
        f"{step.stopped_holding_message}"
        + (
            ""
            if sweep is None
            else f", at every trickle phase at most {max(sweep.scaler_stops)} vs at least "
            f"{min(sweep.step_stops)}"
        )
        + f" ({_ahead(stopped, tie_at_zero)})",
        f"task-minutes {scaler.task_minutes:.1f} vs {step.task_minutes:.1f} "
        f"({'no more' if cost else 'MORE'})",
    ]
    passed = first and stopped and cost
    return Verdict(passed, f"{'PASS' if passed else 'MISS'}: " + "; ".join(parts))


def _ahead(ahead: bool, tie_at_zero: bool) -> str:
    if ahead:
        return "ahead"
    return "NOT ahead: a tie, neither stops one" if tie_at_zero else "NOT ahead"


def _or_inf(value: int | None) -> float:
    return math.inf if value is None else float(value)


def _show(value: int | None) -> str:
    return "never" if value is None else f"{value:,}"


MEASUREMENTS: tuple[tuple[str, str], ...] = (
    ("seconds from first message to first consumer able to work", "first_consumer_seconds"),
    ("seconds until the burst is drained", "burst_drained_seconds"),
    ("task-minutes spent", "task_minutes"),
    ("tasks stopped while holding a message", "stopped_holding_message"),
    ("seconds from queue and in-flight empty to zero tasks", "back_to_zero_seconds"),
    (f"messages started more than {LATE_AFTER_SECONDS // 60} min after arrival", "late_messages"),
)


def side_by_side(outcomes: Sequence[Outcome]) -> str:
    """Every measurement of every strategy, one column each (Markdown)."""
    header = ["measurement", *(outcome.label for outcome in outcomes)]
    lines = [
        header,
        *([name] + [_cell(o, field) for o in outcomes] for name, field in MEASUREMENTS),
    ]
    lines.append(
        ["scaling decisions (decide calls / alarm invocations)"]
        + [f"{o.decisions:,}" for o in outcomes]
    )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def row(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join(
        [row(lines[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(row, lines[1:])]
    )


def _cell(outcome: Outcome, field: str) -> str:
    value = getattr(outcome, field)
    if value is None:
        return "never"
    return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"


def headline_rows(scaler: Outcome, step: Outcome) -> list[Row]:
    """The scaler against the step policy in the table every benchmark prints; the issue's
    three criteria are targets, the rest information."""
    ahead = Target("delta<=", -1.0, "s")
    rows = [
        Row(
            "scaler sim: seconds to first consumer",
            _number(scaler.first_consumer_seconds),
            _number(step.first_consumer_seconds),
            ahead,
            unit="s",
            note=f"{scaler.label} vs {step.label}; must be ahead (at least 1 s sooner)",
        ),
        Row(
            "scaler sim: seconds until the burst is drained",
            _number(scaler.burst_drained_seconds),
            _number(step.burst_drained_seconds),
            Target("info"),
            unit="s",
        ),
        Row(
            "scaler sim: task-minutes",
            round(scaler.task_minutes, 1),
            round(step.task_minutes, 1),
            Target("ratio<=", 1.0),
            note="no more task-minutes than the step policy",
        ),
        Row(
            "scaler sim: tasks stopped holding a message",
            float(scaler.stopped_holding_message),
            float(step.stopped_holding_message),
            Target("delta<=", -1.0),
            note="must be ahead: strictly fewer",
        ),
        Row(
            "scaler sim: seconds from empty to zero tasks",
            _number(scaler.back_to_zero_seconds),
            _number(step.back_to_zero_seconds),
            Target("info"),
            unit="s",
        ),
        Row(
            f"scaler sim: messages started > {LATE_AFTER_SECONDS // 60} min late",
            float(scaler.late_messages),
            float(step.late_messages),
            Target("info"),
        ),
    ]
    return rows


def _number(value: int | None) -> float:
    # "never" (not within the horizon) as infinity, so that it compares as the worst figure
    return math.inf if value is None else float(value)


def parameters() -> str:
    """The model's figures, one line, for under the tables."""
    return (
        f"timeline: empty {IDLE_BEFORE_SECONDS // 60} min, {BURST_MESSAGES} messages at once, "
        f"then 1 every {TRICKLE_EVERY_SECONDS} s for {TRICKLE_FOR_SECONDS // 60} min, empty "
        f"{IDLE_AFTER_SECONDS // 60} min (runs on until settled, at most "
        f"{SETTLE_LIMIT_SECONDS // 60} min more); consumer: 1 message at a time, "
        f"{PROCESSING_SECONDS} s each, able to receive {START_LATENCY_SECONDS} s after "
        f"desiredCount rises, visibility timeout {VISIBILITY_TIMEOUT_SECONDS} s, killed "
        f"mid-message when stopped; ECS stops the oldest unprotected tasks first; scaler: "
        f"ScalingPolicy(messages_per_task={MESSAGES_PER_TASK}, min_tasks=0, "
        f"max_tasks={MAX_TASKS}, activation_messages=1, cooldown_seconds="
        f"{SCALER_COOLDOWN_SECONDS}), first poll at :{SCALER_FIRST_POLL_SECOND:02d}; step: "
        f"CDK default steps (visible <= 0: -1, >= 100: +1, >= 500: +5), capacity 0-{MAX_TASKS}, "
        f"cooldown 300 s, Maximum over 5 min, 1 evaluation period, alarms evaluated every "
        f"minute, datapoints {SQS_METRIC_DELAY_SECONDS // 60} min late "
        f"(asleep queue: first ones {SQS_WAKE_DELAY_SECONDS // 60} min after its first "
        "message; on time: 0 s)"
    )


def report(strategies: Sequence[Strategy] = STRATEGIES) -> tuple[str, list[Row]]:
    """The section ``python -m bench`` prints (tables, verdicts, parameters) and its rows."""
    runs = [(strategy, simulate(strategy)) for strategy in strategies]
    outcomes = [outcome for _, outcome in runs]
    scaler = next(outcome for strategy, outcome in runs if strategy == SCALER)
    step = next(outcome for strategy, outcome in runs if strategy == STEP)
    sweep = phase_sweep(SCALER, STEP)
    rows = headline_rows(scaler, step)
    rows.append(
        Row(
            "scaler sim: tasks stopped holding a message, worst trickle phase",
            float(max(sweep.scaler_stops)),
            float(min(sweep.step_stops)),
            Target("delta<=", -1.0),
            note="the scaler's most against the step policy's fewest, over every phase",
        )
    )
    verdict = acceptance(scaler, step, sweep)
    others = [
        f"- against {outcome.label}: {acceptance(scaler, outcome).text}"
        for strategy, outcome in runs
        if isinstance(strategy, StepStrategy) and strategy != STEP
    ]
    text = "\n".join(
        [
            "scaler simulation (bench/scaler_sim.py): one SQS queue, one ECS service",
            "",
            render_table(rows),
            "",
            side_by_side(outcomes),
            "",
            sweep.text(SCALER.label, STEP.label),
            f"acceptance, {SCALER.label} vs {STEP.label}: {verdict.text}",
            *(
                ["same check against the other step models (not the acceptance):", *others]
                if others
                else []
            ),
            "",
            f"parameters: {parameters()}",
        ]
    )
    return text, rows


def section() -> tuple[str, list[Row]]:
    """``report()``, or one SKIP row while functions/batchwire/scaler.py does not exist."""
    try:
        import batchwire.scaler  # noqa: F401
    except ModuleNotFoundError as error:
        if error.name not in ("batchwire.scaler", "batchwire"):
            raise
        row = Row("scaler sim: all", None, None, Target("info"), note="no batchwire.scaler yet")
        return "scaler simulation: skipped, functions/batchwire/scaler.py does not exist yet", [row]
    return report()
