"""The watch: what each schedule promised (its ``expect``) against what its runs did.

A schedule in the stack's Scheduler group declares an expectation in its input, next to the
jobs it submits::

    {"jobs": [...], "expect": {"withinMinutes": 180, "jobs": ["nightly-*", "publish-*"]}}

For every firing the schedule's expression says happened, the watch looks for the run record
the submitter writes (batchwire.runs). None ``graceMinutes`` after the scheduled time: the
firing was missed. A record whose jobs, and the jobs they chained, have not all succeeded
``withinMinutes`` after the scheduled time: the run is overdue, and the finding names what is
missing (a job still RUNNABLE, one that FAILED, a chain that stopped after some job). Each
firing gets one verdict, recorded, so it is reported once. A schedule with an expectation that
is DISABLED fires nothing: that is reported once per change of the schedule, and its
firings are not expected until it is enabled again.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo

import msgspec

from batchwire.config import IdempotentSettings
from batchwire.errors import RequestError, describe_validation_error
from batchwire.idempotency import RunOnce, run_once_noting
from batchwire.jobs import Expectation
from batchwire.runs import RecordedJob, RunRecords, firing_jobs, timestamp
from batchwire.schedule_expressions import ScheduleExpressionError, parse_schedule

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_scheduler import EventBridgeSchedulerClient as SchedulerClient
    from mypy_boto3_sns import SNSClient

#: At most this many expected firings of one schedule are looked at per run of the watch
#: (a rate(1 minute) schedule with a day-long deadline would otherwise mean 1,440).
MAX_FIRINGS_PER_SCHEDULE = 500
#: How far back past the longest deadline the watch looks for firings it has no verdict on.
LOOKBACK_MARGIN = timedelta(hours=1)
#: DescribeJobs takes at most this many job ids per call.
DESCRIBE_JOBS_BATCH = 100

Verdict = Literal["ok", "missed", "overdue", "disabled"]


@dataclass(frozen=True)
class WatchedSchedule:
    """A Scheduler schedule whose input declares an expectation."""

    name: str
    arn: str
    group: str
    expression: str
    timezone: str
    state: str
    #: The last change to the schedule (or its creation): no firing is expected before it.
    changed_at: datetime
    expect: Expectation
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class Finding:
    """The watch's verdict on one firing (or, for ``disabled``, on the schedule)."""

    verdict: Verdict
    schedule: WatchedSchedule
    scheduled_time: datetime
    lines: tuple[str, ...] = ()
    chain_id: str = ""

    @property
    def identity(self) -> str:
        """Stable across runs of the watch: what makes the notice about it happen once."""
        return f"{self.verdict}#{self.schedule.arn}@{timestamp(self.scheduled_time)}"

    @property
    def deadline(self) -> datetime:
        return self.scheduled_time + timedelta(minutes=self.schedule.expect.withinMinutes)

    def notice(self, region: str, account: str) -> dict[str, Any]:
        """The message the notifier turns into a Slack post."""
        kind = {
            "missed": "missed-firing",
            "overdue": "run-overdue",
            "disabled": "schedule-disabled",
        }[self.verdict]
        local = self.scheduled_time.astimezone(ZoneInfo(self.schedule.timezone))
        return {
            "kind": kind,
            "schedule": self.schedule.name,
            "scheduleArn": self.schedule.arn,
            "group": self.schedule.group,
            "expression": self.schedule.expression,
            "timezone": self.schedule.timezone,
            "scheduledTime": timestamp(self.scheduled_time),
            "scheduledLocal": local.strftime("%Y-%m-%d %H:%M %Z"),
            "deadline": timestamp(self.deadline) if self.verdict == "overdue" else "",
            "chainId": self.chain_id,
            "lines": list(self.lines),
            "region": region,
            "account": account,
        }


class ExpectationError(ValueError):
    """A schedule's ``expect`` cannot be read; the message names the schedule and field."""


