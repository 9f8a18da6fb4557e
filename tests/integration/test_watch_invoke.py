"""The watch on a deployed stack: a skipped firing and a run not done by its deadline each
give one Slack alert naming what is missing; a run done on time gives none."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools.rehearse import DeployedStack
from devtools.slack_receiver import SlackReceiver, slack_receiver
from devtools.watched import create_watched_schedule, firing_event, next_firing, watch_tick
from tests.integration.invoke import ROOT, SKIPPED_TYPES, LocalStack, deploy_stack, invoke

pytestmark = [pytest.mark.integration, SKIPPED_TYPES]


@dataclass
class Watched:
    """The stack, its Slack stand-in, and a queue subscribed to its NotificationTopic that
    holds what the watch published (SNS delivers to it as it would to the notifier)."""

    stack: DeployedStack
    slack: SlackReceiver
    notices_queue: str
    local_stack: LocalStack

    def client(self, service: str) -> Any:
        return self.local_stack.client(service)

    def schedule(self, name: str, expect: dict[str, Any]) -> dict[str, Any]:
        submitter = self.client("lambda").get_function_configuration(
            FunctionName=self.stack.function_name("SubmitterFunction")
        )
        job = {
            "jobName": f"{name}-{{scheduled_time:%Y%m%d}}",
            "jobQueue": "feeds",
            "jobDefinition": "feedstream-Broadbean",
        }
        return create_watched_schedule(
            self.client("scheduler"),
            group=self.stack.physical_ids["ScheduleGroup"],
            name=name,
            target_arn=submitter["FunctionArn"],
            role_arn=submitter["Role"],
            jobs=[job],
            expect=expect,
        )

    def notices(self) -> list[dict[str, Any]]:
        """What SNS delivered from NotificationTopic since the last call."""
        sqs = self.client("sqs")
        found: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.notices_queue, MaxNumberOfMessages=10)
            messages = batch.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(
                    QueueUrl=self.notices_queue, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture(scope="module")
def watched(local_stack: LocalStack) -> Iterator[Watched]:
    with slack_receiver() as slack:
        secrets = local_stack.client("secretsmanager")
        secret = secrets.create_secret(
            Name=f"batchwire/watch-{uuid.uuid4().hex[:8]}", SecretString=slack.url
        )["ARN"]
        stack = deploy_stack(local_stack.local, {"SlackWebhookSecretArn": secret})
        sqs, sns = local_stack.client("sqs"), local_stack.client("sns")
        queue_url = sqs.create_queue(QueueName=f"{stack.name}-notices")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(
            TopicArn=stack.physical_ids["NotificationTopic"], Protocol="sqs", Endpoint=queue_arn
        )
        yield Watched(stack, slack, queue_url, local_stack)


def _write(tmp_path: Path, event: dict[str, Any]) -> Path:
    path = tmp_path / f"event-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(event))
    return path


def _wait_until_succeeded(watched: Watched, job_ids: list[str]) -> None:
    batch = watched.client("batch")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        statuses = {job["status"] for job in batch.describe_jobs(jobs=job_ids)["jobs"]}
        if statuses == {"SUCCEEDED"}:
            return
        time.sleep(0.5)
    raise AssertionError(f"jobs {job_ids} did not succeed in moto: {statuses}")


def _as_lambda_event(delivered: dict[str, Any]) -> dict[str, Any]:
    """The SNS envelope an SQS subscription received, as SNS hands it to a Lambda."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{delivered['TopicArn']}:notifier",
                "Sns": {**delivered, "Type": "Notification"},
            }
        ]
    }


