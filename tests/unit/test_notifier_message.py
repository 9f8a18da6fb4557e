"""Log notifier messages: what a person reads in Slack for each trigger, within Slack's limits."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from batchwire.alerts import Alert, normalise
from batchwire.errors import ConfigurationError, RequestError
from batchwire.notify import alerts_from_event, parse_routes, route_for
from batchwire.redaction import build_redactor
from batchwire.slack_message import format_alert
from devtools.filter_pattern import UnsupportedPattern, compile_regex_pattern, matches
from devtools.sample_events import (
    BATCH_JOB_LOG,
    BATCH_STREAM,
    default_filter_pattern,
    encode,
    subscription_event,
    subscription_payload,
)
from devtools.slack_receiver import payload_problems

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
REGION = "us-east-1"


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def slack_payload_for(event: dict[str, Any], **options: Any) -> dict[str, Any]:
    (alert,) = alerts_from_event(event, REGION)
    return format_alert(alert, build_redactor(), **options)


def all_text(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False)


def code_text(payload: dict[str, Any]) -> str:
    text: str = next(
        block["text"]["text"]
        for block in payload["blocks"]
        if block["type"] == "section" and block.get("text", {}).get("text", "").startswith("```")
    )
    return text


def log_alert(messages: list[str], group: str = "/aws/batch/job") -> Alert:
    event = subscription_event(group, BATCH_STREAM, messages, pattern="")
    (alert,) = alerts_from_event(event, REGION)
    return alert


# --------------------------------------------------------------------- snapshots


@pytest.mark.parametrize(
    "event_file",
    [
        "cloudwatch-logs-batch-traceback.json",
        "ecs-task-stopped-cannotpull.json",
        "batch-job-failed.json",
        "sns-task-retries-exhausted.json",
        "sns-alarm.json",
        "sns-alarm-ok.json",
    ],
)
def test_sample_event_gives_the_slack_message_in_its_snapshot(event_file: str) -> None:
    # Given a sample trigger from events/
    event = load_event(event_file)
    # When the notifier formats it
    payload = slack_payload_for(event)
    # Then Slack would accept it, and it is the reviewed message (UPDATE_SNAPSHOTS=1 rewrites)
    assert payload_problems(payload) == []
    snapshot = SNAPSHOTS / event_file.replace(".json", ".slack.json")
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    assert payload == json.loads(snapshot.read_text())


def test_batch_log_message_says_what_where_when_and_links_to_the_stream() -> None:
    # Given the sample traceback from a Batch job's log stream
    payload = slack_payload_for(load_event("cloudwatch-logs-batch-traceback.json"))
    text = all_text(payload)
    # Then it names the job definition and task, the log group, the time and the count
    assert "feedstream-Broadbean" in text
    assert "7c1f0e3a9d2b4c6e8f1a2b3c4d5e6f70" in text
    assert "2026-11-23 02:00:13 UTC" in text
    assert "3 matching log events" in text
    # and the traceback's exception line is in the code block
    assert "ValueError: row 4120: unexpected column 'salary_band'" in code_text(payload)
    # and the console link is the double-encoded deep link
    assert (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        "#logsV2:log-groups/log-group/$252Faws$252Fbatch$252Fjob/log-events/"
        "feedstream-Broadbean$252Fdefault$252F7c1f0e3a9d2b4c6e8f1a2b3c4d5e6f70"
    ) in text


def test_ecs_log_stream_names_container_and_task() -> None:
    # Given an ECS awslogs stream <prefix>/<container>/<task id>
    event = subscription_event("/ecs/reports", "reports/post-trade/0f6c3a9e2b5d", ["ERROR boom"])
    # When it is formatted
    text = all_text(slack_payload_for(event))
    # Then the container and task id are named
    assert "ECS task post-trade" in text
    assert "0f6c3a9e2b5d" in text


# --------------------------------------------------------------------- acceptance: safety


def test_mention_password_and_key_in_a_log_line_never_reach_slack_live() -> None:
    # Given a log line with a channel mention, a password pair and an access key id
    line = "ERROR <!channel> password=hunter2 AKIAIOSFODNN7EXAMPLE & more"
    # When it is formatted for Slack
    payload = format_alert(log_alert([line]), build_redactor())
    text = all_text(payload)
    # Then the mention is inert text, and neither secret is in the message
    assert "<!channel>" not in text
    assert "&lt;!channel&gt;" in code_text(payload)
    assert "&amp; more" in code_text(payload)
    assert "hunter2" not in text
    assert "AKIAIOSFODNN7EXAMPLE" not in text
    assert "password=[REDACTED]" in code_text(payload)


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("ERROR aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ('ERROR {"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}', "wJalrXUtnFEMI"),
        ("ERROR keys AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "bPxRfiCY"),
        ("ERROR Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "eyJhbGci"),
        ("ERROR cannot reach postgres://app:S3cr3t!@db.internal:5432/feeds", "S3cr3t!"),
        ("ERROR retry with token=ghp_abcdef1234567890", "ghp_abcdef"),
        ("ERROR secret: 'swordfish'", "swordfish"),
        (
            "ERROR posting to https://hooks.slack.com/services/T0001/B0002/XXXXXXXXXXXXXXXXXXXXXXXX",
            "XXXXXXXXXXXXXXXXXXXXXXXX",
        ),
    ],
)
def test_secrets_in_log_lines_are_redacted(line: str, secret: str) -> None:
    # Given a log line holding a secret
    # When it is formatted for Slack
    text = all_text(format_alert(log_alert([line]), build_redactor()))
    # Then the secret is gone and the redaction is visible
    assert secret not in text
    assert "[REDACTED]" in text


def test_configured_redaction_pattern_applies_to_titles_and_lines() -> None:
    # Given a team-specific pattern for customer numbers
    redactor = build_redactor([r"CUST-\d{6}"])
    # When a line with one is formatted
    text = all_text(format_alert(log_alert(["ERROR failed for CUST-123456"]), redactor))
    # Then the number is redacted
    assert "CUST-123456" not in text
    assert "failed for [REDACTED]" in text


def test_invalid_redaction_pattern_is_a_configuration_error_naming_it() -> None:
    # Given a pattern that is not a regular expression
    # When the redactor is built
    with pytest.raises(ConfigurationError, match=r"REDACT_PATTERNS\[1\]: '\(unclosed'"):
        build_redactor(["ok", "(unclosed"])


def test_backticks_in_a_log_line_cannot_close_the_code_block() -> None:
    # Given a log line with a Markdown code fence
    payload = format_alert(log_alert(["ERROR ```rm -rf```"]), build_redactor())
    # Then the code block holds exactly one opening and one closing fence
    assert code_text(payload).count("```") == 2


# --------------------------------------------------------------------- acceptance: limits


def test_ten_thousand_events_from_one_stream_give_one_message_within_limits() -> None:
    # Given a 10,000-event batch from one stream
    messages = [f"2026-11-23 02:00:13,{n % 1000:03d} ERROR row {n} rejected" for n in range(10_000)]
    event = subscription_event("/aws/batch/job", BATCH_STREAM, messages)
    # When it is read and formatted
    alerts = alerts_from_event(event, REGION)
    payload = format_alert(alerts[0], build_redactor())
    # Then there is one message, Slack accepts it, and the truncation is counted
    assert len(alerts) == 1
    assert payload_problems(payload) == []
    code = code_text(payload)
    assert len(code) <= 3000
    shown = code.count("ERROR row")
    assert f"… {10_000 - shown:,} more lines" in code
    assert "10,000 matching log events" in all_text(payload)


def test_one_huge_log_line_is_cut_and_marked() -> None:
    # Given one 50,000-character error line
    payload = format_alert(log_alert(["ERROR " + "x" * 50_000]), build_redactor())
    # Then the message is accepted and says the line was cut
    assert payload_problems(payload) == []
    assert "…" in code_text(payload)


def test_many_facts_and_long_values_stay_within_field_limits() -> None:
    # Given an alert with 14 facts of 5,000 characters each
    alert = Alert(
        kind="generic",
        severity="error",
        title="t" * 5000,
        source="sns:x",
        identity="i",
        signature="s",
        summary="s" * 5000,
        facts=tuple((f"fact {n}", "v" * 5000) for n in range(14)),
        region=REGION,
        account="123456789012",
    )
    # When it is formatted
    payload = format_alert(alert, build_redactor())
    # Then Slack accepts it
    assert payload_problems(payload) == []


# --------------------------------------------------------------------- reading triggers


def test_control_message_gives_no_alert() -> None:
    # Given CloudWatch Logs' subscription check message
    payload = {**subscription_payload("/aws/batch/job", BATCH_STREAM, [], pattern="")}
    payload["messageType"] = "CONTROL_MESSAGE"
    payload["logEvents"] = [{"id": "1", "timestamp": 0, "message": "CWL CONTROL MESSAGE"}]
    # When it is read
    # Then nothing is to be posted
    assert alerts_from_event(encode(payload), REGION) == []


def test_ecs_task_that_exited_zero_gives_no_alert() -> None:
    # Given an ECS STOPPED event whose containers all exited 0
    event = load_event("ecs-task-stopped-cannotpull.json")
    event["detail"]["stopCode"] = "EssentialContainerExited"
    event["detail"]["containers"][0]["exitCode"] = 0
    # Then it is no failure
    assert alerts_from_event(event, REGION) == []


def test_a_service_deployment_stopping_its_old_tasks_gives_no_alert() -> None:
    # Given a service's task stopped by a deployment: SIGTERM, exit 143
    event = load_event("ecs-task-stopped-service.json")
    event["detail"]["stopCode"] = "ServiceSchedulerInitiated"
    event["detail"]["stoppedReason"] = "Scaling activity initiated by (deployment ecs-svc/123)"
    for container in event["detail"]["containers"]:
        container["exitCode"] = 143
    # Then it is no failure
    assert alerts_from_event(event, REGION) == []


def test_a_service_task_that_crashed_still_alerts() -> None:
    # Given a service's task whose essential container exited 1 on its own
    event = load_event("ecs-task-stopped-service.json")
    # Then it is a failure a person should see
    [alert] = alerts_from_event(event, REGION)
    assert alert.kind == "ecs-task-stopped"


def test_batch_job_that_succeeded_gives_no_alert() -> None:
    event = load_event("batch-job-failed.json")
    event["detail"]["status"] = "SUCCEEDED"
    assert alerts_from_event(event, REGION) == []


def test_task_rejected_notice_is_formatted_as_such() -> None:
    # Given the retrier's task-rejected notice
    event = load_event("sns-task-retries-exhausted.json")
    body = json.loads(event["Records"][0]["Sns"]["Message"])
    body.update(kind="task-rejected", exitCode=3, summary="input rejected (exit code 3)")
    event["Records"][0]["Sns"]["Message"] = json.dumps(body)
    event["Records"][0]["Sns"]["MessageAttributes"]["kind"]["Value"] = "task-rejected"
    # When it is formatted
    text = all_text(slack_payload_for(event))
    # Then it says the task was rejected, with the exit code
    assert "Task rejected: post-trade-report:14" in text
    assert "*Exit code*\\n3" in text


def retrier_notice(**changes: Any) -> dict[str, Any]:
    """The sample retries-exhausted notice on SNS, with ``changes`` to its message."""
    event = load_event("sns-task-retries-exhausted.json")
    sns = event["Records"][0]["Sns"]
    body = {**json.loads(sns["Message"]), **changes}
    sns["Message"] = json.dumps(body)
    sns["MessageAttributes"]["kind"]["Value"] = body["kind"]
    return event


def fields_of(payload: dict[str, Any]) -> dict[str, str]:
    """The message's fields, label -> value, as a person reads them."""
    [section] = [block for block in payload["blocks"] if "fields" in block]
    return dict(field["text"].strip("*").split("*\n", 1) for field in section["fields"])


