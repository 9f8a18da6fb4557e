"""Log notifier: failure events and log errors become Slack messages people can trust.

``notify_slack`` reads the trigger (CloudWatch Logs subscription, EventBridge ECS or Batch
failure, SNS), holds back repeats with a FloodGate, picks the webhook and mention from the
routing rules, and posts. A CloudWatch alarm's change out of ALARM says how long the ALARM
lasted (AlarmStates). Every post runs once per trigger identity; a post Slack refused
raises, so the trigger's retries and the on-failure destination keep the alert.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from batchwire.alarms import AlarmStates, alarm_lasted
from batchwire.alerts import (
    SEVERITIES,
    Alert,
    alert_from_batch_job,
    alert_from_ecs_task,
    alert_from_logs,
    alert_from_sns,
)
from batchwire.errors import ConfigurationError, RequestError, describe_validation_error
from batchwire.idempotency import RunOnce, run_once_noting
from batchwire.redaction import Redactor
from batchwire.slack_message import format_alert

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

#: Prefix of the idempotency records the notifier writes.
IDEMPOTENCY_PREFIX = "batchwire.notifier"

_MENTION = re.compile(r"^(<!here>|<!channel>|<!subteam\^[A-Z0-9]+(\|[^<>]+)?>|<@[UW][A-Z0-9]+>)$")


# --------------------------------------------------------------------- routing


class Route(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One routing rule: alerts from ``source`` at ``minSeverity`` or above go to its webhook.

    ``source`` is a glob over the log group (``/aws/batch/job*``) or ``ecs:<cluster>``,
    ``batch:<queue>``, ``alarm:<alarm name>``, ``sns:<topic>``. The first matching rule
    decides. An alert that resolves a problem (an alarm's OK) is matched at the problem's
    severity, so it goes where the problem went.
    """

    source: Annotated[str, msgspec.Meta(min_length=1)] = "*"
    min_severity: str = msgspec.field(name="minSeverity", default="info")
    webhook_secret_arn: str | None = msgspec.field(name="webhookSecretArn", default=None)
    mention: str = ""

    def __post_init__(self) -> None:
        # raised here, the problem is reported at the rule: the message names the field
        if self.min_severity not in SEVERITIES:
            raise ValueError(
                f"minSeverity {self.min_severity!r} is not one of {', '.join(SEVERITIES)}"
            )
        if self.mention and not _MENTION.match(self.mention):
            raise ValueError(
                f"mention {self.mention!r} is not <!here>, <!channel>, <!subteam^ID> or <@USERID>"
            )

    def matches(self, alert: Alert) -> bool:
        severity = SEVERITIES.index(alert.resolves or alert.severity)
        return fnmatch.fnmatchcase(alert.source, self.source) and severity >= SEVERITIES.index(
            self.min_severity
        )


def parse_routes(text: str, allowed_secret_arns: Sequence[str]) -> tuple[Route, ...]:
    """Routing rules from the ROUTES JSON list; ConfigurationError names the rule and field.

    A rule's webhook secret must be one of ``allowed_secret_arns``: the function may read
    no other secret (IAM grants GetSecretValue on exactly those).
    """
    try:
        raw = json.loads(text or "[]")
    except ValueError as error:
        raise ConfigurationError(f"ROUTES: not JSON ({error})") from None
    if not isinstance(raw, list):
        raise ConfigurationError("ROUTES: must be a JSON list of rules")
    routes = []
    problems: list[str] = []
    for index, item in enumerate(raw):
        # one rule at a time, so that each wrong rule is named, not only the first
        try:
            route = msgspec.convert(item, Route)
        except msgspec.ValidationError as error:
            problems.extend(describe_validation_error(error, item, f"ROUTES[{index}]"))
            continue
        if route.webhook_secret_arn and route.webhook_secret_arn not in allowed_secret_arns:
            problems.append(
                f"ROUTES[{index}].webhookSecretArn: not listed in the template parameter "
                "SlackRouteWebhookSecretArns, so the function may not read it"
            )
        routes.append(route)
    if problems:
        raise ConfigurationError("routing rules are invalid: " + "; ".join(problems))
    return tuple(routes)


def route_for(alert: Alert, routes: Sequence[Route], default_secret_arn: str) -> tuple[str, str]:
    """(webhook secret ARN, mention) for ``alert``: the first matching rule, else the default."""
    for route in routes:
        if route.matches(alert):
            return route.webhook_secret_arn or default_secret_arn, route.mention
    return default_secret_arn, ""


