"""Whether a stopped ECS task runs again: the exit-code contract, stop codes, rules, backoff.

Pure functions over data, no AWS. The order of evaluation, first answer wins:

1. service tasks (group ``service:...``) and UserInitiated / ServiceSchedulerInitiated
   stops: never retried (a service or a person stopped them on purpose);
2. the exit-code contract on the containers that count: 3 rejected (notify), 4 not
   processed (dead-letter, no notification), all 0 done; these cannot be overridden;
3. the configured rules, like AWS Batch ``evaluateOnExit``: RETRY or EXIT;
4. built-in: TaskFailedToStart, SpotInterruption, TerminationNotice, and a stopped
   reason CannotPullContainerError* / ResourceInitializationError*: retry; any other
   non-zero exit code: retry; a missing exit code is not success: retry when the stop
   code is known, else the configured default for unknown stop codes (EXIT by default).

A retry past the attempt cap becomes ``exhausted``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Annotated, Literal

import msgspec

from batchwire.errors import describe_validation_error
from batchwire.task_events import ContainerState, TaskDetail

DecisionAction = Literal["ignore", "done", "retry", "exhausted", "reject", "park"]

#: Exit codes whose meaning the container promises (DESIGN.md, the exit-code contract).
EXIT_DONE, EXIT_REJECTED, EXIT_NOT_PROCESSED = 0, 3, 4
CONTRACT_EXIT_CODES = {str(EXIT_DONE), str(EXIT_REJECTED), str(EXIT_NOT_PROCESSED)}

NEVER_RETRIED_STOP_CODES = frozenset({"UserInitiated", "ServiceSchedulerInitiated"})
RETRIED_STOP_CODES = frozenset({"TaskFailedToStart", "SpotInterruption", "TerminationNotice"})
KNOWN_STOP_CODES = NEVER_RETRIED_STOP_CODES | RETRIED_STOP_CODES | {"EssentialContainerExited"}
#: Not the container's fault: the image or a secret could not be fetched, and so on.
RETRIED_REASONS = ("CannotPullContainerError*", "ResourceInitializationError*")
MAX_RULES = 10


class RetryRule(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One rule in the spirit of Batch ``evaluateOnExit``: every condition given must match.

    Conditions are case-sensitive globs (``*``, ``?``, ``[...]``): ``onExitCode`` on the
    deciding container's exit code, ``onReason`` on its reason, ``onStatusReason`` on
    the task's stoppedReason, ``onStopCode`` on the task's stopCode. A rule needs at least
    one condition, and ``onExitCode`` cannot name a code the exit-code contract fixes.
    """

    action: Annotated[str, msgspec.Meta(pattern="(?i)^(RETRY|EXIT)$")]
    onExitCode: str | None = None
    onReason: str | None = None
    onStatusReason: str | None = None
    onStopCode: str | None = None

    def __post_init__(self) -> None:
        if self.onExitCode in CONTRACT_EXIT_CODES:
            raise ValueError(
                f"onExitCode {self.onExitCode} is fixed by the exit-code contract (0 done, "
                "3 rejected, 4 not processed); rules apply to the other outcomes"
            )
        if not self.describe():
            raise ValueError("give at least one on... condition")

    @property
    def retries(self) -> bool:
        return self.action.upper() == "RETRY"

    def matches(
        self, exit_code: int | None, container_reason: str | None, task: TaskDetail
    ) -> bool:
        conditions = (
            (self.onExitCode, None if exit_code is None else str(exit_code)),
            (self.onReason, container_reason),
            (self.onStatusReason, task.stoppedReason),
            (self.onStopCode, task.stopCode),
        )
        given = [(glob, value) for glob, value in conditions if glob is not None]
        return bool(given) and all(
            value is not None and fnmatchcase(value, glob) for glob, value in given
        )

    def describe(self) -> str:
        fields = msgspec.structs.asdict(self)
        return ", ".join(
            f"{key}={value!r}"
            for key, value in fields.items()
            if key != "action" and value is not None
        )


#: The configured rules (RETRIER_RULES), first match wins; each rule checks itself as it is read.
RetryRules = Annotated[tuple[RetryRule, ...], msgspec.Meta(max_length=MAX_RULES)]


def parse_rules(text: str) -> tuple[RetryRule, ...]:
    """Rules from their JSON text, checked as RETRIER_RULES is; ValueError names the rule and
    field that is wrong."""
    try:
        raw = json.loads(text or "[]")
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON: {error}") from None
    if not isinstance(raw, list):
        raise ValueError("must be a JSON list of rules")
    try:
        return msgspec.convert(raw, RetryRules)
    except msgspec.ValidationError as error:
        (problem,) = describe_validation_error(error, raw)
        raise ValueError(problem) from None


@dataclass(frozen=True)
class RetryPolicy:
    """What the retrier is configured to do (see docs/retrier.md)."""

    max_attempts: int = 3
    rules: tuple[RetryRule, ...] = ()
    unknown_stop_code: Literal["RETRY", "EXIT"] = "EXIT"


@dataclass(frozen=True)
class RetryDecision:
    """What to do about one stopped task, and why, in words a person can act on."""

    action: DecisionAction
    reason: str
    container: str | None = None
    exit_code: int | None = None
    #: The reason without the attempt count, for one-line summaries.
    cause: str = ""


