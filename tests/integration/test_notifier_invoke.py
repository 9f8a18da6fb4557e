"""Log notifier end to end: `make invoke` against a moto server and the local Slack stand-in.

The function runs as a subprocess through devtools.invoke, with the environment its deployed
stack gives it; the webhook URL lives only in moto's Secrets Manager.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.rehearse import DeployedStack
from devtools.sample_events import subscription_event
from devtools.slack_receiver import Reply, SlackReceiver, payload_problems, slack_receiver
from tests.integration.invoke import (
    ROOT,
    SKIPPED_TYPES,
    UNANSWERED_WEBHOOK,
    Invocation,
    LocalStack,
    deploy_stack,
    invoke,
)

pytestmark = [pytest.mark.integration, SKIPPED_TYPES]

EVENTS = ROOT / "events"


#: The flood-control window of the stack the flood test deploys, in seconds.
SHORT_WINDOW = 5


@dataclass
class Notifier:
    """NotifierFunction of a deployed stack as `make invoke` runs it, posting to its own
    Slack stand-in."""

    stack: DeployedStack
    slack: SlackReceiver

    def invoke(self, event: Path, stack: DeployedStack | None = None) -> Invocation:
        return invoke(stack or self.stack, "NotifierFunction", event)


@pytest.fixture(scope="module")
def webhook_secret(local_stack: LocalStack) -> str:
    """A webhook secret of this module's own; each test points it at its Slack stand-in."""
    arn: str = local_stack.client("secretsmanager").create_secret(
        Name=f"batchwire/slack-{uuid.uuid4().hex[:8]}", SecretString=UNANSWERED_WEBHOOK
    )["ARN"]
    return arn


@pytest.fixture(scope="module")
def notifier_stack(local_stack: LocalStack, webhook_secret: str) -> DeployedStack:
    """The stack deployed with SlackWebhookSecretArn=<the module's secret>."""
    return deploy_stack(local_stack.local, {"SlackWebhookSecretArn": webhook_secret})


@pytest.fixture(scope="module")
def short_window_stack(local_stack: LocalStack, webhook_secret: str) -> DeployedStack:
    """The stack deployed with the module's secret and AlertWindowSeconds=SHORT_WINDOW."""
    parameters = {"SlackWebhookSecretArn": webhook_secret, "AlertWindowSeconds": str(SHORT_WINDOW)}
    return deploy_stack(local_stack.local, parameters)


@pytest.fixture
def notifier(
    local_stack: LocalStack, webhook_secret: str, notifier_stack: DeployedStack
) -> Iterator[Notifier]:
    """A Slack stand-in of this test's own, whose URL the webhook secret now holds."""
    with slack_receiver() as slack:
        local_stack.client("secretsmanager").put_secret_value(
            SecretId=webhook_secret, SecretString=slack.url
        )
        yield Notifier(notifier_stack, slack)


def write_event(tmp_path: Path, event: dict[str, Any]) -> Path:
    path = tmp_path / f"event-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(event))
    return path


@pytest.mark.parametrize(
    "event_file",
    [
        "cloudwatch-logs-batch-traceback.json",
        "ecs-task-stopped-cannotpull.json",
        "batch-job-failed.json",
        "sns-task-retries-exhausted.json",
        "sns-alarm.json",
    ],
)
def test_sample_event_reaches_slack_once(notifier: Notifier, event_file: str) -> None:
    # When `make invoke` runs the notifier with a sample event
    run = notifier.invoke(EVENTS / event_file)
    # Then it succeeded, and Slack accepted exactly one message
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(notifier.slack.requests) == 1
    assert len(notifier.slack.accepted) == 1
    assert payload_problems(notifier.slack.accepted[0]) == []
    assert run.result["alerts"][0]["posted"] is True
    # and the webhook URL, a secret, is in none of the function's output
    assert notifier.slack.url not in run.stderr


def test_traceback_message_has_the_password_of_the_feed_url_redacted(
    notifier: Notifier, tmp_path: Path
) -> None:
    # Given the sample job log, whose failing request logged a URL with a password
    event = json.loads((EVENTS / "cloudwatch-logs-batch-traceback.json").read_text())
    group = f"/aws/batch/job-{uuid.uuid4().hex[:6]}"  # its own flood-control key
    event = subscription_event(group, "feedstream-Broadbean/default/abc", _messages(event))
    # When the notifier posts it
    run = notifier.invoke(write_event(tmp_path, event))
    # Then Slack received the URL without the password
    assert run.returncode == 0, run.stderr[-2000:]
    received = json.dumps(notifier.slack.accepted)
    assert "Xk29pQ7w" not in received
    assert "https://feedbot:[REDACTED]@feeds.broadbean.example" in received