# --------------------------------------------------------------------- flood control


@dataclass(frozen=True)
class Claim:
    """The FloodGate's answer for one alert: post it (with the count held back) or not."""

    key: str
    granted: bool
    suppressed: int
    claimed_at: float
    previous_sent: float
    previous_suppressed: int


class FloodGate:
    """At most one alert per (source, fingerprint) per window, counted in DynamoDB.

    One item per key: when the last alert went out, by which trigger, and how many were
    held back since. Conditional writes make concurrent invocations agree.
    """

    def __init__(self, table: str, window_seconds: int, dynamodb: DynamoDBClient) -> None:
        self.table = table
        self.window_seconds = window_seconds
        self.dynamodb = dynamodb

    @staticmethod
    def key_of(alert: Alert) -> str:
        digest = hashlib.sha256(f"{alert.source}\x1f{alert.fingerprint}".encode()).hexdigest()
        return f"flood#{digest[:32]}"

    def claim(self, alert: Alert, now: float) -> Claim:
        """Take the window for ``alert``, or count it as suppressed if another alert holds it.

        The trigger that took the window may take it again (its own retry after a failure).
        """
        key = self.key_of(alert)
        values: dict[str, AttributeValueTypeDef] = {
            ":now": {"N": f"{now:.3f}"},
            ":cutoff": {"N": f"{now - self.window_seconds:.3f}"},
            ":zero": {"N": "0"},
            ":expires": {"N": str(int(now) + self.window_seconds + 86400)},
            ":me": {"S": alert.identity},
            ":source": {"S": alert.source[:512]},
        }
        try:
            answer = self.dynamodb.update_item(
                TableName=self.table,
                Key={"id": {"S": key}},
                UpdateExpression=(
                    "SET last_sent = :now, suppressed = :zero, expiration = :expires, "
                    "claimed_by = :me, alert_source = :source"
                ),
                ConditionExpression=(
                    "attribute_not_exists(id) OR last_sent <= :cutoff OR claimed_by = :me"
                ),
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"id": {"S": key}},
                UpdateExpression="ADD suppressed :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
            return Claim(key, False, 0, now, 0.0, 0)
        previous = answer.get("Attributes") or {}
        mine_before = previous.get("claimed_by", {}).get("S") == alert.identity
        suppressed = 0 if mine_before else int(previous.get("suppressed", {}).get("N", "0"))
        sent = float(previous.get("last_sent", {}).get("N", "0"))
        return Claim(key, True, suppressed, now, sent, suppressed)

    def reopen(self, alert: Alert) -> None:
        """Let the next alert like ``alert`` through at once, whatever the window holds."""
        with contextlib.suppress(self.dynamodb.exceptions.ConditionalCheckFailedException):
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"id": {"S": self.key_of(alert)}},
                UpdateExpression="SET last_sent = :zero",
                ConditionExpression="attribute_exists(id)",
                ExpressionAttributeValues={":zero": {"N": "0"}},
            )

    def release(self, claim: Claim) -> None:
        """Give the window back after a failed post, so the retry is not suppressed."""
        # a failed condition means another alert took the window meanwhile: nothing to undo
        with contextlib.suppress(self.dynamodb.exceptions.ConditionalCheckFailedException):
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"id": {"S": claim.key}},
                UpdateExpression="SET last_sent = :before ADD suppressed :held",
                ConditionExpression="last_sent = :mine",
                ExpressionAttributeValues={
                    ":before": {"N": f"{claim.previous_sent:.3f}"},
                    ":held": {"N": str(claim.previous_suppressed)},
                    ":mine": {"N": f"{claim.claimed_at:.3f}"},
                },
            )


# --------------------------------------------------------------------- reading triggers

# The fields each reader of batchwire.alerts uses, with the types AWS sends them in; other
# fields are left alone (AWS adds fields over time). A trigger that breaks them was not sent
# by AWS, and is refused naming the field.

#: Epoch milliseconds up to the year 9999, as far as Python's datetime goes.
EpochMs = Annotated[int, msgspec.Meta(ge=0, le=253_402_300_799_999)]


class _LogEvent(msgspec.Struct, frozen=True):
    id: str = ""
    timestamp: EpochMs = 0
    message: str = ""


class _LogsPayload(msgspec.Struct, frozen=True):
    messageType: str | None = None
    owner: str | None = None
    logGroup: str | None = None
    logStream: str | None = None
    logEvents: list[_LogEvent] | None = None


