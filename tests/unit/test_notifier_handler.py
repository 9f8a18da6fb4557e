"""Log notifier delivery: what the local Slack stand-in receives, and when the invocation fails.

AWS is moto in-process; Slack is the stand-in over real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext
from moto import mock_aws

from batchwire.errors import ConfigurationError, RequestError
from batchwire.idempotency import OnceStore
from batchwire.notify import IDEMPOTENCY_PREFIX, Delivery, FloodGate, notify_slack
from batchwire.redaction import build_redactor
from batchwire.slack import SlackDeliveryError, WebhookDelivery
from devtools.invoke import LocalContext
from devtools.sample_events import BATCH_STREAM, subscription_event
from devtools.slack_receiver import Reply, SlackReceiver, payload_problems, slack_receiver
from tests.emf import metric_totals

EVENTS = Path(__file__).resolve().parents[2] / "events"
REGION = "us-east-1"


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
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


def store_webhook(name: str, url: str) -> str:
    client = boto3.client("secretsmanager", region_name=REGION)
    arn: str = client.create_secret(Name=name, SecretString=url)["ARN"]
    return arn


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    with slack_receiver() as receiver:
        yield receiver


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, slack: SlackReceiver) -> Iterator[str]:
    """moto with the notifier's tables and its webhook secret; yields the secret's ARN."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "NotifierFunction")
    monkeypatch.setenv("ALERT_STATE_TABLE", "AlertStateTable")
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "IdempotencyTable")
    monkeypatch.setenv("SLACK_TIMEOUT_SECONDS", "1")
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    with mock_aws():
        create_table("AlertStateTable")
        create_table("IdempotencyTable")
        arn = store_webhook("batchwire/slack-webhook", slack.url)
        monkeypatch.setenv("SLACK_WEBHOOK_SECRET_ARN", arn)
        yield arn
    parameters.clear_caches()  # type: ignore[no-untyped-call]


