"""The watch's judgement: which firings it expects, what it says a run lacks, and that each
verdict is given once; the run records it reads (moto's DynamoDB, in-process)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batchwire.alerts import alert_from_sns
from batchwire.errors import RequestError
from batchwire.jobs import Expectation, SubmittedJob, parse_job_request
from batchwire.runs import RecordedJob, RunRecords, chain_id_for_firing, timestamp
from batchwire.watch import (
    ExpectationError,
    WatchClients,
    WatchedSchedule,
    WatchSettings,
    check_schedule,
    expected_firings,
    judge_run,
    run_watch,
    tick_time,
    watched_schedule,
)
from devtools.runs_table import create_runs_table
from devtools.watched import create_watched_schedule, watch_tick

ARN = "arn:aws:scheduler:us-east-1:123456789012:schedule/batchwire-ScheduleGroup/nightly"
CREATED = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
FIRING = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def _schedule(expect: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """GetSchedule's answer for a nightly schedule with ``expect`` in its input."""
    document = {"schedule": "<aws.scheduler.schedule-arn>", "jobs": [], "expect": expect}
    answer = {
        "Name": "nightly",
        "Arn": ARN,
        "GroupName": "batchwire-ScheduleGroup",
        "ScheduleExpression": "cron(0 2 * * ? *)",
        "ScheduleExpressionTimezone": "UTC",
        "State": "ENABLED",
        "CreationDate": CREATED,
        "LastModificationDate": CREATED,
        "Target": {"Arn": "arn:aws:lambda:::function:submitter", "Input": json.dumps(document)},
    }
    answer.update(changes)
    return answer


def _watched(expect: dict[str, Any], **changes: Any) -> WatchedSchedule:
    found = watched_schedule(_schedule(expect, **changes))
    assert found is not None
    return found


@pytest.fixture
def records() -> Iterator[RunRecords]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        yield RunRecords(create_runs_table(dynamodb, "runs"), 35, dynamodb)


def _job(name: str, job_id: str) -> SubmittedJob:
    return SubmittedJob(name, job_id, f"arn:aws:batch:::job/{job_id}", "feeds")


def _describer(statuses: Mapping[str, Mapping[str, Any]]) -> Any:
    def describe(ids: Sequence[str]) -> list[Mapping[str, Any]]:
        return [{"jobId": i, **statuses[i]} for i in ids if i in statuses]

    return describe


# -- the expectation in a schedule's input --------------------------------------------


def test_a_schedule_without_expect_is_not_watched() -> None:
    answer = _schedule({})
    answer["Target"]["Input"] = json.dumps({"jobs": []})
    assert watched_schedule(answer) is None


def test_an_unreadable_expectation_names_the_schedule_and_field() -> None:
    with pytest.raises(ExpectationError, match=r"schedule nightly: expect.withinMinutes"):
        watched_schedule(_schedule({"withinMinutes": "soon"}))
    with pytest.raises(ExpectationError, match=r"expect.withinHours: unknown key"):
        watched_schedule(_schedule({"withinMinutes": 60, "withinHours": 1}))


def test_the_submitter_takes_expect_next_to_the_jobs_and_refuses_a_bad_one() -> None:
    job = {"jobName": "a", "jobQueue": "q", "jobDefinition": "d"}
    request = parse_job_request({"jobs": [job], "expect": {"withinMinutes": 90}})
    assert request.expect == Expectation(withinMinutes=90)
    assert parse_job_request({**job, "expect": {"withinMinutes": 5}}).expect is not None
    with pytest.raises(RequestError) as refused:
        parse_job_request({"jobs": [job], "expect": {"withinMinutes": 0}})
    assert any(problem.startswith("expect.withinMinutes") for problem in refused.value.problems)


# -- which firings are expected --------------------------------------------------------


def test_expected_firings_are_those_of_the_expression_in_the_window() -> None:
    schedule = _watched({"withinMinutes": 60})
    after = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
    until = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    assert expected_firings(schedule, after, until) == [
        datetime(2026, 11, 21, 2, 0, tzinfo=UTC),
        datetime(2026, 11, 22, 2, 0, tzinfo=UTC),
        FIRING,
    ]