def test_notice_of_a_task_started_for_a_queued_message_gives_its_snapshot() -> None:
    # Given the retries-exhausted notice of a task the dispatcher started for a message
    event = retrier_notice(messageId="0c4d8e2f-5a6b-4c7d-8e9f-a0b1c2d3e4f5")
    # When the notifier formats it
    payload = slack_payload_for(event)
    # Then it is the reviewed message (UPDATE_SNAPSHOTS=1 rewrites), within Slack's limits
    assert payload_problems(payload) == []
    snapshot = SNAPSHOTS / "sns-task-retries-exhausted-for-message.slack.json"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    assert payload == json.loads(snapshot.read_text())


@pytest.mark.parametrize("kind", ["task-retries-exhausted", "task-rejected"])
def test_notice_of_a_queued_message_shows_its_message_id_and_every_other_fact(kind: str) -> None:
    # Given a notice of a task started for a queued message (ECS's default group)
    event = retrier_notice(kind=kind, messageId="m-42")
    # When it is formatted
    fields = fields_of(slack_payload_for(event))
    # Then the message id is a fact, and so are the task, exit code, account and region
    assert fields["Message id"] == "m-42"
    assert fields["Task id"] == "9a8b7c6d5e4f40312a1b2c3d4e5f6a7b"
    assert (fields["Exit code"], fields["Stop code"]) == ("2", "EssentialContainerExited")
    assert (fields["Account"], fields["Region"]) == ("123456789012", "us-east-1")
    # ... while the default group, which only repeats the task definition, makes room
    assert "Group" not in fields


