"""CloudWatch alarm notifications in Slack: what a person reads, how often, and how long it lasted.

AWS is moto in-process; Slack is the local stand-in over real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext
from moto import mock_aws

from batchwire.alarms import duration_in_words
from batchwire.idempotency import OnceStore
from batchwire.notify import (
    IDEMPOTENCY_PREFIX,
    Delivery,
    FloodGate,
    alerts_from_event,
    notify_slack,
    parse_routes,
    route_for,
)
from batchwire.redaction import build_redactor
from batchwire.slack import SlackDeliveryError, WebhookDelivery
from devtools.invoke import LocalContext
from devtools.slack_receiver import Reply, SlackReceiver, payload_problems, slack_receiver

EVENTS = Path(__file__).resolve().parents[2] / "events"
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
REGION = "us-east-1"
ALARM_NAME = "batchwire-dev-FailedInvocationsAlarm-7RJ2N5KD0Q4V"
WINDOW = 300
#: the moment of the sample ALARM's state change (2026-11-30 07:03:12 UTC), epoch seconds
ALARM_AT = 1_796_022_192.0


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def alarm_event(state: str, old: str, at: str, **changes: Any) -> dict[str, Any]:
    """The sample alarm notification moved to ``old`` -> ``state`` at ``at``, as a new SNS
    message (its own MessageId); ``changes`` replace keys of the alarm's JSON."""
    event = load_event("sns-alarm.json")
    sns = event["Records"][0]["Sns"]
    body = json.loads(sns["Message"])
    body.update(NewStateValue=state, OldStateValue=old, StateChangeTime=at, **changes)
    sns["Message"] = json.dumps({key: value for key, value in body.items() if value is not None})
    sns["MessageId"] = str(uuid.uuid4())
    sns["Subject"] = f'{state}: "{body.get("AlarmName")}" in US East (N. Virginia)'
    return event


def without(event: dict[str, Any], key: str) -> dict[str, Any]:
    sns = event["Records"][0]["Sns"]
    body = json.loads(sns["Message"])
    del body[key]
    sns["Message"] = json.dumps(body)
    return event


def context() -> LocalContext:
    return LocalContext(
        "NotifierFunction", memory_limit_in_mb=256, timeout_seconds=60, region=REGION
    )


def create_table(name: str) -> None:
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )


def fields_of(payload: dict[str, Any]) -> dict[str, str]:
    """The message's fields, label -> value, as a person reads them (Slack unescapes)."""
    [section] = [block for block in payload["blocks"] if "fields" in block]
    return {
        label: unescape(value)
        for label, value in (
            field["text"].strip("*").split("*\n", 1) for field in section["fields"]
        )
    }


def unescape(text: str) -> str:
    return text.replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&")


def all_text(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False)


def summary_of(payload: dict[str, Any]) -> str:
    """The line under the title: where the all-clear says how long the ALARM lasted."""
    second = payload["blocks"][1]
    return str(second["text"]["text"]) if "text" in second else ""


@dataclass
class Tables:
    alert_state: str
    idempotency: str


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    with slack_receiver() as receiver:
        yield receiver


@pytest.fixture
def tables() -> Iterator[Tables]:
    """moto with the notifier's two tables, named for this test alone."""
    suffix = uuid.uuid4().hex[:12]
    with mock_aws():
        names = Tables(f"AlertState-{suffix}", f"Idempotency-{suffix}")
        create_table(names.alert_state)
        create_table(names.idempotency)
        yield names


Flow = Callable[..., dict[str, Any]]


@pytest.fixture
def flow(tables: Tables, slack: SlackReceiver) -> Flow:
    """The notifier's core flow posting to the Slack stand-in, on a clock the test sets."""
    gate = FloodGate(tables.alert_state, WINDOW, boto3.client("dynamodb", region_name=REGION))
    once = OnceStore(tables.idempotency, IDEMPOTENCY_PREFIX, 3600)
    once.register(cast(LambdaContext, context()))
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:team-AbCdEf"
    delivery = Delivery(secret, (), lambda arn: slack.url, WebhookDelivery(timeout_seconds=1).post)

    def run(event: dict[str, Any], now: float = ALARM_AT) -> dict[str, Any]:
        return notify_slack(
            event,
            region=REGION,
            now=now,
            gate=gate,
            once=once,
            redactor=build_redactor(),
            delivery=delivery,
        )

    return run


# --------------------------------------------------------------------- what a post shows