class _SnsAttribute(msgspec.Struct, frozen=True):
    Value: str | None = None


class _Sns(msgspec.Struct, frozen=True):
    Message: str | None = None
    MessageId: str | None = None
    TopicArn: str | None = None
    Subject: str | None = None
    Timestamp: str | None = None
    MessageAttributes: dict[str, _SnsAttribute] | None = None


class _SnsRecord(msgspec.Struct, frozen=True):
    Sns: _Sns


class _SnsEvent(msgspec.Struct, frozen=True):
    Records: list[_SnsRecord]


class _EcsContainer(msgspec.Struct, frozen=True):
    name: str | None = None
    exitCode: int | None = None
    reason: str | None = None


class _EcsDetail(msgspec.Struct, frozen=True):
    lastStatus: str | None = None
    stopCode: str | None = None
    stoppedReason: str | None = None
    containers: list[_EcsContainer] | None = None
    clusterArn: str | None = None
    taskArn: str | None = None
    taskDefinitionArn: str | None = None
    group: str | None = None
    launchType: str | None = None
    capacityProviderName: str | None = None
    createdAt: str | None = None
    startedAt: str | None = None
    stoppedAt: str | None = None


class _BatchContainer(msgspec.Struct, frozen=True):
    exitCode: int | None = None
    reason: str | None = None
    logStreamName: str | None = None


class _BatchLogConfiguration(msgspec.Struct, frozen=True):
    options: dict[str, str] | None = None


class _BatchJobContainer(_BatchContainer, frozen=True):
    logConfiguration: _BatchLogConfiguration | None = None


class _BatchAttempt(msgspec.Struct, frozen=True):
    container: _BatchContainer | None = None


class _ArrayProperties(msgspec.Struct, frozen=True):
    index: int | None = None


class _BatchDetail(msgspec.Struct, frozen=True):
    status: str | None = None
    statusReason: str | None = None
    jobId: str | None = None
    jobName: str | None = None
    jobQueue: str | None = None
    jobDefinition: str | None = None
    attempts: list[_BatchAttempt] | None = None
    container: _BatchJobContainer | None = None
    arrayProperties: _ArrayProperties | None = None
    createdAt: EpochMs | None = None
    startedAt: EpochMs | None = None
    stoppedAt: EpochMs | None = None


class _EcsEvent(msgspec.Struct, frozen=True):
    id: str | None = None
    time: str | None = None
    region: str | None = None
    account: str | None = None
    detail: _EcsDetail | None = None


class _BatchEvent(msgspec.Struct, frozen=True):
    id: str | None = None
    time: str | None = None
    region: str | None = None
    account: str | None = None
    detail: _BatchDetail | None = None


def _check(value: Any, model: type[msgspec.Struct], summary: str, prefix: str = "") -> None:
    """Refuse ``value`` unless its fields have the types ``model`` gives them."""
    try:
        msgspec.convert(value, model)
    except msgspec.ValidationError as error:
        raise RequestError(summary, describe_validation_error(error, value, prefix)) from None


def alerts_from_event(event: Any, region: str) -> list[Alert]:
    """The alerts a trigger carries: none for a CONTROL_MESSAGE or an event that is no failure.

    Raises RequestError naming the field when the event is none of the known triggers, or a
    field it reads does not have the type AWS sends.
    """
    if not isinstance(event, dict):
        raise RequestError("event is not a JSON object", ["(event): expected an object"])
    if "awslogs" in event:
        decoded = _decode_logs(event)
        _check(decoded, _LogsPayload, "CloudWatch Logs payload is not usable", "awslogs.data")
        return [alert for alert in [alert_from_logs(decoded, region)] if alert]
    if isinstance(event.get("Records"), list):
        records = event["Records"]
        problems = [
            f"Records[{index}].EventSource: {record.get('EventSource')!r}, expected 'aws:sns'"
            if isinstance(record, dict)
            else f"Records[{index}]: expected an SNS record, got {type(record).__name__}"
            for index, record in enumerate(records)
            if not isinstance(record, dict) or record.get("EventSource") != "aws:sns"
        ]
        if problems:
            raise RequestError("only SNS records are understood", problems)
        _check(event, _SnsEvent, "SNS records are not usable")
        return [alert for alert in map(alert_from_sns, records) if alert is not None]
    source, detail_type = event.get("source"), event.get("detail-type")
    if source == "aws.ecs" and detail_type == "ECS Task State Change":
        _check(event, _EcsEvent, "not a usable ECS Task State Change event")
        return [alert for alert in [alert_from_ecs_task(event)] if alert]
    if source == "aws.batch" and detail_type == "Batch Job State Change":
        _check(event, _BatchEvent, "not a usable Batch Job State Change event")
        return [alert for alert in [alert_from_batch_job(event)] if alert]
    raise RequestError(
        "not a trigger the notifier knows",
        [
            "(event): expected a CloudWatch Logs subscription ({'awslogs': ...}), SNS records, "
            "or an EventBridge ECS Task State Change / Batch Job State Change "
            f"(got source={source!r}, detail-type={detail_type!r})"
        ],
    )