def watched_schedule(schedule: Mapping[str, Any]) -> WatchedSchedule | None:
    """The schedule as the watch sees it (GetSchedule's answer), or None without ``expect``.

    Raises ExpectationError when the input has an ``expect`` the watch cannot use.
    """
    name = str(schedule.get("Name") or "")
    text = (schedule.get("Target") or {}).get("Input")
    try:
        document = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None  # not JSON: the submitter refuses it and says so; nothing to watch
    if not isinstance(document, dict) or "expect" not in document:
        return None
    try:
        expect = msgspec.convert(document["expect"], Expectation)
    except msgspec.ValidationError as error:
        problems = describe_validation_error(error, document["expect"], "expect")
        raise ExpectationError(f"schedule {name}: {'; '.join(problems)}") from None
    expression = str(schedule.get("ScheduleExpression") or "")
    timezone = str(schedule.get("ScheduleExpressionTimezone") or "UTC")
    try:
        parse_schedule(expression, timezone)
    except ScheduleExpressionError as error:
        raise ExpectationError(f"schedule {name}: {error}") from None
    changed = schedule.get("LastModificationDate") or schedule.get("CreationDate")
    if not isinstance(changed, datetime):
        raise ExpectationError(f"schedule {name}: no LastModificationDate or CreationDate")
    return WatchedSchedule(
        name=name,
        arn=str(schedule.get("Arn") or ""),
        group=str(schedule.get("GroupName") or ""),
        expression=expression,
        timezone=timezone,
        state=str(schedule.get("State") or "ENABLED"),
        changed_at=_aware(changed),
        expect=expect,
        start=_aware(schedule["StartDate"]) if schedule.get("StartDate") else None,
        end=_aware(schedule["EndDate"]) if schedule.get("EndDate") else None,
    )


def expected_firings(schedule: WatchedSchedule, after: datetime, until: datetime) -> list[datetime]:
    """The firings the expression gives in ``(after, until]``, the latest at most
    MAX_FIRINGS_PER_SCHEDULE of them, earliest first, in UTC."""
    start = schedule.start
    if start is None and schedule.expression.startswith("rate("):
        start = schedule.changed_at  # a rate counts from its StartDate, else its creation
    parsed = parse_schedule(schedule.expression, schedule.timezone, start)
    firings: list[datetime] = []
    cursor = after
    while True:
        batch = parsed.next_firings(cursor, 100)
        kept = [f.astimezone(UTC) for f in batch if f <= until]
        if schedule.end is not None:
            kept = [f for f in kept if f <= schedule.end]
        firings.extend(kept)
        if len(kept) < len(batch) or len(batch) < 100:
            break
        cursor = batch[-1]
        if len(firings) > 10 * MAX_FIRINGS_PER_SCHEDULE:
            firings = firings[-MAX_FIRINGS_PER_SCHEDULE:]
    return firings[-MAX_FIRINGS_PER_SCHEDULE:]


@dataclass
class _Run:
    """A recorded firing and what the watch learns about its jobs."""

    item: Mapping[str, Any]
    jobs: list[RecordedJob] = field(default_factory=list)


def firings_to_judge(schedule: WatchedSchedule, now: datetime) -> list[datetime]:
    """The firings of an ENABLED ``schedule`` that may be due a verdict at ``now``: from
    LOOKBACK_MARGIN before its longest deadline (or its last change) to its shortest one.
    A schedule that is not ENABLED has none (its verdict is on the schedule itself)."""
    if schedule.state != "ENABLED":
        return []
    grace = timedelta(minutes=schedule.expect.grace_minutes)
    within = timedelta(minutes=schedule.expect.withinMinutes)
    window_from = max(now - max(grace, within) - LOOKBACK_MARGIN, schedule.changed_at)
    return expected_firings(schedule, window_from, now - min(grace, within))