def test_notice_of_a_queued_message_in_a_group_of_its_own_keeps_every_fact() -> None:
    # Given a notice of a task for a queued message whose group is not ECS's default
    event = retrier_notice(messageId="m-42", group="feeds-nightly")
    # When it is formatted
    payload = slack_payload_for(event)
    fields = fields_of(payload)
    # Then Slack accepts it, and no fact is lost: the stop code joins the exit code
    assert payload_problems(payload) == []
    assert (fields["Message id"], fields["Group"]) == ("m-42", "feeds-nightly")
    assert fields["Exit code"] == "2 (EssentialContainerExited)"
    assert (fields["Account"], fields["Region"]) == ("123456789012", "us-east-1")


def test_notice_of_a_scheduled_task_has_no_message_id() -> None:
    # Given the notice of a scheduled task (no messageId)
    fields = fields_of(slack_payload_for(load_event("sns-task-retries-exhausted.json")))
    # Then there is no message id, and its group and stop code are shown as ever
    assert "Message id" not in fields
    assert (fields["Group"], fields["Stop code"]) == (
        "family:post-trade-report",
        "EssentialContainerExited",
    )


def test_other_sns_message_is_a_generic_alert_with_its_text_escaped() -> None:
    # Given something else published on the topic
    event = load_event("sns-task-retries-exhausted.json")
    event["Records"][0]["Sns"].update(
        Subject="Disk almost full", Message="volume <b> at 97% & rising", MessageAttributes={}
    )
    # When it is formatted
    payload = slack_payload_for(event)
    # Then it shows the subject and the escaped message
    assert "Disk almost full" in payload["text"]
    assert "volume &lt;b&gt; at 97% &amp; rising" in code_text(payload)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"awslogs": {"data": "not-base64-gzip"}}, "awslogs.data"),
        ({"Records": [{"EventSource": "aws:sqs"}]}, "Records[0].EventSource"),
        ({"source": "aws.s3", "detail-type": "Object Created"}, "(event)"),
    ],
)
def test_unknown_or_broken_event_is_refused_naming_the_field(event: Any, field: str) -> None:
    # When an event the notifier cannot read arrives
    with pytest.raises(RequestError) as raised:
        alerts_from_event(event, REGION)
    # Then the error names the field
    assert any(problem.startswith(field) for problem in raised.value.problems)