def test_an_alarm_posts_one_message_naming_the_alarm_its_new_state_and_reason(
    flow: Flow, slack: SlackReceiver
) -> None:
    # Given the sample notification: FailedInvocationsAlarm went from OK to ALARM
    event = load_event("sns-alarm.json")
    # When the notifier handles it
    outcome = flow(event)
    # Then Slack received one message, which Slack accepts
    assert len(slack.accepted) == 1
    [message] = slack.accepted
    assert payload_problems(message) == []
    assert outcome["alerts"][0]["posted"] is True
    # and it names the alarm and its new state, as an error
    assert message["text"].startswith(f"ERROR: ALARM: {ALARM_NAME}")
    assert message["blocks"][0]["text"]["text"] == f":rotating_light: *ALARM: {ALARM_NAME}*"
    # and it says why: the alarm's description and CloudWatch's reason
    text = all_text(message)
    assert "A function gave up on an event after Lambda's retries" in text
    assert "Threshold Crossed: 1 out of the last 1 datapoints [2.0" in text
    # and what it watches, the change, when, where
    fields = fields_of(message)
    assert fields["State change"] == "OK → ALARM"
    assert fields["Changed at"] == "2026-11-30 07:03:12 UTC"
    assert fields["Metric"] == (
        "AWS/SQS ApproximateNumberOfMessagesVisible "
        "(QueueName=batchwire-dev-FailedInvocationsQueue-Hq4Tn8Wc2Lpz)"
    )
    assert fields["Threshold"] == "Maximum > 0 for 1 of 1 periods of 300 s"
    assert (fields["Account"], fields["Region"]) == ("123456789012", "us-east-1")
    # and it links to the alarm in the console of its region
    assert (
        "<https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        f"#alarmsV2:alarm/{ALARM_NAME}|CloudWatch alarm>"
    ) in text


@pytest.mark.parametrize(
    ("arn", "link"),
    [
        (
            "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:feeds / nightly lag",
            "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
            "#alarmsV2:alarm/feeds%20%2F%20nightly%20lag",
        ),
        (
            "arn:aws-cn:cloudwatch:cn-north-1:123456789012:alarm:feeds-lag",
            "https://console.amazonaws.cn/cloudwatch/home?region=cn-north-1"
            "#alarmsV2:alarm/feeds-lag",
        ),
        (
            "arn:aws-us-gov:cloudwatch:us-gov-west-1:123456789012:alarm:feeds-lag",
            "https://console.amazonaws-us-gov.com/cloudwatch/home?region=us-gov-west-1"
            "#alarmsV2:alarm/feeds-lag",
        ),
    ],
)
def test_the_console_link_takes_the_region_code_from_the_alarm_arn(
    flow: Flow, slack: SlackReceiver, arn: str, link: str
) -> None:
    # Given an alarm of another region (the notification names it "EU (Ireland)" and so on)
    name = arn.split(":alarm:", 1)[1]
    event = alarm_event(
        "ALARM",
        "OK",
        "2026-11-30T07:03:12.481+0000",
        AlarmArn=arn,
        AlarmName=name,
        Region="EU (Ireland)",
    )
    # When it is posted
    flow(event)
    # Then the link opens the alarm in the console of its partition and region code
    [message] = slack.accepted
    assert f"<{link}|CloudWatch alarm>" in all_text(message)
    assert fields_of(message)["Region"] == arn.split(":")[3]


def test_insufficient_data_posts_as_a_warning(flow: Flow, slack: SlackReceiver) -> None:
    # Given the alarm's metric stopped reporting
    event = alarm_event(
        "INSUFFICIENT_DATA",
        "OK",
        "2026-11-30T07:03:12.481+0000",
        NewStateReason="Insufficient Data: 1 datapoint was unknown.",
    )
    # When it is posted
    flow(event)
    # Then it is a warning naming the state, with the reason
    [message] = slack.accepted
    assert message["text"].startswith(f"WARNING: INSUFFICIENT_DATA: {ALARM_NAME}")
    assert message["blocks"][0]["text"]["text"].startswith(":warning: *INSUFFICIENT_DATA: ")
    assert "Insufficient Data: 1 datapoint was unknown." in all_text(message)