class RecordedFirings:
    """The firing records of one tick, from ``since`` to ``now``, by schedule and time.

    Firings are kept in one partition per UTC day, shared by every schedule: a tick reads
    each day it needs once (a Query with its pages), when the first schedule looks, and
    every schedule it judges takes its own firings from what was read.
    """

    def __init__(self, records: RunRecords, since: datetime, now: datetime) -> None:
        self.records = records
        self.since = since
        self.now = now
        self._by_schedule: dict[str, dict[str, Mapping[str, Any]]] | None = None

    def of(self, schedule: WatchedSchedule) -> dict[str, _Run]:
        """The schedule's recorded firings from ``since`` on, by scheduled time."""
        if self._by_schedule is None:
            self._by_schedule = self._read()
        return {
            scheduled: _Run(item)
            for scheduled, item in self._by_schedule.get(schedule.arn, {}).items()
        }

    def _read(self) -> dict[str, dict[str, Mapping[str, Any]]]:
        by_schedule: dict[str, dict[str, Mapping[str, Any]]] = {}
        day = self.since.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        while day <= self.now:
            for item in self.records.firings_on(day, self.since):
                arn = str(item.get("scheduleArn", {}).get("S") or "")
                by_schedule.setdefault(arn, {})[item["scheduledTime"]["S"]] = item
            day += timedelta(days=1)
        return by_schedule


def check_schedule(
    schedule: WatchedSchedule,
    *,
    now: datetime,
    records: RunRecords,
    describe_jobs: Callable[[Sequence[str]], Sequence[Mapping[str, Any]]],
    recorded: RecordedFirings | None = None,
) -> list[Finding]:
    """Every verdict on ``schedule`` that is due at ``now`` and not given before.

    ``ok`` findings are verdicts too (recorded, never posted): a firing judged once is not
    judged again. Runs still within their deadline and not yet all succeeded get none.
    ``recorded``: the firings one tick read for all its schedules; without it, or when it
    starts later than this schedule's first firing to judge, they are read here.
    """
    if schedule.state != "ENABLED":
        if timestamp(schedule.changed_at) in records.verdicts(schedule.name, schedule.changed_at):
            return []
        return [Finding("disabled", schedule, schedule.changed_at, _disabled_lines(schedule))]
    expect = schedule.expect
    grace = timedelta(minutes=expect.grace_minutes)
    within = timedelta(minutes=expect.withinMinutes)
    firings = firings_to_judge(schedule, now)
    if not firings:
        return []
    judged = records.verdicts(schedule.name, firings[0])
    if recorded is None or recorded.since > firings[0] or recorded.now != now:
        recorded = RecordedFirings(records, firings[0], now)
    runs = recorded.of(schedule)
    findings: list[Finding] = []
    waiting: list[tuple[datetime, _Run]] = []
    for scheduled in firings:
        if timestamp(scheduled) in judged:
            continue
        run = runs.get(timestamp(scheduled))
        if run is None:
            if scheduled + grace <= now:
                findings.append(Finding("missed", schedule, scheduled, _missed_lines(schedule)))
            continue
        run.jobs = firing_jobs(run.item) + records.chained_jobs(str(run.item["chainId"]["S"]))
        waiting.append((scheduled, run))
    statuses = _describe(describe_jobs, [job.job_id for _, run in waiting for job in run.jobs])
    for scheduled, run in waiting:
        problems = judge_run(run.jobs, statuses, expect)
        chain_id = str(run.item["chainId"]["S"])
        if not problems:
            findings.append(Finding("ok", schedule, scheduled, chain_id=chain_id))
        elif scheduled + within <= now:
            findings.append(Finding("overdue", schedule, scheduled, tuple(problems), chain_id))
    return findings


def _describe(
    describe_jobs: Callable[[Sequence[str]], Sequence[Mapping[str, Any]]], ids: Sequence[str]
) -> dict[str, Mapping[str, Any]]:
    unique = list(dict.fromkeys(ids))
    found: dict[str, Mapping[str, Any]] = {}
    for index in range(0, len(unique), DESCRIBE_JOBS_BATCH):
        for job in describe_jobs(unique[index : index + DESCRIBE_JOBS_BATCH]):
            found[str(job["jobId"])] = job
    return found