def test_acceptance_a_skipped_firing_and_an_overdue_run_each_alert_once_an_on_time_run_never(
    watched: Watched, tmp_path: Path
) -> None:
    # Given three schedules of the stack's group that promise their runs within an hour:
    # one whose run completes, one whose chain never goes past its first job (its second
    # job, publish-*, is expected but no rule chains it), and one that never fires
    suffix = uuid.uuid4().hex[:6]
    done = watched.schedule(f"done-{suffix}", {"withinMinutes": 60})
    stalled = watched.schedule(
        f"stalled-{suffix}", {"withinMinutes": 60, "jobs": [f"stalled-{suffix}-*", "publish-*"]}
    )
    skipped = watched.schedule(f"skipped-{suffix}", {"withinMinutes": 60})
    firing = next_firing(done)
    assert next_firing(stalled) == next_firing(skipped) == firing

    # When Scheduler fires the first two (the third's firing is lost), their jobs run, and
    # the watch runs after the deadline, then again five minutes later
    submitted = []
    for schedule in (done, stalled):
        run = invoke(
            watched.stack, "SubmitterFunction", _write(tmp_path, firing_event(schedule, firing))
        )
        assert run.returncode == 0, run.stderr[-2000:]
        submitted += [job["jobId"] for job in run.result["jobs"]]
    _wait_until_succeeded(watched, submitted)
    ticks = [firing + timedelta(minutes=61), firing + timedelta(minutes=66)]
    runs = [
        invoke(watched.stack, "WatchFunction", _write(tmp_path, watch_tick(tick))) for tick in ticks
    ]

    # Then the first run found the skipped firing and the stalled chain, and the run that
    # completed on time; the second run found nothing new
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr[-2000:]
    first = {(f["schedule"], f["verdict"]) for f in runs[0].result["findings"]}
    assert first == {
        (f"done-{suffix}", "ok"),
        (f"stalled-{suffix}", "overdue"),
        (f"skipped-{suffix}", "missed"),
    }
    assert runs[1].result["findings"] == []

    # and exactly two notices reached NotificationTopic, each naming what is missing
    notices = watched.notices()
    bodies = {json.loads(n["Message"])["schedule"]: json.loads(n["Message"]) for n in notices}
    assert len(notices) == 2
    assert bodies[f"skipped-{suffix}"]["kind"] == "missed-firing"
    assert bodies[f"skipped-{suffix}"]["lines"][0].startswith("never fired")
    stalled_lines = bodies[f"stalled-{suffix}"]["lines"]
    assert bodies[f"stalled-{suffix}"]["kind"] == "run-overdue"
    assert stalled_lines == [
        f"chain stopped after job stalled-{suffix}-{firing:%Y%m%d} ({submitted[1]}, hop 0, "
        "SUCCEEDED): no job matching publish-* followed it"
    ]

    # When SNS delivers each notice to the notifier, the first one twice (at least once)
    posted = [
        invoke(watched.stack, "NotifierFunction", _write(tmp_path, _as_lambda_event(notice)))
        for notice in [*notices, notices[0]]
    ]

    # Then Slack got one post per notice, naming the schedule and what is missing
    assert [run.returncode for run in posted] == [0, 0, 0], posted[0].stderr[-2000:]
    assert len(watched.slack.accepted) == 2
    texts = [json.dumps(post) for post in watched.slack.accepted]
    assert any(f"Schedule did not fire: skipped-{suffix}" in text for text in texts)
    assert any(
        f"Run not done by its deadline: stalled-{suffix}" in text
        and "no job matching publish-* followed it" in text
        for text in texts
    )


def test_a_schedule_paused_with_an_expectation_alerts_once_and_expects_nothing_meanwhile(
    watched: Watched, tmp_path: Path
) -> None:
    # Given a watched schedule that is then disabled
    name = f"paused-{uuid.uuid4().hex[:6]}"
    schedule = watched.schedule(name, {"withinMinutes": 30})
    scheduler = watched.client("scheduler")
    scheduler.update_schedule(
        Name=name,
        GroupName=schedule["GroupName"],
        ScheduleExpression=schedule["ScheduleExpression"],
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=schedule["Target"],
        State="DISABLED",
    )
    watched.notices()

    # When the watch runs twice, a day after a firing it would otherwise expect
    later = next_firing(schedule) + timedelta(hours=2)
    runs = [
        invoke(watched.stack, "WatchFunction", _write(tmp_path, watch_tick(at)))
        for at in (later, later + timedelta(minutes=5))
    ]

    # Then one notice says the schedule is disabled (no missed firing), and only once
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr[-2000:]
    mine = [
        json.loads(notice["Message"])
        for notice in watched.notices()
        if json.loads(notice["Message"])["schedule"] == name
    ]
    assert [body["kind"] for body in mine] == ["schedule-disabled"]
    assert "DISABLED" in mine[0]["lines"][0]


def test_a_watch_event_with_an_unreadable_time_is_refused_naming_the_field(
    watched: Watched, tmp_path: Path
) -> None:
    # Given a schedule whose firing was missed, long ago enough for the watch to say so
    name = f"refused-{uuid.uuid4().hex[:6]}"
    schedule = watched.schedule(name, {"withinMinutes": 30})
    watched.notices()

    # When the watch gets a scheduledTime that is no time
    run = invoke(watched.stack, "WatchFunction", _write(tmp_path, {"scheduledTime": "tonight"}))

    # Then it fails naming the field, and publishes nothing; the next good run reports it
    assert run.returncode == 1
    assert "scheduledTime: 'tonight' is not an ISO 8601 time with a zone" in run.stderr
    assert watched.notices() == []
    tick = watch_tick(next_firing(schedule) + timedelta(hours=1))
    assert invoke(watched.stack, "WatchFunction", _write(tmp_path, tick)).returncode == 0
    kinds = [
        json.loads(notice["Message"])["kind"]
        for notice in watched.notices()
        if json.loads(notice["Message"])["schedule"] == name
    ]
    assert kinds == ["missed-firing"]


def test_the_sample_tick_runs_and_judges_nothing_before_any_schedule_existed(
    watched: Watched,
) -> None:
    # When the watch runs with events/watch-tick.json (a time before this stack's schedules
    # were made)
    run = invoke(watched.stack, "WatchFunction", ROOT / "events" / "watch-tick.json")

    # Then it succeeds and judges nothing: no firing was expected then
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.result["now"] == "2026-11-23T02:20:00+00:00"
    assert run.result["findings"] == []