def test_a_metric_math_alarm_shows_its_expression_and_inputs(
    flow: Flow, slack: SlackReceiver
) -> None:
    # Given DestinationDeliveryFailuresAlarm, whose Trigger holds metric math, not a metric
    trigger = {
        "Period": 300,
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": 0.0,
        "TreatMissingData": "notBreaching",
        "EvaluateLowSampleCountPercentile": "",
        "Metrics": [
            {
                "Id": "lost",
                "Label": "failed events not delivered to FailedInvocationsQueue",
                "Expression": "SUM([m1, m2])",
                "ReturnData": True,
            },
            *(
                {
                    "Id": metric_id,
                    "MetricStat": {
                        "Metric": {
                            "Dimensions": [{"value": function, "name": "FunctionName"}],
                            "MetricName": "DestinationDeliveryFailures",
                            "Namespace": "AWS/Lambda",
                        },
                        "Period": 300,
                        "Stat": "Sum",
                    },
                    "ReturnData": False,
                }
                for metric_id, function in (
                    ("m1", "batchwire-dev-SubmitterFunction-Xy12"),
                    ("m2", "batchwire-dev-ChainerFunction-Zw34"),
                )
            ),
        ],
    }
    name = "batchwire-dev-DestinationDeliveryFailuresAlarm-1AB2CD3EF4GH"
    event = alarm_event(
        "ALARM",
        "OK",
        "2026-11-30T07:03:12.481+0000",
        AlarmName=name,
        AlarmArn=f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}",
        Trigger=trigger,
    )
    # When it is posted
    flow(event)
    # Then it shows the expression, what it is made of, and the threshold on its result
    [message] = slack.accepted
    fields = fields_of(message)
    assert "Metric" not in fields
    assert fields["Expression"] == (
        "lost = SUM([m1, m2])\nfailed events not delivered to FailedInvocationsQueue"
    )
    assert fields["Inputs"] == (
        "m1: AWS/Lambda DestinationDeliveryFailures "
        "(FunctionName=batchwire-dev-SubmitterFunction-Xy12) (Sum)\n"
        "m2: AWS/Lambda DestinationDeliveryFailures "
        "(FunctionName=batchwire-dev-ChainerFunction-Zw34) (Sum)"
    )
    assert fields["Threshold"] == "lost > 0 for 1 of 1 periods of 300 s"


@pytest.mark.parametrize(
    "broken",
    [
        lambda: without(load_event("sns-alarm.json"), "NewStateValue"),
        lambda: alarm_event("ALARMING", "OK", "2026-11-30T07:03:12.481+0000"),
        lambda: alarm_event("ALARM", "OK", "2026-11-30T07:03:12.481+0000", AlarmArn="alarm-7"),
    ],
    ids=["NewStateValue missing", "unknown state", "AlarmArn no ARN"],
)
def test_a_malformed_alarm_message_is_posted_as_a_generic_notice(
    flow: Flow, slack: SlackReceiver, broken: Callable[[], dict[str, Any]]
) -> None:
    # Given a message that looks like an alarm's but lacks what makes one
    event = broken()
    # When the notifier handles it
    [outcome] = flow(event)["alerts"]
    # Then it is not lost: posted as any other SNS message, with its subject and text
    assert outcome["kind"] == "generic"
    [message] = slack.accepted
    assert message["text"].startswith("WARNING: ALARM")
    assert ALARM_NAME in all_text(message)


def test_secrets_and_mentions_in_alarm_text_never_reach_slack(
    flow: Flow, slack: SlackReceiver
) -> None:
    # Given an alarm whose description holds a mention and a password
    event = alarm_event(
        "ALARM",
        "OK",
        "2026-11-30T07:03:12.481+0000",
        AlarmDescription="<!channel> check db with password=hunter2 & AKIAIOSFODNN7EXAMPLE",
    )
    # When it is posted
    flow(event)
    # Then Slack got no live mention and neither secret
    received = json.dumps(slack.requests)
    assert len(slack.accepted) == 1
    assert "<!channel>" not in received
    assert "hunter2" not in received
    assert "AKIAIOSFODNN7EXAMPLE" not in received
    assert "password=[REDACTED]" in received


# --------------------------------------------------------------------- repeats and flood control


def test_a_redelivered_alarm_notification_posts_nothing(flow: Flow, slack: SlackReceiver) -> None:
    # Given the ALARM notification, posted
    event = load_event("sns-alarm.json")
    flow(event)
    # When SNS delivers the same message again, a minute later
    again = flow(event, now=ALARM_AT + 60)
    # Then nothing more reached Slack, and it was not counted as held back either
    assert len(slack.requests) == 1
    assert again["alerts"][0]["posted"] is True
    assert again["alerts"][0]["suppressedNow"] is False


def states_posted(slack: SlackReceiver) -> list[str]:
    return [m["text"].split(":")[1].strip() for m in slack.accepted]