def judge_run(
    jobs: Sequence[RecordedJob],
    statuses: Mapping[str, Mapping[str, Any]],
    expect: Expectation,
) -> list[str]:
    """What keeps the run from being done, one line each; empty when it is.

    With ``expect.jobs``, each pattern needs a job of that name that SUCCEEDED, and no job
    of the run may have FAILED; without it, every job of the run must have SUCCEEDED.
    """
    problems: list[str] = []
    if expect.jobs:
        named: set[str] = set()
        for pattern in expect.jobs:
            matching = [job for job in jobs if fnmatch.fnmatchcase(job.job_name, pattern)]
            named.update(job.job_id for job in matching)
            if not matching:
                problems.append(_never_submitted(pattern, jobs, statuses))
            elif not any(_status(statuses, job) == "SUCCEEDED" for job in matching):
                problems.append(_not_done(matching[-1], statuses))
        problems.extend(
            _not_done(job, statuses)
            for job in jobs
            if job.job_id not in named and _status(statuses, job) == "FAILED"
        )
    else:
        problems.extend(
            _not_done(job, statuses) for job in jobs if _status(statuses, job) != "SUCCEEDED"
        )
    return problems


def _status(statuses: Mapping[str, Mapping[str, Any]], job: RecordedJob) -> str:
    return str((statuses.get(job.job_id) or {}).get("status") or "UNKNOWN")


def _not_done(job: RecordedJob, statuses: Mapping[str, Mapping[str, Any]]) -> str:
    described = statuses.get(job.job_id) or {}
    status = _status(statuses, job)
    where = f"job {job.job_name} ({job.job_id}, hop {job.hop})"
    if status == "FAILED":
        reason = described.get("statusReason") or "no reason given"
        return f"{where} FAILED: {reason}"
    if status == "UNKNOWN":
        return f"{where} is not known to Batch any more"
    since = _millis(described.get("startedAt") or described.get("createdAt"))
    return f"{where} still {status}" + (f" (since {since})" if since else "")


def _never_submitted(
    pattern: str, jobs: Sequence[RecordedJob], statuses: Mapping[str, Mapping[str, Any]]
) -> str:
    done = [job for job in jobs if _status(statuses, job) == "SUCCEEDED"]
    if not done:
        return f"no job matching {pattern} was submitted"
    last = max(done, key=lambda job: (job.hop, (statuses[job.job_id].get("stoppedAt") or 0)))
    return (
        f"chain stopped after job {last.job_name} ({last.job_id}, hop {last.hop}, SUCCEEDED): "
        f"no job matching {pattern} followed it"
    )


def _missed_lines(schedule: WatchedSchedule) -> tuple[str, ...]:
    grace = schedule.expect.grace_minutes
    return (
        f"never fired: no run was recorded within {grace} min of the scheduled time",
        "the schedule is ENABLED; look for its failed invocations in SchedulerDeadLetterQueue "
        "and the submitter's SubmitFailed metric",
    )


def _disabled_lines(schedule: WatchedSchedule) -> tuple[str, ...]:
    changed = timestamp(schedule.changed_at)
    return (
        f"the schedule is {schedule.state} since {changed}: it fires nothing, and its "
        "firings are not expected until it is enabled again",
        f"to resume: batchwire resume {schedule.name}",
    )


def _millis(value: Any) -> str:
    if not isinstance(value, int | float) or value <= 0:
        return ""
    return timestamp(datetime.fromtimestamp(value / 1000, UTC))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# ------------------------------------------------------------------ one run of the watch


class WatchSettings(IdempotentSettings, frozen=True, kw_only=True):
    """The watch's environment: the group it reads, the records, where notices go."""

    schedule_group: Annotated[str, msgspec.Meta(min_length=1)] = msgspec.field(
        name="SCHEDULE_GROUP"
    )
    runs_table: Annotated[str, msgspec.Meta(min_length=1)] = msgspec.field(name="RUNS_TABLE")
    runs_retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = msgspec.field(
        name="RUNS_RETENTION_DAYS", default=35
    )
    notification_topic_arn: Annotated[str, msgspec.Meta(pattern=r"^arn:aws[a-z-]*:sns:")] = (
        msgspec.field(name="NOTIFICATION_TOPIC_ARN")
    )


@dataclass(frozen=True)
class WatchClients:
    scheduler: SchedulerClient
    batch: BatchClient
    dynamodb: DynamoDBClient
    sns: SNSClient