def test_a_schedule_in_a_zone_is_expected_at_its_wall_clock_time_across_dst() -> None:
    # London leaves summer time on 2026-10-25: 02:00 local is 01:00 UTC, then 02:00 UTC
    schedule = _watched({"withinMinutes": 60}, ScheduleExpressionTimezone="Europe/London")
    firings = expected_firings(
        schedule,
        datetime(2026, 10, 24, 0, 0, tzinfo=UTC),
        datetime(2026, 10, 26, 12, 0, tzinfo=UTC),
    )
    assert firings == [
        datetime(2026, 10, 24, 1, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 2, 0, tzinfo=UTC),
        datetime(2026, 10, 26, 2, 0, tzinfo=UTC),
    ]


# -- what a run lacks -------------------------------------------------------------------


def test_a_run_with_every_job_succeeded_lacks_nothing() -> None:
    jobs = [RecordedJob("j1", "import", "feeds", 0), RecordedJob("j2", "publish", "feeds", 1)]
    statuses = {"j1": {"status": "SUCCEEDED"}, "j2": {"status": "SUCCEEDED"}}
    assert judge_run(jobs, statuses, Expectation(withinMinutes=60)) == []


def test_a_job_still_waiting_or_failed_is_named_with_its_state() -> None:
    jobs = [
        RecordedJob("j1", "import-20261123", "feeds", 0),
        RecordedJob("j2", "report-20261123", "feeds", 0),
        RecordedJob("j3", "gone", "feeds", 1),
    ]
    statuses: dict[str, dict[str, Any]] = {
        "j1": {"status": "RUNNABLE", "createdAt": 1795399200000},
        "j2": {"status": "FAILED", "statusReason": "Essential container in task exited"},
    }
    assert judge_run(jobs, statuses, Expectation(withinMinutes=60)) == [
        "job import-20261123 (j1, hop 0) still RUNNABLE (since 2026-11-23T02:00:00+00:00)",
        "job report-20261123 (j2, hop 0) FAILED: Essential container in task exited",
        "job gone (j3, hop 1) is not known to Batch any more",
    ]


def test_an_expected_job_never_chained_says_where_the_chain_stopped() -> None:
    jobs = [RecordedJob("j1", "import-20261123", "feeds", 0)]
    statuses = {"j1": {"status": "SUCCEEDED", "stoppedAt": 1795399800000}}
    expect = Expectation(withinMinutes=60, jobs=["import-*", "publish-*"])
    assert judge_run(jobs, statuses, expect) == [
        "chain stopped after job import-20261123 (j1, hop 0, SUCCEEDED): "
        "no job matching publish-* followed it"
    ]
    assert judge_run([], {}, expect)[0] == "no job matching import-* was submitted"


# -- verdicts, given once ----------------------------------------------------------------


def test_a_firing_never_recorded_is_missed_after_the_grace_and_judged_once(
    records: RunRecords,
) -> None:
    schedule = _watched({"withinMinutes": 120, "graceMinutes": 10})
    describe = _describer({})

    # Within the grace nothing is said; after it the firing is missed
    assert (
        check_schedule(
            schedule, now=FIRING + timedelta(minutes=9), records=records, describe_jobs=describe
        )
        == []
    )
    [missed] = check_schedule(
        schedule, now=FIRING + timedelta(minutes=11), records=records, describe_jobs=describe
    )
    assert (missed.verdict, missed.scheduled_time) == ("missed", FIRING)
    assert missed.lines[0] == "never fired: no run was recorded within 10 min of the scheduled time"

    # Once its verdict is recorded, later runs of the watch say nothing more about it
    records.record_verdict("nightly", FIRING, "missed", FIRING + timedelta(minutes=11))
    later = FIRING + timedelta(minutes=16)
    assert check_schedule(schedule, now=later, records=records, describe_jobs=describe) == []