# --------------------------------------------------------------------- fingerprints


def test_same_error_from_different_tasks_has_one_fingerprint() -> None:
    # Given the same error logged by two tasks at different times with different ids
    first = log_alert(
        [
            "2026-11-23T02:00:13.402Z ERROR job 5d8e1f2a-6b3c-4d9e-8f0a-1b2c3d4e5f60 row 17 "
            "failed at 0x7f3a2c at offset 4120 object deadbeef01"
        ]
    )
    second = log_alert(
        [
            "2026-11-24T03:10:55.001Z ERROR job 0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d row 99 "
            "failed at 0x11aa22 at offset 7 object cafebabe99"
        ]
    )
    # Then both have the same fingerprint
    assert first.fingerprint == second.fingerprint


def test_different_errors_have_different_fingerprints() -> None:
    assert (
        log_alert(["ERROR disk full"]).fingerprint != log_alert(["ERROR auth failed"]).fingerprint
    )


def test_python_tracebacks_are_told_apart_by_their_exception_line() -> None:
    # Given two tracebacks with different exceptions
    header = "Traceback (most recent call last):"
    first = log_alert([f"{header}\n  File 'a.py', line 1\nValueError: bad row"])
    second = log_alert([f"{header}\n  File 'a.py', line 1\nKeyError: 'salary'"])
    # Then their fingerprints differ
    assert first.fingerprint != second.fingerprint
    assert normalise("row 17 at 2026-11-23 02:00:13,412") == "row <n> at <ts>"