def _decode_logs(event: dict[str, Any]) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.data_classes import CloudWatchLogsEvent

    try:
        decoded = CloudWatchLogsEvent(event).parse_logs_data()
        return dict(decoded.raw_event)
    except Exception as error:  # binascii, gzip, json and key errors alike: the payload is bad
        raise RequestError(
            "CloudWatch Logs payload cannot be decoded",
            [f"awslogs.data: not base64-encoded gzip JSON ({type(error).__name__})"],
        ) from None


# --------------------------------------------------------------------- the whole flow


@dataclass(frozen=True)
class Delivery:
    """How alerts leave: routing, secret lookup, and the webhook post."""

    default_secret_arn: str
    routes: tuple[Route, ...]
    webhook_url_for: Callable[[str], str]
    post: Callable[[str, dict[str, Any]], None]


def notify_slack(
    event: Any,
    *,
    region: str,
    now: float,
    gate: FloodGate,
    once: RunOnce,
    redactor: Redactor,
    delivery: Delivery,
    alarm_states: AlarmStates | None = None,
    on_decided: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Post each alert of ``event`` to Slack unless flood control holds it back.

    Returns one outcome per alert (kind, source, fingerprint, posted, suppressed count),
    never log text; an outcome an earlier delivery of the event stored, and this one
    replayed without posting or holding anything back, says ``replayed``. Raises
    SlackDeliveryError when Slack refused a post after retries.
    ``alarm_states`` defaults to the FloodGate's table and client (AlertStateTable).
    ``on_decided`` is called with each outcome this delivery decided (posted or held back)
    as soon as its record is saved, before a later alert may fail the delivery: the
    redelivery then replays it, and must not be the first to count it.
    """
    alerts = alerts_from_event(event, region)
    states = alarm_states or AlarmStates(gate.table, gate.dynamodb)
    outcomes = []
    for alert in alerts:
        secret_arn, mention = route_for(alert, delivery.routes, delivery.default_secret_arn)

        def post_once(
            alert: Alert = alert, secret_arn: str = secret_arn, mention: str = mention
        ) -> dict[str, Any]:
            if alert.alarm is not None:
                # every change counts, held back or not: the ALARM's start is the alarm's
                began = states.note(alert.alarm, alert.identity, now)
                alert = alarm_lasted(alert, began) if began else alert
            claim = gate.claim(alert, now)
            if not claim.granted:
                return {"posted": False, "suppressedNow": True, "suppressedBefore": 0}
            payload = format_alert(
                alert,
                redactor,
                suppressed=claim.suppressed,
                window_seconds=gate.window_seconds,
                mention=mention,
            )
            try:
                delivery.post(delivery.webhook_url_for(secret_arn), payload)
            except Exception:
                gate.release(claim)
                raise
            if alert.alarm is not None and alert.alarm.new_state != "ALARM":
                # Slack now says the alarm left ALARM: its next ALARM must be seen, even
                # within the window (a flapping alarm errs towards showing ALARM)
                gate.reopen(replace(alert, signature="ALARM"))
            return {"posted": True, "suppressedNow": False, "suppressedBefore": claim.suppressed}

        done = run_once_noting(once, f"{alert.identity}#{alert.fingerprint}", post_once)
        outcome = {
            "kind": alert.kind,
            "severity": alert.severity,
            "source": alert.source,
            "fingerprint": alert.fingerprint,
            "webhookSecretArn": secret_arn,
            **done.result,
            **({} if done.ran_now else {"replayed": True}),
        }
        outcomes.append(outcome)
        if done.ran_now and on_decided is not None:
            on_decided(outcome)
    return {"alerts": outcomes}