def test_a_recorded_run_is_ok_once_done_and_overdue_only_after_its_deadline(
    records: RunRecords,
) -> None:
    schedule = _watched({"withinMinutes": 60})
    identity = f"{ARN}@{FIRING.isoformat()}"
    chain = chain_id_for_firing(identity)
    records.record_firing(
        identity=identity,
        schedule=ARN,
        scheduled_time=FIRING,
        chain_id=chain,
        jobs=[_job("nightly-20261123", "j1")],
        now=FIRING,
    )
    waiting = _describer({"j1": {"status": "RUNNING", "startedAt": 1795399260000}})

    # Still running within the deadline: no verdict; after it: overdue, naming the job
    before = FIRING + timedelta(minutes=30)
    assert check_schedule(schedule, now=before, records=records, describe_jobs=waiting) == []
    [late] = check_schedule(
        schedule, now=FIRING + timedelta(minutes=61), records=records, describe_jobs=waiting
    )
    assert late.verdict == "overdue"
    assert late.chain_id == chain
    assert late.lines == (
        "job nightly-20261123 (j1, hop 0) still RUNNING (since 2026-11-23T02:01:00+00:00)",
    )
    notice = late.notice("us-east-1", "123456789012")
    assert (notice["kind"], notice["deadline"]) == ("run-overdue", "2026-11-23T03:00:00+00:00")

    # Done before the deadline: ok at once
    done = _describer({"j1": {"status": "SUCCEEDED"}})
    [ok] = check_schedule(schedule, now=before, records=records, describe_jobs=done)
    assert ok.verdict == "ok"


def test_a_disabled_schedule_is_one_finding_per_change(records: RunRecords) -> None:
    changed = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
    schedule = _watched({"withinMinutes": 60}, State="DISABLED", LastModificationDate=changed)
    now = FIRING + timedelta(hours=3)
    [disabled] = check_schedule(schedule, now=now, records=records, describe_jobs=_describer({}))
    assert disabled.verdict == "disabled"
    assert disabled.lines[1] == "to resume: batchwire resume nightly"
    records.record_verdict("nightly", changed, "disabled", now)
    assert check_schedule(schedule, now=now, records=records, describe_jobs=_describer({})) == []


def test_records_are_written_once_whatever_is_redelivered(records: RunRecords) -> None:
    job = _job("publish", "j9")
    assert (
        records.record_chained(chain_id="c1", hop=1, jobs=[("r", job)], upstream="j1", now=FIRING)
        == 1
    )
    assert (
        records.record_chained(chain_id="c1", hop=1, jobs=[("r", job)], upstream="j1", now=FIRING)
        == 0
    )
    assert records.chained_jobs("c1") == [RecordedJob("j9", "publish", "feeds", 1)]


# -- one tick, many schedules -----------------------------------------------------------


class _EveryTime:
    """A RunOnce that runs every action (which notices go out once is not the subject)."""

    def run_once(self, identity: str, action: Callable[[], Any]) -> Any:
        return action()