@dataclass(frozen=True)
class Reported:
    """A finding and whether this run published its notice (False: an earlier run did)."""

    finding: Finding
    published_now: bool


@dataclass
class WatchRun:
    """What one run of the watch found."""

    now: datetime
    watched: list[str] = field(default_factory=list)
    reported: list[Reported] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def count(self, verdict: Verdict) -> int:
        return sum(1 for item in self.reported if item.finding.verdict == verdict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": timestamp(self.now),
            "watched": self.watched,
            "findings": [
                {
                    "verdict": item.finding.verdict,
                    "schedule": item.finding.schedule.name,
                    "scheduledTime": timestamp(item.finding.scheduled_time),
                    "lines": list(item.finding.lines),
                    "publishedNow": item.published_now,
                }
                for item in self.reported
            ],
            "unreadable": self.unreadable,
        }


def tick_time(event: object, fallback: datetime) -> datetime:
    """The time the watch judges at: its own firing's scheduled time (the same for every
    delivery of it), else ``fallback``. Raises RequestError naming the field."""
    if not isinstance(event, Mapping):
        raise RequestError(
            "not a watch tick; nothing was read",
            [
                '(event): expected a JSON object such as {"scheduledTime": "..."}, '
                f"got {type(event).__name__} {event!r:.80}"
            ],
        )
    value = event.get("scheduledTime")
    if value is None:
        return fallback
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise RequestError(
            "not a watch tick; nothing was read",
            [f"scheduledTime: {value!r:.80} is not an ISO 8601 time with a zone"],
        )
    return parsed.astimezone(UTC)


def run_watch(
    event: object,
    *,
    now: datetime,
    settings: WatchSettings,
    clients: WatchClients,
    once: RunOnce,
    region: str,
    account: str,
) -> WatchRun:
    """Judge every watched schedule of the group; publish each missed or overdue finding's
    notice once (through ``once``), then record every verdict so it is not given again."""
    run = WatchRun(now=tick_time(event, now))
    records = RunRecords(settings.runs_table, settings.runs_retention_days, clients.dynamodb)
    schedules: list[WatchedSchedule] = []
    for schedule in _schedules(clients.scheduler, settings.schedule_group):
        try:
            watched = watched_schedule(schedule)
        except ExpectationError as error:
            run.unreadable.append(str(error))
            continue
        if watched is not None:
            schedules.append(watched)
    # one read of the firing records for every schedule: from the earliest firing any judges
    firsts = [firings[0] for w in schedules if (firings := firings_to_judge(w, run.now))]
    recorded = RecordedFirings(records, min(firsts), run.now) if firsts else None
    for watched in schedules:
        run.watched.append(watched.name)
        findings = check_schedule(
            watched,
            now=run.now,
            records=records,
            describe_jobs=lambda ids: clients.batch.describe_jobs(jobs=list(ids))["jobs"],
            recorded=recorded,
        )
        for finding in findings:
            published = False
            if finding.verdict != "ok":
                publish = partial(_publish, clients.sns, settings, finding.notice(region, account))
                done = run_once_noting(once, finding.identity, publish)
                published = done.ran_now
            records.record_verdict(watched.name, finding.scheduled_time, finding.verdict, run.now)
            run.reported.append(Reported(finding, published))
    return run


def _schedules(scheduler: SchedulerClient, group: str) -> list[Mapping[str, Any]]:
    names = [
        summary["Name"]
        for page in scheduler.get_paginator("list_schedules").paginate(GroupName=group)
        for summary in page["Schedules"]
    ]
    return [scheduler.get_schedule(Name=name, GroupName=group) for name in sorted(names)]


def _publish(sns: SNSClient, settings: WatchSettings, note: dict[str, Any]) -> dict[str, str]:
    response = sns.publish(
        TopicArn=settings.notification_topic_arn,
        Message=json.dumps(note),
        MessageAttributes={"kind": {"DataType": "String", "StringValue": note["kind"]}},
    )
    return {"messageId": response["MessageId"]}