# --------------------------------------------------------------------- routing


ROUTE_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:oncall-AbCdEf"
DEFAULT_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:team-AbCdEf"


def test_critical_batch_errors_go_to_the_route_with_its_mention() -> None:
    # Given a rule: critical errors of Batch log groups go to on-call, with @here
    routes = parse_routes(
        json.dumps(
            [
                {
                    "source": "/aws/batch/*",
                    "minSeverity": "critical",
                    "webhookSecretArn": ROUTE_SECRET,
                    "mention": "<!here>",
                }
            ]
        ),
        [DEFAULT_SECRET, ROUTE_SECRET],
    )
    critical = log_alert(["FATAL out of memory"])
    plain_error = log_alert(["ERROR row rejected"])
    # Then only the critical one is routed there, with the mention
    assert route_for(critical, routes, DEFAULT_SECRET) == (ROUTE_SECRET, "<!here>")
    assert route_for(plain_error, routes, DEFAULT_SECRET) == (DEFAULT_SECRET, "")


def test_configured_mention_is_live_in_the_message() -> None:
    # Given a routed alert with a user-group mention
    payload = format_alert(log_alert(["FATAL oom"]), build_redactor(), mention="<!subteam^S0123>")
    # Then the mention leads the message and the fallback text
    assert payload["blocks"][0]["text"]["text"].startswith("<!subteam^S0123> ")
    assert payload["text"].startswith("<!subteam^S0123> ")