def test_a_second_alarm_within_the_window_is_held_back_and_counted(
    flow: Flow, slack: SlackReceiver
) -> None:
    # Given an alarm in ALARM, posted, whose second ALARM notification comes within 5 minutes
    # with no OK between (CloudWatch re-notifies when the alarm is updated, for example)
    flow(alarm_event("ALARM", "OK", "2026-11-30T07:03:12.481+0000"), now=ALARM_AT)
    again = flow(alarm_event("ALARM", "ALARM", "2026-11-30T07:05:12.481+0000"), now=ALARM_AT + 120)
    # Then the second is held back
    assert states_posted(slack) == ["ALARM"]
    assert again["alerts"][0]["suppressedNow"] is True
    # When the alarm fires again after the window
    flow(alarm_event("ALARM", "ALARM", "2026-11-30T07:12:12.481+0000"), now=ALARM_AT + 540)
    # Then that ALARM is posted, saying one like it was held back
    last = slack.accepted[-1]
    assert last["text"].startswith(f"ERROR: ALARM: {ALARM_NAME}")
    assert "1 more alert like this were suppressed" in all_text(last)


def test_an_alarm_after_a_posted_ok_is_always_posted(flow: Flow, slack: SlackReceiver) -> None:
    # Given an alarm that went ALARM, back to OK, and into ALARM again within 5 minutes
    flow(alarm_event("ALARM", "OK", "2026-11-30T07:03:12.481+0000"), now=ALARM_AT)
    flow(alarm_event("OK", "ALARM", "2026-11-30T07:05:12.481+0000"), now=ALARM_AT + 120)
    flow(alarm_event("ALARM", "OK", "2026-11-30T07:07:12.481+0000"), now=ALARM_AT + 240)
    # Then all three are posted: Slack never says OK while the alarm is in ALARM
    assert states_posted(slack) == ["ALARM", "OK", "ALARM"]


def test_a_flapping_alarm_is_held_back_showing_alarm_last(flow: Flow, slack: SlackReceiver) -> None:
    # Given an alarm flapping every minute within one window
    at = ALARM_AT
    for minute, (state, old) in enumerate(
        [("ALARM", "OK"), ("OK", "ALARM"), ("ALARM", "OK"), ("OK", "ALARM"), ("ALARM", "OK")]
    ):
        flow(
            alarm_event(state, old, f"2026-11-30T07:0{3 + minute}:12.481+0000"),
            now=at + 60 * minute,
        )
    # Then three posts, not five, and the last one seen says ALARM (it errs towards attention)
    assert states_posted(slack) == ["ALARM", "OK", "ALARM"]


def test_a_new_alarm_settling_into_ok_posts_nothing(flow: Flow, slack: SlackReceiver) -> None:
    # Given an alarm created (or changed) by a deploy at 07:00, settling to OK at 07:05
    created = "2026-11-30T07:00:00.000+0000"
    settled = flow(
        alarm_event(
            "OK", "INSUFFICIENT_DATA", "2026-11-30T07:05:00.000+0000",
            AlarmConfigurationUpdatedTimestamp=created,
        )
    )  # fmt: skip
    # Then nothing is posted: every deploy sends one per alarm
    assert settled == {"alerts": []}
    assert slack.requests == []
    # But an OK after a long INSUFFICIENT_DATA, days after the alarm was set up, is posted
    flow(
        alarm_event(
            "OK", "INSUFFICIENT_DATA", "2026-11-30T07:05:00.000+0000",
            AlarmConfigurationUpdatedTimestamp="2026-11-20T10:42:17.204+0000",
        )
    )  # fmt: skip
    assert states_posted(slack) == ["OK"]


def test_another_alarm_in_alarm_at_the_same_time_is_posted(
    flow: Flow, slack: SlackReceiver
) -> None:
    # Given two alarms whose names differ only in a number
    for name in ("feeds-1-lag", "feeds-2-lag"):
        arn = f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"
        # When both go into ALARM within a second
        flow(
            alarm_event("ALARM", "OK", "2026-11-30T07:03:12.481+0000", AlarmName=name, AlarmArn=arn)
        )
    # Then both are posted: flood control keys on the alarm, not on a normalised name
    assert len(slack.accepted) == 2


# --------------------------------------------------------------------- how long it lasted