def test_a_tick_reads_each_day_of_firings_once_for_all_its_schedules() -> None:
    with mock_aws():
        # Given three watched schedules firing at different hours, each with a day to finish
        scheduler = boto3.client("scheduler", region_name="us-east-1")
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        sns = boto3.client("sns", region_name="us-east-1")
        scheduler.create_schedule_group(Name="batchwire-ScheduleGroup")
        made = {
            name: create_watched_schedule(
                scheduler,
                group="batchwire-ScheduleGroup",
                name=name,
                target_arn="arn:aws:lambda:us-east-1:123456789012:function:submitter",
                role_arn="arn:aws:iam::123456789012:role/scheduler",
                jobs=[{"jobName": name, "jobQueue": "feeds", "jobDefinition": "feedstream"}],
                expect={"withinMinutes": 1440},
                expression=expression,
            )
            for name, expression in (
                ("early", "cron(0 2 * * ? *)"),
                ("midday", "cron(0 12 * * ? *)"),
                ("late", "cron(0 22 * * ? *)"),
            )
        }
        # and a tick days later at 13:00, judging the firings of the 25 hours before it
        created = made["early"]["CreationDate"].astimezone(UTC)
        tick = (created + timedelta(days=3)).replace(hour=13, minute=0, second=0, microsecond=0)
        midday = tick.replace(hour=12)
        # and the run of the midday firing recorded, done (it submitted no job)
        records = RunRecords(create_runs_table(dynamodb, "runs"), 35, dynamodb)
        identity = f"{made['midday']['Arn']}@{midday.isoformat()}"
        records.record_firing(
            identity=identity,
            schedule=made["midday"]["Arn"],
            scheduled_time=midday,
            chain_id=chain_id_for_firing(identity),
            jobs=[],
            now=midday,
        )
        partitions: list[str] = []
        dynamodb.meta.events.register(
            "before-parameter-build.dynamodb.Query",
            lambda params, **_: partitions.append(params["ExpressionAttributeValues"][":pk"]["S"]),
        )
        settings = WatchSettings(
            idempotency_table="unused",
            schedule_group="batchwire-ScheduleGroup",
            runs_table="runs",
            notification_topic_arn=sns.create_topic(Name="notices")["TopicArn"],
        )
        clients = WatchClients(
            scheduler=scheduler,
            batch=boto3.client("batch", region_name="us-east-1"),
            dynamodb=dynamodb,
            sns=sns,
        )

        # When the watch runs that tick
        run = run_watch(
            watch_tick(tick),
            now=tick,
            settings=settings,
            clients=clients,
            once=_EveryTime(),
            region="us-east-1",
            account="123456789012",
        )

    # Then each schedule got its verdicts: the recorded run is ok, the others were missed
    verdicts = sorted(
        (item.finding.schedule.name, timestamp(item.finding.scheduled_time), item.finding.verdict)
        for item in run.reported
    )
    yesterday = tick - timedelta(days=1)
    assert verdicts == [
        ("early", timestamp(tick.replace(hour=2)), "missed"),
        ("late", timestamp(yesterday.replace(hour=22)), "missed"),
        ("midday", timestamp(midday), "ok"),
    ]
    # and each day of firings was read once, though every schedule looked into today's
    firing_days = [pk for pk in partitions if pk.startswith("firing#")]
    assert firing_days == [f"firing#{yesterday:%Y-%m-%d}", f"firing#{tick:%Y-%m-%d}"]
    # besides one read of each schedule's verdicts
    assert sorted(pk for pk in partitions if pk.startswith("watch#")) == [
        "watch#early",
        "watch#late",
        "watch#midday",
    ]


# -- the watch's event and its notices in Slack ------------------------------------------


def test_the_watch_judges_at_its_own_scheduled_time_and_refuses_a_bad_one() -> None:
    fallback = datetime(2026, 1, 1, tzinfo=UTC)
    assert tick_time({"scheduledTime": "2026-11-23T02:20:00Z"}, fallback) == FIRING + timedelta(
        minutes=20
    )
    assert tick_time({}, fallback) == fallback
    with pytest.raises(RequestError) as refused:
        tick_time({"scheduledTime": "2026-11-23T02:20:00"}, fallback)
    assert refused.value.problems == [
        "scheduledTime: '2026-11-23T02:20:00' is not an ISO 8601 time with a zone"
    ]
    with pytest.raises(RequestError):
        tick_time(["not", "an", "object"], fallback)


def test_a_notice_becomes_a_slack_alert_naming_the_schedule_and_what_is_missing() -> None:
    schedule = _watched({"withinMinutes": 60})
    from batchwire.watch import Finding

    finding = Finding("missed", schedule, FIRING, ("never fired: no run was recorded", "look"))
    record = {
        "EventSource": "aws:sns",
        "Sns": {
            "Message": json.dumps(finding.notice("us-east-1", "123456789012")),
            "MessageId": "m-1",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:batchwire-NotificationTopic",
            "MessageAttributes": {"kind": {"Type": "String", "Value": "missed-firing"}},
            "Timestamp": "2026-11-23T02:20:00.000Z",
        },
    }
    alert = alert_from_sns(record)
    assert alert is not None
    assert alert.title == "Schedule did not fire: nightly"
    assert alert.severity == "error"
    assert alert.summary == "never fired: no run was recorded"
    assert ("Scheduled for", "2026-11-23 02:00 UTC") in alert.facts
    assert alert.links[0][1].endswith("#schedules/batchwire-ScheduleGroup/nightly")
