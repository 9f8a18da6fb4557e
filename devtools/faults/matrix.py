"""The matrix: each scenario's call sites discovered, each failed with each fault, the
redelivery made, and the side effects checked against the clean run's."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from devtools.faults.injection import (
    ACCESS_DENIED,
    FAULTS,
    READ_TIMEOUT,
    SLACK,
    CallSite,
    Fault,
    slack_sites,
)
from devtools.faults.scenarios import Scenario, Trigger, fresh
from devtools.faults.world import (
    DEADLINE_SECONDS,
    SLACK_DEADLINE_SECONDS,
    SLACK_HANG_SECONDS,
    Invocation,
    World,
)
from devtools.slack_receiver import Reply


@dataclass(frozen=True)
class KnownLimit:
    """A cell that cannot be made exactly-once: which, why, and what a person does."""

    anchor: str
    title: str
    fault: Fault
    service: str
    operation: str
    #: The code that makes the call (a part of CallSite.where), and how the page says it.
    where: str
    made_by: str
    #: What the cell leaves twice (the start of the side effect's description).
    effect: str
    why: str
    todo: str

    def covers(self, cell: Cell) -> bool:
        """Whether ``cell`` is this limit: its call, its fault, and nothing wrong but the
        side effect this limit leaves twice."""
        site = cell.site
        if site is None or cell.fault is not self.fault:
            return False
        if (site.service, site.operation) != (self.service, self.operation):
            return False
        if self.where not in site.where:
            return False
        twice = list(cell.extra.elements())
        only_twice = len(cell.problems) == 1 and cell.problems[0].startswith("more than once:")
        return only_twice and all(effect.startswith(self.effect) for effect in twice)


_SAVE = "idempotency:OnceStore.run_once"
_NOT_SAVED = (
    "the side effect happened, then the idempotency record saying so could not be saved (the "
    "call that writes it failed for good, past botocore's retries), so the record stays in "
    "progress until the invocation's timeout and the redelivery does it again. Batch jobs and "
    "ECS tasks are looked up before a second attempt (they carry their submission's or "
    "message's id); a message or post cannot be looked up, and a second one is better than none"
)
_SAVE_TODO = (
    "the failed invocation's log says IdempotencyPersistenceLayerError: check the function's "
    "access to IdempotencyTable (dynamodb:UpdateItem) and the table's throttling"
)
KNOWN_LIMITS: tuple[KnownLimit, ...] = (
    KnownLimit(
        "slack-answer-lost",
        "Slack posted, its answer was lost",
        READ_TIMEOUT,
        SLACK,
        "webhook POST",
        "",
        "the notifier",
        "Slack post:",
        "an incoming webhook takes no idempotency key and cannot be asked what it posted; "
        "the webhook client, which saw no answer, posts again",
        "nothing to repair: the channel shows the alert twice",
    ),
    KnownLimit(
        "slack-post-not-recorded",
        "A Slack post whose record was not saved",
        ACCESS_DENIED,
        "dynamodb",
        "UpdateItem",
        f"{_SAVE} <- notify:",
        "the notifier's record of a post",
        "Slack post:",
        _NOT_SAVED,
        f"nothing to repair in Slack (the alert shows twice); {_SAVE_TODO}",
    ),
    KnownLimit(
        "relaunch-message-answer-lost",
        "The relaunch message sent, its answer lost",
        READ_TIMEOUT,
        "sqs",
        "SendMessage",
        "retrier:_enqueue",
        "the retrier's relaunch message",
        "SQS message in RetrierDelayQueue",
        "a standard SQS queue has no deduplication, and botocore sends a SendMessage again "
        "when its answer was lost. The second message starts no second task: the relaunch "
        "runs once per origin, attempt and try (see the retrier's relaunch scenario, whose "
        "clean row delivers a relaunch message twice)",
        "nothing: the second relaunch message is absorbed (DuplicatesAbsorbed)",
    ),
    KnownLimit(
        "relaunch-message-not-recorded",
        "A relaunch message whose record was not saved",
        ACCESS_DENIED,
        "dynamodb",
        "UpdateItem",
        f"{_SAVE} <- retrier:SideEffects.run",
        "the retrier's record of a relaunch message",
        "SQS message in RetrierDelayQueue",
        f"{_NOT_SAVED}. As above, the second relaunch message starts no second task",
        f"nothing to repair; {_SAVE_TODO}",
    ),
    KnownLimit(
        "dead-letter-answer-lost",
        "The dead-letter record sent, its answer lost",
        READ_TIMEOUT,
        "sqs",
        "SendMessage",
        "retrier:_send_dead_letter",
        "the retrier's dead-letter record",
        "SQS message in RetrierDeadLetterQueue",
        "a standard SQS queue has no deduplication, and botocore sends a SendMessage again "
        "when its answer was lost",
        "`batchwire dlq` lists the record twice (the same taskArn, kind and attempt): handle "
        "the task once, then delete both",
    ),
    KnownLimit(
        "dead-letter-not-recorded",
        "A dead-letter record whose record was not saved",
        ACCESS_DENIED,
        "dynamodb",
        "UpdateItem",
        f"{_SAVE} <- retrier:SideEffects.run",
        "the retrier's record of a dead-letter record",
        "SQS message in RetrierDeadLetterQueue",
        _NOT_SAVED,
        f"as above, `batchwire dlq` lists the record twice; {_SAVE_TODO}",
    ),
    KnownLimit(
        "notice-answer-lost",
        "A notice published, its answer lost",
        READ_TIMEOUT,
        "sns",
        "Publish",
        ":_publish",
        "the retrier's and the watch's notices",
        "SNS notification on NotificationTopic",
        "a standard SNS topic has no deduplication, and botocore sends a Publish again when "
        "its answer was lost",
        "nothing: the notifier posts the notice once and holds the second back (flood "
        "control, AlertWindowSeconds; a later post of the same alert counts it as held back)",
    ),
    KnownLimit(
        "notice-not-recorded",
        "A notice whose record was not saved",
        ACCESS_DENIED,
        "dynamodb",
        "UpdateItem",
        _SAVE,
        "the retrier's and the watch's records of a notice",
        "SNS notification on NotificationTopic",
        _NOT_SAVED,
        f"as above, the notifier holds the second notice back; {_SAVE_TODO}",
    ),
)


@dataclass(frozen=True)
class Cell:
    """One call site failed with one fault, then redelivered; with neither, the clean run
    delivered twice (the trigger's at-least-once duplicate)."""

    site: CallSite | None
    fault: Fault | None
    trigger: Trigger
    first: Invocation
    #: The trigger's redelivery, if it made one.
    again: Invocation | None
    #: Side effects after the first delivery, at the end, and the clean run's.
    after_first: Counter[str]
    effects: Counter[str]
    expected: Counter[str]
    #: Idempotency records left in progress at the end.
    in_progress: int
    #: Whether the fault was injected, and how often the call was sent again after it.
    fired: bool
    resent: int

    @property
    def extra(self) -> Counter[str]:
        """The side effects beyond the clean run's."""
        return self.effects - self.expected

    @property
    def problems(self) -> list[str]:
        """What makes the cell not exactly-once (nothing: it is)."""
        found = []
        if not self.fired:
            found.append("the call was never made, so the fault was never injected")
        last = self.again or self.first
        if last.failed:
            found.append(f"the redelivery failed too: {last.error or last.status}")
        missing, extra = self.expected - self.effects, self.extra
        if missing:
            found.append("missing: " + ", ".join(sorted(missing.elements())))
        if extra:
            found.append("more than once: " + ", ".join(sorted(extra.elements())))
        lost = self.expected - self.after_first
        if not self.first.failed and lost and self.trigger is not Trigger.TICK:
            # a delivery that succeeded is not delivered again: what it left undone is lost
            found.append(
                "succeeded without " + ", ".join(sorted(lost.elements())) + " (no redelivery)"
            )
        if self.in_progress:
            found.append(f"{self.in_progress} idempotency record(s) left in progress")
        for invocation in (self.first, self.again):
            if invocation is not None and invocation.seconds > invocation.timeout:
                found.append(
                    f"an invocation ran {invocation.seconds:.1f} s, past its {invocation.timeout} "
                    "s deadline: Lambda would have stopped it"
                )
        return found

    @property
    def known_limit(self) -> KnownLimit | None:
        return next((limit for limit in KNOWN_LIMITS if limit.covers(self)), None)

    @property
    def exactly_once(self) -> bool:
        return not self.problems

    @property
    def acceptable(self) -> bool:
        """Exactly-once, or one of the KNOWN_LIMITS."""
        return self.exactly_once or self.known_limit is not None


@dataclass(frozen=True)
class ScenarioRun:
    scenario: Scenario
    sites: tuple[CallSite, ...]
    expected: Counter[str]
    cells: tuple[Cell, ...]
    seconds: float


def _slack_fault(fault: Fault) -> Reply:
    replies = {
        "throttled": Reply.rate_limited(retry_after=1),
        "server-error": Reply.server_error(),
        "read-timeout": Reply.posted_then_hang(SLACK_HANG_SECONDS),
        "connect-timeout": Reply.dropped(),
        "access-denied": Reply.forbidden(),
    }
    return replies[fault.name]


def run_cell(
    world: World,
    scenario: Scenario,
    target: tuple[CallSite, Fault] | None,
    expected: Counter[str] | None = None,
) -> tuple[Cell, list[CallSite]]:
    """Deliver the scenario's event with ``target`` failing once (None: clean), then again
    as its trigger would; the cell, and the calls the first delivery made."""
    world.reset()
    event = scenario.event(world)
    if scenario.freshen:
        world.cells += 1
        event = fresh(event, world.cells)
    site, fault = target if target is not None else (None, None)
    on_slack = site is not None and site.service == SLACK
    world.injector.begin(None if on_slack else target)
    if on_slack and site is not None and fault is not None:
        world.slack.script(*[Reply.ok()] * (site.occurrence - 1), _slack_fault(fault))
    request_id = str(uuid.uuid4())
    deadline = SLACK_DEADLINE_SECONDS if on_slack else DEADLINE_SECONDS
    first = world.invoke(
        scenario.function, event, request_id=request_id, cold=True, deadline_seconds=deadline
    )
    posts = len(world.slack.requests)
    calls = [*world.injector.calls, *slack_sites(posts)]
    if on_slack and site is not None:
        fired, resent = posts >= site.occurrence, max(0, posts - site.occurrence)
    else:
        fired, resent = world.injector.fired or target is None, world.injector.resent
    world.injector.begin()
    world.slack.forget(received=False)
    after_first = world.side_effects()
    again = None
    if target is None or first.failed or scenario.trigger is Trigger.TICK:
        if world.in_progress():
            # the trigger's retry comes after the first invocation's deadline (see
            # DEADLINE_SECONDS): records it left in progress have expired by then
            time.sleep(max(0.0, first.deadline - time.monotonic()) + 0.05)
        redelivered = scenario.redeliver(world, scenario, event, first)
        same_request = scenario.trigger is Trigger.ASYNC
        again = world.invoke(
            scenario.function,
            redelivered,
            request_id=request_id if same_request else str(uuid.uuid4()),
            cold=first.status == "init failed",
        )
    effects = after_first if again is None else world.side_effects()
    cell = Cell(
        site=site,
        fault=fault,
        trigger=scenario.trigger,
        first=first,
        again=again,
        after_first=after_first,
        effects=effects,
        expected=after_first if expected is None else expected,
        in_progress=world.in_progress(),
        fired=fired,
        resent=resent,
    )
    return cell, calls


def run_scenario(
    world: World, scenario: Scenario, progress: Callable[[Cell], None] | None = None
) -> ScenarioRun:
    """Discover the scenario's call sites with a clean run, then fail each with each fault."""
    start = time.monotonic()
    scenario.event(world)  # what the event needs that outlives a reset (a task to stop...)
    clean, sites = run_cell(world, scenario, None)
    if clean.first.failed:
        raise RuntimeError(
            f"{scenario.key}: its clean run failed, nothing to compare with: "
            f"{clean.first.error or clean.first.status}"
        )
    cells = [clean]
    for site in sites:
        for fault in FAULTS:
            cell, _ = run_cell(world, scenario, (site, fault), clean.after_first)
            cells.append(cell)
            if progress is not None:
                progress(cell)
    return ScenarioRun(
        scenario, tuple(sites), clean.after_first, tuple(cells), time.monotonic() - start
    )