def test_without_rules_everything_goes_to_the_default_webhook_without_mention() -> None:
    assert route_for(log_alert(["FATAL oom"]), (), DEFAULT_SECRET) == (DEFAULT_SECRET, "")


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            '[{"minSeverity": "loud"}]',
            r"ROUTES\[0\]: minSeverity 'loud' is not one of info, warning, error, critical$",
        ),
        (
            '[{"mention": "@here"}]',
            r"ROUTES\[0\]: mention '@here' is not <!here>, <!channel>, "
            r"<!subteam\^ID> or <@USERID>$",
        ),
        ('[{"source": ""}]', r"ROUTES\[0\]\.source: Expected str of length >= 1 \(got ''\)"),
        (f'[{{"webhookSecretArn": "{ROUTE_SECRET}x"}}]', r"ROUTES\[0\]\.webhookSecretArn: not"),
        ('[{"sauce": "*"}]', r"ROUTES\[0\]\.sauce: unknown key"),
        ('{"source": "*"}', r"ROUTES: must be a JSON list"),
    ],
)
def test_invalid_routing_rules_name_the_rule_and_field(rules: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_routes(rules, [DEFAULT_SECRET, ROUTE_SECRET])


def test_each_invalid_routing_rule_is_named() -> None:
    # Given two wrong rules around a valid one
    rules = [{"minSeverity": "loud"}, {"source": "ecs:*"}, {"source": "ecs:*", "mention": "@here"}]
    # When they are parsed
    with pytest.raises(ConfigurationError) as raised:
        parse_routes(json.dumps(rules), [DEFAULT_SECRET])
    # Then the error names both wrong rules, each with its field
    assert "ROUTES[0]: minSeverity 'loud' is not one of" in str(raised.value)
    assert "ROUTES[2]: mention '@here' is not <!here>" in str(raised.value)
    assert "ROUTES[1]" not in str(raised.value)


# --------------------------------------------------------------------- the subscription filter


@pytest.mark.parametrize(
    "line",
    [
        "2026-11-23 02:00:13,402 ERROR feedstream.import: row 17 rejected",
        "Traceback (most recent call last):",
        "ValueError: row 4120: unexpected column 'salary_band'",
        "Exception in thread main java.lang.NullPointerException",
        "level=fatal msg=cannot open config",
        "FATAL: password authentication failed for user app",
        "2026-11-23 02:00:13,415 CRITICAL feedstream: giving up",
        "panic: runtime Error: index out of range",
    ],
)
def test_default_filter_pattern_passes_error_lines(line: str) -> None:
    assert matches(default_filter_pattern(), line)


@pytest.mark.parametrize(
    "line",
    [
        "2026-11-23 02:00:03,118 INFO feedstream.import: fetching feed broadbean since 24h",
        "2026-11-23 02:00:09,551 WARNING feedstream.http: slow answer (4.2 s), retrying",
        "imported 1200 rows, 0 errors",
    ],
)
def test_default_filter_pattern_holds_back_other_lines(line: str) -> None:
    assert not matches(default_filter_pattern(), line)


def test_default_filter_pattern_uses_only_syntax_cloudwatch_accepts() -> None:
    # Then the template's pattern compiles under CloudWatch's regex restrictions...
    compile_regex_pattern(default_filter_pattern())
    # ...which do reject what CloudWatch rejects (parentheses, spaces)
    with pytest.raises(UnsupportedPattern):
        compile_regex_pattern("%(ERROR|FATAL)%")
    with pytest.raises(UnsupportedPattern):
        compile_regex_pattern("%out of memory%")


def test_sample_event_holds_the_lines_the_filter_passes() -> None:
    # Given the committed sample payload
    (alert,) = alerts_from_event(load_event("cloudwatch-logs-batch-traceback.json"), REGION)
    # Then it carries the job log's error records and none of its INFO or WARNING ones
    expected = [line for line in BATCH_JOB_LOG if matches(default_filter_pattern(), line)]
    assert alert.match_count == len(expected) == 3
    assert not any(" INFO " in line or " WARNING " in line for line in alert.lines)


def test_a_256_kb_line_without_secrets_passes_redaction_whole() -> None:
    # Given the largest log event CloudWatch Logs accepts, long runs of key-like characters
    # (how long redaction takes on it is measured by `make bench`, not asserted here)
    line = "ERROR " + "x" * 128_000 + " " + "aB3/" * 32_000

    # When it is redacted, Then nothing in it is mistaken for a secret
    assert build_redactor().redact(line) == line