def load_notifier(monkeypatch: pytest.MonkeyPatch, **environ: str) -> ModuleType:
    """Import the handler module afresh: it reads its settings at import, as on Lambda."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    sys.modules.pop("notifier", None)
    return importlib.import_module("notifier")


@pytest.fixture
def notifier(aws: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_notifier(monkeypatch)


def error_event(group: str, *lines: str) -> dict[str, Any]:
    return subscription_event(group, BATCH_STREAM, list(lines), pattern="")


# --------------------------------------------------------------------- delivery


def test_batch_traceback_reaches_slack_as_one_message(
    notifier: ModuleType, slack: SlackReceiver
) -> None:
    # Given the sample subscription payload with a traceback
    event = load_event("cloudwatch-logs-batch-traceback.json")
    # When the notifier handles it
    result = notifier.handler(event, context())
    # Then Slack received exactly one message, the one the log lines describe
    assert len(slack.accepted) == 1
    assert "Errors in Batch job feedstream-Broadbean" in slack.accepted[0]["text"]
    assert result["alerts"][0]["posted"] is True


@pytest.mark.parametrize(
    "event_file",
    [
        "ecs-task-stopped-cannotpull.json",
        "batch-job-failed.json",
        "sns-task-retries-exhausted.json",
        "sns-alarm.json",
        "sns-alarm-ok.json",
    ],
)
def test_failure_events_reach_slack(
    notifier: ModuleType, slack: SlackReceiver, event_file: str
) -> None:
    # When each failure event arrives
    notifier.handler(load_event(event_file), context())
    # Then one message reaches Slack and Slack found nothing to refuse
    assert len(slack.accepted) == 1
    assert payload_problems(slack.accepted[0]) == []


def test_acceptance_channel_mention_password_and_key_do_not_reach_slack(
    notifier: ModuleType, slack: SlackReceiver
) -> None:
    # Given a log line with a mention, a password and an AWS access key id
    event = error_event("/aws/batch/job", "ERROR <!channel> password=hunter2 AKIAIOSFODNN7EXAMPLE")
    # When the notifier posts it
    notifier.handler(event, context())
    # Then what Slack received has no live mention and neither secret
    received = json.dumps(slack.requests)
    assert len(slack.accepted) == 1
    assert "<!channel>" not in received
    assert "hunter2" not in received
    assert "AKIAIOSFODNN7EXAMPLE" not in received


def test_acceptance_ten_thousand_events_give_exactly_one_post(
    notifier: ModuleType, slack: SlackReceiver
) -> None:
    # Given 10,000 error events from one stream in one invocation
    lines = [f"ERROR row {n} rejected: salary is not a number" for n in range(10_000)]
    event = error_event("/aws/batch/job", *lines)
    # When the notifier handles them
    notifier.handler(event, context())
    # Then Slack got one post, within every limit, saying how many lines it left out
    assert len(slack.requests) == 1
    assert len(slack.accepted) == 1
    assert "more lines" in json.dumps(slack.accepted[0])


def test_acceptance_slack_500_until_retries_are_spent_fails_the_invocation(
    notifier: ModuleType, slack: SlackReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Slack answers 500 to every request
    slack.always(Reply.server_error())
    # When the notifier posts
    with pytest.raises(SlackDeliveryError, match="answered 500"):
        notifier.handler(error_event("/aws/batch/job", "ERROR disk full"), context())
    # Then it tried the first time and each retry, nothing was posted, and the webhook URL
    # (a secret) appears in no log line
    assert len(slack.requests) == 1 + 2
    assert slack.accepted == []
    output = capsys.readouterr()
    assert slack.url not in output.out + output.err


def test_after_a_failed_post_the_retry_is_delivered_not_suppressed(
    notifier: ModuleType, slack: SlackReceiver
) -> None:
    # Given a post that failed after every retry
    event = error_event("/aws/batch/job", "ERROR disk full")
    slack.always(Reply.server_error(), times=3)
    with pytest.raises(SlackDeliveryError):
        notifier.handler(event, context())
    # When Lambda retries the same event and Slack is back
    notifier.handler(event, context())
    # Then the alert is posted once
    assert len(slack.accepted) == 1


def test_slack_429_waits_for_retry_after_then_posts(
    notifier: ModuleType, slack: SlackReceiver
) -> None:
    # Given Slack rate-limits the first request for 1 second
    slack.script(Reply.rate_limited(retry_after=1))
    started = time.monotonic()
    # When the notifier posts
    notifier.handler(error_event("/aws/batch/job", "ERROR rate"), context())
    # Then it waited at least Retry-After, and the second attempt was posted
    assert time.monotonic() - started >= 1.0
    assert len(slack.requests) == 2
    assert len(slack.accepted) == 1


def test_slack_hanging_past_the_timeout_is_retried(
    notifier: ModuleType, slack: SlackReceiver
) -> None:
    # Given Slack does not answer the first request within the 1-second timeout
    slack.script(Reply.hang(3))
    # When the notifier posts
    notifier.handler(error_event("/aws/batch/job", "ERROR slow"), context())
    # Then it gave up on the first attempt and the retry was posted
    assert len(slack.requests) == 2
    assert len(slack.accepted) == 1


def test_slack_hanging_on_every_attempt_fails_the_invocation(
    notifier: ModuleType, slack: SlackReceiver
) -> None:
    slack.always(Reply.hang(3), times=3)
    with pytest.raises(SlackDeliveryError, match="unreachable"):
        notifier.handler(error_event("/aws/batch/job", "ERROR slow"), context())
    assert slack.accepted == []


@pytest.mark.parametrize("reply", [Reply.no_service(), Reply.archived()])
def test_revoked_webhook_fails_the_invocation_at_once(
    notifier: ModuleType, slack: SlackReceiver, reply: Reply
) -> None:
    # Given the webhook was revoked (404 no_service) or its channel archived (410)
    slack.always(reply)
    # When the notifier posts
    with pytest.raises(SlackDeliveryError, match=f"answered {reply.status}"):
        notifier.handler(error_event("/aws/batch/job", "ERROR x"), context())
    # Then it did not retry what cannot succeed, and the invocation failed
    assert len(slack.requests) == 1


def test_payload_slack_refuses_fails_the_invocation() -> None:
    # Given a payload Slack answers 400 invalid_payload to
    with slack_receiver() as slack, pytest.raises(SlackDeliveryError, match="invalid_payload"):
        # When it is posted
        WebhookDelivery(timeout_seconds=1).post(slack.url, {"blocks": []})


# --------------------------------------------------------------------- repeats and flood control


def test_same_delivery_twice_posts_once(notifier: ModuleType, slack: SlackReceiver) -> None:
    # Given a subscription payload delivered twice (at-least-once)
    event = error_event("/aws/batch/job", "ERROR twice delivered")
    # When both deliveries are handled
    notifier.handler(event, context())
    second = notifier.handler(event, context())
    # Then Slack got one post and the second answers with the first's outcome
    assert len(slack.accepted) == 1
    assert second["alerts"][0]["posted"] is True


def test_same_delivery_twice_counts_one_post(
    notifier: ModuleType, slack: SlackReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a subscription payload delivered twice (at-least-once)
    event = error_event("/aws/batch/job", "ERROR delivered twice, posted once")

    # When both deliveries are handled
    notifier.handler(event, context())
    first = metric_totals(capsys.readouterr().out)
    second = notifier.handler(event, context())
    again = metric_totals(capsys.readouterr().out)

    # Then AlertsPosted counts the one post Slack shows; the duplicate is absorbed
    assert len(slack.accepted) == 1
    assert (first["AlertsPosted"], again["AlertsPosted"]) == (1, 0)
    assert (first["AlertsSuppressed"], again["AlertsSuppressed"]) == (0, 0)
    assert again["DuplicatesAbsorbed"] == 1
    assert second["alerts"][0]["replayed"] is True


def test_a_post_made_by_a_delivery_that_fails_afterwards_is_counted_once(
    notifier: ModuleType, slack: SlackReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an SNS event with two records (an alarm, a retrier's notice), and Slack refusing
    # the second post
    event = load_event("sns-alarm.json")
    event["Records"].extend(load_event("sns-task-retries-exhausted.json")["Records"])
    slack.script(Reply.ok(), *[Reply.server_error()] * 3)

    # When the first delivery posts one alert, then fails on the other
    with pytest.raises(SlackDeliveryError):
        notifier.handler(event, context())
    failed = metric_totals(capsys.readouterr().out)
    # and Lambda retries the event, Slack being back
    notifier.handler(event, context())
    retried = metric_totals(capsys.readouterr().out)

    # Then Slack shows two posts, and AlertsPosted counts each once
    assert len(slack.accepted) == 2
    assert (failed["AlertsPosted"], retried["AlertsPosted"]) == (1, 1)
    assert failed["NotifyFailed"] == 1
    assert retried["DuplicatesAbsorbed"] == 1


@pytest.fixture
def flow(aws: str, slack: SlackReceiver) -> Any:
    """The core flow with a clock the test controls: 300-second window."""
    gate = FloodGate("AlertStateTable", 300, boto3.client("dynamodb", region_name=REGION))
    once = OnceStore("IdempotencyTable", IDEMPOTENCY_PREFIX, 3600)
    once.register(cast(LambdaContext, context()))
    delivery = Delivery(aws, (), lambda arn: slack.url, WebhookDelivery(timeout_seconds=1).post)

    def run(event: dict[str, Any], now: float) -> dict[str, Any]:
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


def test_acceptance_same_error_twice_in_the_window_posts_once(
    flow: Any, slack: SlackReceiver
) -> None:
    # Given the same error from two tasks, 60 seconds apart
    first = subscription_event("/aws/batch/job", "jobdef/default/aaa111", ["ERROR row 1 bad"])
    second = subscription_event("/aws/batch/job", "jobdef/default/bbb222", ["ERROR row 2 bad"])
    # When both arrive
    flow(first, now=1_000_000.0)
    outcome = flow(second, now=1_000_060.0)
    # Then one post reached Slack; the second was held back
    assert len(slack.accepted) == 1
    assert outcome["alerts"][0]["suppressedNow"] is True


def test_acceptance_after_the_window_the_post_counts_the_suppressed(
    flow: Any, slack: SlackReceiver
) -> None:
    # Given one alert posted and two like it held back within the window
    for offset, task in ((0, "t1"), (30, "t2"), (60, "t3")):
        flow(subscription_event("/aws/batch/job", f"d/default/{task}", ["ERROR x 7"]), 2e6 + offset)
    # When the same error comes after the window
    flow(subscription_event("/aws/batch/job", "d/default/t4", ["ERROR x 9"]), now=2e6 + 301)
    # Then a second post reached Slack, saying two were suppressed
    assert len(slack.accepted) == 2
    assert "2 more alerts like this were suppressed" in json.dumps(slack.accepted[1])
    assert "(2 similar suppressed)" in slack.accepted[1]["text"]


def test_same_error_in_another_log_group_is_not_suppressed(flow: Any, slack: SlackReceiver) -> None:
    flow(subscription_event("/aws/batch/job", "d/default/t1", ["ERROR x"]), now=3e6)
    flow(subscription_event("/ecs/reports", "r/c/t1", ["ERROR x"]), now=3e6 + 1)
    assert len(slack.accepted) == 2


# --------------------------------------------------------------------- routing and configuration


def test_routed_critical_alert_goes_to_its_own_webhook_with_a_mention(
    aws: str, monkeypatch: pytest.MonkeyPatch, slack: SlackReceiver
) -> None:
    # Given an on-call webhook for critical Batch errors, with @here
    with slack_receiver() as oncall:
        oncall_arn = store_webhook("batchwire/oncall-webhook", oncall.url)
        rules = [
            {
                "source": "/aws/batch/*",
                "minSeverity": "critical",
                "webhookSecretArn": oncall_arn,
                "mention": "<!here>",
            }
        ]
        notifier = load_notifier(
            monkeypatch, ROUTE_WEBHOOK_SECRET_ARNS=oncall_arn, ROUTES=json.dumps(rules)
        )
        # When a critical and a plain error arrive
        notifier.handler(error_event("/aws/batch/job", "FATAL out of memory"), context())
        notifier.handler(error_event("/aws/batch/job", "ERROR row rejected"), context())
        # Then the critical one went to on-call with the mention, the other to the team
        assert [m["text"][:14] for m in oncall.accepted] == ["<!here> CRITIC"]
        assert [m["text"][:6] for m in slack.accepted] == ["ERROR:"]


def test_missing_webhook_secret_setting_names_the_variable(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_WEBHOOK_SECRET_ARN")
    with pytest.raises(ConfigurationError, match="SLACK_WEBHOOK_SECRET_ARN is not set"):
        load_notifier(monkeypatch)


def test_secret_that_is_no_webhook_url_fails_without_showing_its_value(
    aws: str, monkeypatch: pytest.MonkeyPatch, slack: SlackReceiver
) -> None:
    # Given a secret holding something else than a URL
    arn = store_webhook("batchwire/wrong", "xoxb-not-a-webhook")
    notifier = load_notifier(monkeypatch, SLACK_WEBHOOK_SECRET_ARN=arn)
    # When an alert is to be posted
    with pytest.raises(ConfigurationError, match="not a Slack webhook URL") as raised:
        notifier.handler(error_event("/aws/batch/job", "ERROR x"), context())
    # Then the error names the secret, not its value, and nothing was posted
    assert "xoxb" not in str(raised.value)
    assert slack.requests == []


def test_bad_event_is_refused_before_any_post(notifier: ModuleType, slack: SlackReceiver) -> None:
    with pytest.raises(RequestError, match=r"awslogs\.data"):
        notifier.handler({"awslogs": {"data": "%%%"}}, context())
    assert slack.requests == []


def test_webhook_setting_that_is_no_secret_arn_says_which_parameter_to_set(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the webhook URL itself where the secret's ARN belongs
    monkeypatch.setenv("SLACK_WEBHOOK_SECRET_ARN", "https://hooks.slack.com/services/T/B/x")
    # When the function starts
    with pytest.raises(ConfigurationError) as raised:
        load_notifier(monkeypatch)
    # Then the error names the variable and the template parameter, but not the URL
    assert "SLACK_WEBHOOK_SECRET_ARN" in str(raised.value)
    assert "template parameter SlackWebhookSecretArn" in str(raised.value)
    assert "hooks.slack.com" not in str(raised.value)


def test_a_partial_secret_arn_is_refused_naming_the_missing_suffix(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the secret's ARN without the 6 characters Secrets Manager appends to its name
    # (GetSecretValue would find it, but IAM grants the full ARN and would deny the call)
    partial = "arn:aws:secretsmanager:us-east-1:123456789012:secret:batchwire/slack-webhook"
    monkeypatch.setenv("SLACK_WEBHOOK_SECRET_ARN", partial)
    # When the function starts
    with pytest.raises(ConfigurationError) as raised:
        load_notifier(monkeypatch)
    # Then the error asks for the full ARN, naming the template parameter
    assert "full ARN" in str(raised.value)
    assert "template parameter SlackWebhookSecretArn" in str(raised.value)


def test_invalid_routing_rule_holding_a_webhook_url_fails_without_showing_it(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a rule with the webhook URL itself where its secret's ARN belongs, and a wrong mention
    rule = {"webhookSecretArn": "https://hooks.slack.com/services/T0/B0/abc", "mention": "@here"}
    monkeypatch.setenv("ROUTES", json.dumps([rule]))
    # When the function starts
    with pytest.raises(ConfigurationError) as raised:
        load_notifier(monkeypatch)
    # Then the error names the rule and the field, but not the URL
    assert "ROUTES[0]: mention '@here' is not" in str(raised.value)
    assert "hooks.slack.com" not in str(raised.value)


# --------------------------------------------------------------------- routes in Parameter Store


def routes_parameter(routes: list[dict[str, Any]]) -> str:
    """A new SSM String parameter holding a routes list; its name is unique."""
    name = f"/batchwire/test-{uuid.uuid4().hex[:12]}/routes"
    update_routes(name, routes)
    return name


def update_routes(name: str, routes: list[dict[str, Any]]) -> None:
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=name, Value=json.dumps(routes), Type="String", Overwrite=True
    )


def test_route_only_in_the_parameter_sends_to_its_webhook(
    aws: str, monkeypatch: pytest.MonkeyPatch, slack: SlackReceiver
) -> None:
    # Given no routes in the environment and an on-call route in an SSM parameter
    with slack_receiver() as oncall:
        oncall_arn = store_webhook("batchwire/oncall-webhook", oncall.url)
        name = routes_parameter([{"source": "/aws/batch/*", "webhookSecretArn": oncall_arn}])
        notifier = load_notifier(
            monkeypatch, ROUTE_WEBHOOK_SECRET_ARNS=oncall_arn, ROUTES_PARAMETER=name
        )
        # When a Batch error arrives
        notifier.handler(error_event("/aws/batch/job", "ERROR row rejected"), context())
        # Then it went to on-call, not to the default webhook
        assert [m["text"][:6] for m in oncall.accepted] == ["ERROR:"]
        assert slack.requests == []


def test_environment_routes_match_before_the_parameter_routes(
    aws: str, monkeypatch: pytest.MonkeyPatch, slack: SlackReceiver
) -> None:
    # Given a route in ROUTES and one for the same alerts in the parameter
    with slack_receiver() as oncall:
        oncall_arn = store_webhook("batchwire/oncall-webhook", oncall.url)
        name = routes_parameter([{"source": "/aws/batch/*", "webhookSecretArn": oncall_arn}])
        notifier = load_notifier(
            monkeypatch,
            ROUTE_WEBHOOK_SECRET_ARNS=oncall_arn,
            ROUTES=json.dumps([{"source": "/aws/batch/*", "mention": "<!here>"}]),
            ROUTES_PARAMETER=name,
        )
        # When a Batch error arrives
        notifier.handler(error_event("/aws/batch/job", "ERROR row rejected"), context())
        # Then the environment's route decided: the default webhook, with its mention
        assert [m["text"][:13] for m in slack.accepted] == ["<!here> ERROR"]
        assert oncall.requests == []


def test_invalid_route_in_the_parameter_stops_the_cold_start_without_showing_the_url(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a parameter whose second route holds webhook URLs where its secret's ARN belongs
    urls = ["https://hooks.slack.com/services/T0/B0/abc"]
    name = routes_parameter([{"source": "*"}, {"webhookSecretArn": urls}])
    # When the function starts
    with pytest.raises(ConfigurationError) as raised:
        load_notifier(monkeypatch, ROUTES_PARAMETER=name)
    # Then the error names the parameter, the route and the field, but not the URL
    assert f"SSM parameter {name} (ROUTES_PARAMETER): " in str(raised.value)
    assert "ROUTES[1].webhookSecretArn: Expected str | null, got array" in str(raised.value)
    assert "hooks.slack.com" not in str(raised.value)


def test_invalid_route_update_fails_the_invocation_and_posts_nothing(
    aws: str, monkeypatch: pytest.MonkeyPatch, slack: SlackReceiver
) -> None:
    # Given routes read from the parameter at every invocation
    name = routes_parameter([{"source": "/aws/batch/*", "mention": "<!here>"}])
    notifier = load_notifier(monkeypatch, ROUTES_PARAMETER=name, RULES_CACHE_SECONDS="0")
    # When the parameter is changed to a route with webhook URLs where an ARN belongs
    update_routes(name, [{"webhookSecretArn": ["https://hooks.slack.com/services/T0/B0/abc"]}])
    with pytest.raises(ConfigurationError) as raised:
        notifier.handler(error_event("/aws/batch/job", "ERROR x"), context())
    # Then the invocation fails naming the parameter and the field, without the URL, and
    # nothing reached Slack (the earlier route was not used instead)
    assert f"SSM parameter {name} (ROUTES_PARAMETER): " in str(raised.value)
    assert "ROUTES[0].webhookSecretArn: Expected str | null, got array" in str(raised.value)
    assert "hooks.slack.com" not in str(raised.value)
    assert slack.requests == []


def test_missing_routes_parameter_stops_the_cold_start_naming_it(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"/batchwire/test-{uuid.uuid4().hex[:12]}/absent"
    with pytest.raises(ConfigurationError, match=f"SSM parameter {name} \\(ROUTES_PARAMETER\\)"):
        load_notifier(monkeypatch, ROUTES_PARAMETER=name)