def test_the_ok_after_an_alarm_says_how_long_the_alarm_lasted(
    flow: Flow, slack: SlackReceiver
) -> None:
    # Given the sample ALARM (07:03:12), posted
    flow(load_event("sns-alarm.json"), now=ALARM_AT)
    # When its OK (07:15:00) arrives
    flow(load_event("sns-alarm-ok.json"), now=ALARM_AT + 708)
    # Then the OK is posted as resolved, saying how long the alarm was in ALARM
    ok = slack.accepted[1]
    assert ok["blocks"][0]["text"]["text"] == f":white_check_mark: *OK: {ALARM_NAME}*"
    assert summary_of(ok) == "In ALARM for 12 min (since 07:03 UTC)"
    assert ok["text"] == (f"RESOLVED: OK: {ALARM_NAME} - In ALARM for 12 min (since 07:03 UTC)")
    assert fields_of(ok)["State change"] == "ALARM → OK"


def test_an_ok_without_a_remembered_alarm_posts_without_a_duration(
    flow: Flow, slack: SlackReceiver
) -> None:
    # Given no ALARM of this alarm was seen (it came before the notifier was subscribed)
    # When its OK arrives
    flow(load_event("sns-alarm-ok.json"))
    # Then the OK is posted, saying nothing of how long
    [ok] = slack.accepted
    assert ok["text"].startswith(f"RESOLVED: OK: {ALARM_NAME}")
    assert "In ALARM for" not in all_text(ok)


def test_an_alarm_ended_by_insufficient_data_says_how_long_too(
    flow: Flow, slack: SlackReceiver
) -> None:
    # Given an ALARM at 07:03
    flow(alarm_event("ALARM", "OK", "2026-11-30T07:03:12.481+0000"))
    # When the metric stops reporting at 09:08
    flow(alarm_event("INSUFFICIENT_DATA", "ALARM", "2026-11-30T09:08:40.000+0000"))
    # Then the warning says how long the alarm had been in ALARM
    assert summary_of(slack.accepted[1]) == "In ALARM for 2 h 5 min (since 07:03 UTC)"


def test_an_ok_after_unnotified_insufficient_data_says_nothing_of_the_alarm(
    flow: Flow, slack: SlackReceiver
) -> None:
    # Given an ALARM at 07:03, then INSUFFICIENT_DATA that was not notified (batchwire's
    # alarms have no InsufficientDataActions)
    flow(load_event("sns-alarm.json"))
    # When the alarm goes from INSUFFICIENT_DATA to OK at 09:00
    flow(alarm_event("OK", "INSUFFICIENT_DATA", "2026-11-30T09:00:00.000+0000"))
    # Then the OK does not claim the alarm was in ALARM until 09:00
    [_, ok] = slack.accepted
    assert fields_of(ok)["State change"] == "INSUFFICIENT_DATA → OK"
    assert "In ALARM for" not in all_text(ok)


def test_a_flapping_alarm_counts_from_the_last_alarm(flow: Flow, slack: SlackReceiver) -> None:
    # Given ALARM, OK, ALARM within the window (all posted)
    flow(alarm_event("ALARM", "OK", "2026-11-30T07:03:12.481+0000"), now=ALARM_AT)
    flow(alarm_event("OK", "ALARM", "2026-11-30T07:05:12.481+0000"), now=ALARM_AT + 120)
    flow(alarm_event("ALARM", "OK", "2026-11-30T07:07:12.481+0000"), now=ALARM_AT + 240)
    # When the alarm is OK again, after the window
    flow(alarm_event("OK", "ALARM", "2026-11-30T07:40:12.481+0000"), now=ALARM_AT + 2220)
    # Then each OK says how long the ALARM before it lasted
    oks = [summary_of(m) for m in slack.accepted if m["text"].startswith("RESOLVED")]
    assert oks == [
        "In ALARM for 2 min (since 07:03 UTC)",
        "In ALARM for 33 min (since 07:07 UTC)",
    ]


def test_an_ok_retried_after_slack_failed_still_says_how_long(
    flow: Flow, slack: SlackReceiver
) -> None:
    # Given the ALARM posted, and Slack failing every attempt to post its OK
    flow(load_event("sns-alarm.json"))
    slack.always(Reply.server_error(), times=3)
    with pytest.raises(SlackDeliveryError):
        flow(load_event("sns-alarm-ok.json"), now=ALARM_AT + 708)
    # When Lambda retries the OK and Slack is back
    flow(load_event("sns-alarm-ok.json"), now=ALARM_AT + 770)
    # Then the OK is posted once, still saying how long
    assert [summary_of(m) for m in slack.accepted][1:] == ["In ALARM for 12 min (since 07:03 UTC)"]