def test_acceptance_slack_500_until_retries_are_spent_fails_the_invocation(
    notifier: Notifier, tmp_path: Path
) -> None:
    # Given Slack answers 500 to everything
    notifier.slack.always(Reply.server_error())
    event = subscription_event(f"/aws/batch/{uuid.uuid4().hex[:6]}", "d/default/t", ["ERROR x"])
    # When the notifier runs
    run = notifier.invoke(write_event(tmp_path, event))
    # Then the invocation failed (Lambda would retry, then use the on-failure destination)
    assert run.returncode == 1
    assert '"errorType": "SlackDeliveryError"' in run.stderr
    assert len(notifier.slack.requests) == 3
    assert notifier.slack.accepted == []


def test_acceptance_flood_window_over_real_http(
    notifier: Notifier, short_window_stack: DeployedStack, tmp_path: Path
) -> None:
    # Given a stack deployed with a 5-second window and the same error from three tasks of one
    # log group
    window = SHORT_WINDOW
    group = f"/aws/batch/{uuid.uuid4().hex[:6]}"
    events = [
        write_event(tmp_path, subscription_event(group, f"d/default/{task}", [f"ERROR row {n}"]))
        for n, task in enumerate(("t1", "t2", "t3"))
    ]
    # When two arrive together (started at once, however slow this machine is)...
    with ThreadPoolExecutor(max_workers=2) as pool:
        together = list(
            pool.map(lambda event: notifier.invoke(event, short_window_stack), events[:2])
        )
    # ...and the third after the window
    time.sleep(window + 0.2)
    third = notifier.invoke(events[2], short_window_stack)
    # Then one of the two and the third were posted, the third counting the one suppressed
    assert [run.returncode for run in (*together, third)] == [0, 0, 0]
    held_back = sorted(run.result["alerts"][0]["suppressedNow"] for run in together)
    assert held_back == [False, True]
    assert len(notifier.slack.accepted) == 2
    assert "1 more alert like this were suppressed" in json.dumps(notifier.slack.accepted[1])


def _messages(event: dict[str, Any]) -> list[str]:
    decoded = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    return [str(item["message"]) for item in decoded["logEvents"]]


def test_acceptance_an_alarm_through_alarm_topic_posts_once_and_its_ok_says_how_long(
    notifier: Notifier, tmp_path: Path
) -> None:
    # Given the deployed stack's AlarmTopic, and a notification of one of its alarms as SNS
    # delivers it to the notifier's subscription (a name of this test's own: its own state)
    topic = notifier.stack.physical_ids["AlarmTopic"]
    name = f"{notifier.stack.name}-FailedInvocationsAlarm-{uuid.uuid4().hex[:8].upper()}"

    def delivered(sample: str) -> dict[str, Any]:
        event: dict[str, Any] = json.loads((EVENTS / sample).read_text())
        sns = event["Records"][0]["Sns"]
        body = json.loads(sns["Message"])
        body["AlarmName"] = name
        body["AlarmArn"] = body["AlarmArn"].rsplit(":", 1)[0] + f":{name}"
        sns.update(TopicArn=topic, MessageId=str(uuid.uuid4()), Message=json.dumps(body))
        return event

    alarm = write_event(tmp_path, delivered("sns-alarm.json"))
    # When SNS delivers it, then delivers it again (at least once), then the OK
    first, again = notifier.invoke(alarm), notifier.invoke(alarm)
    ok = notifier.invoke(write_event(tmp_path, delivered("sns-alarm-ok.json")))

    # Then one post named the alarm, its new state and CloudWatch's reason; the redelivery
    # posted nothing; and the OK said how long the alarm lasted
    assert [run.returncode for run in (first, again, ok)] == [0, 0, 0]
    assert len(notifier.slack.requests) == 2
    posted = json.dumps(notifier.slack.accepted[0])
    assert f"ALARM: {name}" in posted
    assert "Threshold Crossed" in posted
    assert "In ALARM for 12 min" in json.dumps(notifier.slack.accepted[1])