def retry_decision(
    task: TaskDetail,
    attempt: int,
    policy: RetryPolicy,
    counted: Collection[str] | None = None,
) -> RetryDecision:
    """Decide about a STOPPED task that was run ``attempt`` (1 = the first run).

    ``counted`` names the containers whose exit codes decide (None: all of them; names
    absent from the event are ignored, and if none is present all containers count).
    """
    stop = task.stopCode
    if (task.group or "").startswith("service:"):
        return RetryDecision("ignore", f"service task ({task.group}): its service replaces it")
    if stop in NEVER_RETRIED_STOP_CODES:
        return RetryDecision("ignore", f"stopped on purpose ({stop}): never retried")

    containers = _counted_containers(task.containers, counted)
    for code, action in ((EXIT_REJECTED, "reject"), (EXIT_NOT_PROCESSED, "park")):
        culprit = next((c for c in containers if c.exitCode == code), None)
        if culprit is not None:
            meaning = "rejected its input" if code == EXIT_REJECTED else "did not process its input"
            return RetryDecision(
                action,  # type: ignore[arg-type]
                f"container {culprit.name} exited {code}: {meaning} (exit-code contract)",
                culprit.name,
                code,
            )
    if containers and all(c.exitCode == EXIT_DONE for c in containers):
        return RetryDecision("done", "every counted container exited 0", containers[0].name, 0)

    failing = _deciding_container(containers)
    name = failing.name if failing else None
    exit_code = failing.exitCode if failing else None
    reason_text = failing.reason if failing else None

    for index, rule in enumerate(policy.rules):
        if rule.matches(exit_code, reason_text, task):
            because = f"rule {index} ({rule.describe()}) says {rule.action.upper()}"
            if rule.retries:
                return _retry_or_exhausted(because, attempt, policy, name, exit_code)
            return RetryDecision("reject", because, name, exit_code)

    reasons = [text for text in (task.stoppedReason, reason_text) if text]
    if any(fnmatchcase(text, glob) for text in reasons for glob in RETRIED_REASONS):
        because = f"could not start: {_first_line(task.stoppedReason or reason_text)}"
        return _retry_or_exhausted(because, attempt, policy, name, exit_code)
    if stop in RETRIED_STOP_CODES:
        because = f"stopped by {stop}: {_first_line(task.stoppedReason)}"
        return _retry_or_exhausted(because, attempt, policy, name, exit_code)
    if exit_code is not None:
        because = f"container {name} exited {exit_code}"
        return _retry_or_exhausted(because, attempt, policy, name, exit_code)
    missing = f"no exit code from {name or 'any container'} (not a success)"
    if stop in KNOWN_STOP_CODES:
        return _retry_or_exhausted(f"{missing}, stop code {stop}", attempt, policy, name, None)
    unknown = f"{missing} and stop code {stop or '(none)'} is unknown to the retrier"
    if policy.unknown_stop_code == "RETRY":
        return _retry_or_exhausted(f"{unknown}: RETRY", attempt, policy, name, None)
    return RetryDecision("reject", f"{unknown}: not retried (unknown stop codes: EXIT)", name)


def _counted_containers(
    containers: Sequence[ContainerState], counted: Collection[str] | None
) -> list[ContainerState]:
    if counted is None:
        return list(containers)
    chosen = [c for c in containers if c.name in counted]
    return chosen or list(containers)


def _deciding_container(containers: Sequence[ContainerState]) -> ContainerState | None:
    # The first that failed with a code explains the stop better than one without a code
    failed = [c for c in containers if c.exitCode not in (None, EXIT_DONE)]
    missing = [c for c in containers if c.exitCode is None]
    return next(iter(failed + missing), None)


def _retry_or_exhausted(
    because: str, attempt: int, policy: RetryPolicy, container: str | None, exit_code: int | None
) -> RetryDecision:
    if attempt >= policy.max_attempts:
        return RetryDecision(
            "exhausted",
            f"{because}; run {attempt} of {policy.max_attempts}: no attempts left",
            container,
            exit_code,
            because,
        )
    return RetryDecision(
        "retry", f"{because}; run {attempt} of {policy.max_attempts}", container, exit_code, because
    )


def _first_line(text: str | None, limit: int = 200) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else "(no reason given)"
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(frozen=True)
class Backoff:
    """Step Functions retry timing: interval, backoff rate, max delay, jitter strategy."""

    interval_seconds: float = 60.0
    rate: float = 2.0
    max_delay_seconds: float = 3600.0
    jitter: Literal["FULL", "NONE"] = "FULL"

    def delay_seconds(self, retry_number: int, random: Callable[[], float]) -> int:
        """Seconds to wait before retry ``retry_number`` (1 = the first retry).

        ``interval * rate**(n-1)``, capped at ``max_delay_seconds``; with FULL jitter a
        uniform random part of it (``random()`` in [0, 1)), as Step Functions does.
        """
        exponent = max(0, retry_number - 1)
        try:
            delay = min(self.interval_seconds * self.rate**exponent, self.max_delay_seconds)
        except OverflowError:
            delay = self.max_delay_seconds
        if self.jitter == "FULL":
            delay *= random()
        return round(delay)