def test_notifications_delivered_out_of_order_give_no_wrong_duration(
    flow: Flow, slack: SlackReceiver
) -> None:
    # Given SNS delivered the 07:15 OK first, then an ALARM of 08:50, then the 07:03 ALARM late
    flow(load_event("sns-alarm-ok.json"))
    flow(alarm_event("ALARM", "OK", "2026-11-30T08:50:00.000+0000"))
    flow(load_event("sns-alarm.json"))
    # When the alarm is OK again at 09:00
    flow(alarm_event("OK", "ALARM", "2026-11-30T09:00:00.000+0000"), now=ALARM_AT + 7000)
    # Then the first OK said nothing of a duration, and the last one counts from 08:50
    oks = [summary_of(m) for m in slack.accepted if m["text"].startswith("RESOLVED")]
    assert oks == ["", "In ALARM for 10 min (since 08:50 UTC)"]


def test_what_is_remembered_of_an_alarm_expires(flow: Flow, tables: Tables) -> None:
    # Given an ALARM handled now
    flow(load_event("sns-alarm.json"), now=ALARM_AT)
    # Then the alarm's item in AlertStateTable carries the table's TTL, 14 days on
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=tables.alert_state)
    [remembered] = [item for item in items["Items"] if item["id"]["S"].startswith("alarm#")]
    assert int(remembered["expiration"]["N"]) == int(ALARM_AT) + 14 * 86400


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(45, "45 s"), (708, "12 min"), (7528, "2 h 5 min"), (7200, "2 h"), (277_300, "3 d 5 h")],
)
def test_durations_read_as_a_person_would_say_them(seconds: float, words: str) -> None:
    assert duration_in_words(seconds) == words


# --------------------------------------------------------------------- routing


def test_the_ok_goes_where_its_alarm_went() -> None:
    # Given a rule: errors of batchwire's alarms go to on-call
    oncall = "arn:aws:secretsmanager:us-east-1:123456789012:secret:oncall-AbCdEf"
    team = "arn:aws:secretsmanager:us-east-1:123456789012:secret:team-AbCdEf"
    rule = {"source": "alarm:batchwire-*", "minSeverity": "error", "webhookSecretArn": oncall}
    routes = parse_routes(json.dumps([rule]), [team, oncall])
    [alarm] = alerts_from_event(load_event("sns-alarm.json"), REGION)
    [ok] = alerts_from_event(load_event("sns-alarm-ok.json"), REGION)
    # Then the ALARM and the OK that resolves it go to on-call, though an OK is no error
    assert ok.severity == "info"
    assert route_for(alarm, routes, team) == (oncall, "")
    assert route_for(ok, routes, team) == (oncall, "")


# --------------------------------------------------------------------- through the handler


@pytest.fixture
def notifier(
    tables: Tables, slack: SlackReceiver, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    """The handler module imported afresh with its environment, as Lambda starts it."""
    secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=f"batchwire/slack-webhook-{tables.alert_state}", SecretString=slack.url
    )
    for name, value in {
        "AWS_LAMBDA_FUNCTION_NAME": "NotifierFunction",
        "ALERT_STATE_TABLE": tables.alert_state,
        "IDEMPOTENCY_TABLE": tables.idempotency,
        "SLACK_TIMEOUT_SECONDS": "1",
        "SLACK_WEBHOOK_SECRET_ARN": secret["ARN"],
    }.items():
        monkeypatch.setenv(name, value)
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    sys.modules.pop("notifier", None)
    yield importlib.import_module("notifier")
    parameters.clear_caches()  # type: ignore[no-untyped-call]


def test_the_sample_alarm_and_its_ok_through_the_handler(
    notifier: ModuleType, slack: SlackReceiver
) -> None:
    # Given the deployed handler, as the AlarmTopic subscription invokes it
    # When the sample ALARM and then its OK arrive
    notifier.handler(load_event("sns-alarm.json"), context())
    notifier.handler(load_event("sns-alarm-ok.json"), context())
    # Then two posts reached Slack, the OK saying how long, and it is the reviewed message
    # (UPDATE_SNAPSHOTS=1 rewrites)
    assert len(slack.accepted) == 2
    ok = slack.accepted[1]
    assert payload_problems(ok) == []
    assert summary_of(ok) == "In ALARM for 12 min (since 07:03 UTC)"
    snapshot = SNAPSHOTS / "sns-alarm-ok-after-alarm.slack.json"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(json.dumps(ok, indent=2, ensure_ascii=False) + "\n")
    assert ok == json.loads(snapshot.read_text())
