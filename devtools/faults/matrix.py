"""The matrix: each scenario's call sites discovered, each failed with each fault, the
redelivery made, and the side effects checked against the clean run's."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from devtools.faults.injection import (
    ACCESS_DENIED,
    FAULTS,
    READ_TIMEOUT,
    SLACK,
    CallSite,
    Fault,
    slack_sites,
)
from devtools.faults.scenarios import Scenario, Trigger, fresh, poll_done
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
class SecondOrderSite:
    """A call made only after another call failed: absent from the clean run, found in the
    deliveries of a cell of the matrix (its first, or the redelivery after it)."""

    site: CallSite
    #: The first-order cell's call and fault that reach it.
    reached_by: tuple[CallSite, Fault]
    #: The delivery that makes it: 0 the first (the one whose call failed), 1 the redelivery.
    delivery: int


@dataclass(frozen=True)
class Cell:
    """One call site failed with one fault, then redelivered; with neither, the clean run
    delivered twice (the trigger's at-least-once duplicate). A second-order cell fails a
    call of a SecondOrderSite: the fault that reaches it, then this one, then redelivery."""

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
    #: The first-order call and fault that reached a second-order ``site`` (None: first order).
    reached_by: tuple[CallSite, Fault] | None = None
    #: Deliveries between the first and the last (a second-order call failed in one of them).
    between: tuple[Invocation, ...] = ()
    #: The calls each delivery made, in order.
    calls: tuple[tuple[CallSite, ...], ...] = field(default=(), compare=False)

    @property
    def deliveries(self) -> tuple[Invocation, ...]:
        """Every delivery of the event, the first and the last included."""
        return (self.first, *self.between, *((self.again,) if self.again else ()))

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
        if not last.done:
            found.append(f"the redelivery failed too: {last.error or last.status}")
        missing, extra = self.expected - self.effects, self.extra
        if missing:
            found.append("missing: " + ", ".join(sorted(missing.elements())))
        if extra:
            found.append("more than once: " + ", ".join(sorted(extra.elements())))
        lost = self.expected - self.after_first
        if self.first.done and lost and self.trigger is not Trigger.TICK:
            # a delivery that did its work is not delivered again: what it left undone is lost
            found.append(
                "succeeded without " + ", ".join(sorted(lost.elements())) + " (no redelivery)"
            )
        if self.in_progress:
            found.append(f"{self.in_progress} idempotency record(s) left in progress")
        for invocation in self.deliveries:
            if invocation.seconds > invocation.timeout:
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
    second_order: tuple[SecondOrderSite, ...] = ()
    #: The second-order cells, each site with each fault.
    second_cells: tuple[Cell, ...] = ()

    @property
    def every_cell(self) -> tuple[Cell, ...]:
        return (*self.cells, *self.second_cells)


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
    second: tuple[SecondOrderSite, Fault] | None = None,
) -> tuple[Cell, list[CallSite]]:
    """Deliver the scenario's event with ``target`` failing once (None: clean), then again
    as its trigger would; the cell, and the calls the first delivery made.

    With ``second``, ``target`` is the first-order call and fault that reach its site, and
    the site's call fails too, in the delivery that makes it; then the event is delivered
    again, with no fault, when the trigger would.
    """
    world.reset()
    event = scenario.event(world)
    if scenario.freshen:
        world.cells += 1
        event = fresh(event, world.cells)
    primary_on_slack = target is not None and target[0].service == SLACK
    if primary_on_slack and target is not None:
        posted = [Reply.ok()] * (target[0].occurrence - 1)
        world.slack.script(*posted, _slack_fault(target[1]))
    # the faults of each delivery: (first-order, second-order)
    plan: dict[int, list[tuple[CallSite, Fault] | None]] = {0: [None, None]}
    if target is not None and not primary_on_slack:
        plan[0][0] = target
    if second is not None:
        plan.setdefault(second[0].delivery, [None, None])[1] = (second[0].site, second[1])
    # the clean run is delivered twice; a faulted one again after each delivery that failed
    # (the last fault's delivery, then one without)
    limit = 2 if second is None else second[0].delivery + 2
    request_id = str(uuid.uuid4())
    deliveries: list[Invocation] = []
    calls: list[tuple[CallSite, ...]] = []
    after_first: Counter[str] = Counter()
    fired, resent = True, 0
    while len(deliveries) < limit:
        number = len(deliveries)
        if number:
            last = deliveries[-1]
            if target is not None and last.done and scenario.trigger is not Trigger.TICK:
                break
            if world.in_progress():
                # the trigger's retry comes after the last invocation's deadline (see
                # DEADLINE_SECONDS): records it left in progress have expired by then
                time.sleep(max(0.0, last.deadline - time.monotonic()) + 0.05)
            event = scenario.redeliver(world, scenario, event, last)
        first_order, second_order = plan.get(number, [None, None])
        world.injector.begin(first_order, second_order)
        invocation = world.invoke(
            scenario.function,
            event,
            request_id=request_id
            if number == 0 or scenario.trigger is Trigger.ASYNC
            else str(uuid.uuid4()),
            cold=number == 0 or deliveries[-1].status == "init failed",
            deadline_seconds=(
                SLACK_DEADLINE_SECONDS if primary_on_slack and number == 0 else DEADLINE_SECONDS
            ),
        )
        invocation = scenario.judged(invocation)
        poll_done(world, scenario, event, invocation)
        posts = len(world.slack.requests)
        calls.append((*world.injector.calls, *slack_sites(posts)))
        fired = fired and world.injector.fired
        own = second_order or (first_order if second is None else None)
        if own is not None:
            resent += world.injector.resends[own[0]]
        if primary_on_slack and target is not None and number == 0:
            fired = fired and posts >= target[0].occurrence
            if second is None:
                resent += max(0, posts - target[0].occurrence)
        world.injector.begin()
        world.slack.forget(received=False)
        deliveries.append(invocation)
        if number == 0:
            after_first = world.side_effects(scenario.input_queue)
    if len(deliveries) <= max(plan):
        fired = False  # the delivery that was to make the second-order call never came
    first, *rest = deliveries
    site, fault = (second[0].site, second[1]) if second is not None else target or (None, None)
    cell = Cell(
        site=site,
        fault=fault,
        trigger=scenario.trigger,
        first=first,
        again=rest[-1] if rest else None,
        after_first=after_first,
        effects=world.side_effects(scenario.input_queue) if rest else after_first,
        expected=after_first if expected is None else expected,
        in_progress=world.in_progress(),
        fired=fired,
        resent=resent,
        reached_by=target if second is not None else None,
        between=tuple(rest[:-1]),
        calls=tuple(calls),
    )
    return cell, list(calls[0])


def second_order_sites(clean: Cell, cells: Sequence[Cell]) -> tuple[SecondOrderSite, ...]:
    """The calls the cells' deliveries made and no delivery of the clean run made, told
    apart by service, operation and the code that made them (not by occurrence).

    Each is reached by one cell: the first, in the tables' order, whose failed first
    delivery had already made a side effect (what a lookup after a lost answer is for), or
    else the first that made the call; with the call's occurrence in that cell's delivery.
    """
    made = {_key(call) for calls in clean.calls for call in calls}
    found: dict[tuple[str, str, str], list[tuple[bool, SecondOrderSite]]] = {}
    for cell in cells:
        if cell.site is None or cell.fault is None:
            continue
        acted = not cell.first.done and bool(cell.after_first)
        seen: set[tuple[str, str, str]] = set()
        for delivery, calls in enumerate(cell.calls):
            for call in calls:
                key = _key(call)
                if call.service == SLACK or key in made or key in seen:
                    continue
                seen.add(key)
                reached = SecondOrderSite(call, (cell.site, cell.fault), delivery)
                found.setdefault(key, []).append((acted, reached))
    return tuple(
        next((site for acted, site in reached if acted), reached[0][1])
        for reached in found.values()
    )


def _key(call: CallSite) -> tuple[str, str, str]:
    return (call.service, call.operation, call.where)


def run_scenario(
    world: World, scenario: Scenario, progress: Callable[[Cell], None] | None = None
) -> ScenarioRun:
    """Discover the scenario's call sites with a clean run, then fail each with each fault;
    then fail each second-order site found with each fault, reached by the first fault
    found to reach it."""
    start = time.monotonic()
    scenario.event(world)  # what the event needs that outlives a reset (a task to stop...)
    clean, sites = run_cell(world, scenario, None)
    if not clean.first.done:
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
    second_order = second_order_sites(clean, cells[1:])
    second_cells = []
    for found in second_order:
        for fault in FAULTS:
            cell, _ = run_cell(world, scenario, found.reached_by, clean.after_first, (found, fault))
            second_cells.append(cell)
            if progress is not None:
                progress(cell)
    return ScenarioRun(
        scenario,
        tuple(sites),
        clean.after_first,
        tuple(cells),
        time.monotonic() - start,
        second_order,
        tuple(second_cells),
    )
