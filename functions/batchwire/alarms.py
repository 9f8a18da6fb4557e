"""CloudWatch alarm notifications: what changed, and how long an ALARM lasted.

An alarm with an SNS action publishes each state change as a JSON message (``AlarmName``,
``NewStateValue``, ``AlarmArn``, ``Trigger``...). ``alarm_alert`` turns one into an Alert,
a pure function like the other readers of batchwire.alerts. ``AlarmStates`` remembers in
AlertStateTable when each alarm went into ALARM, so that the post ending it can say how
long it lasted: with ``dynamodb:UpdateItem`` only, the one action the notifier has there.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from batchwire.alerts import Alert

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

#: Alert.kind of every alarm notification.
KIND = "cloudwatch-alarm"

#: Severity of each state an alarm can enter; an OK is also marked as resolving its old state.
SEVERITY_OF_STATE = {"ALARM": "error", "INSUFFICIENT_DATA": "warning", "OK": "info"}

#: How long an alarm's item stays in AlertStateTable after its last state change.
KEEP_SECONDS = 14 * 86400

_ALARM_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):cloudwatch:(?P<region>[a-z0-9-]+):(?P<account>\d{12})"
    r":alarm:(?P<name>.+)$",
    re.DOTALL,
)

_COMPARISONS = {
    "GreaterThanOrEqualToThreshold": ">=",
    "GreaterThanThreshold": ">",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}
# anomaly detection alarms compare with a band (ThresholdMetricId), not a number
_BAND_COMPARISONS = {
    "LessThanLowerOrGreaterThanUpperThreshold": "outside the band",
    "LessThanLowerThreshold": "below the band",
    "GreaterThanUpperThreshold": "above the band",
}
# notifications spell statistics in capitals (``SAMPLE_COUNT``); people know the API's names
_STATISTICS = {
    "SUM": "Sum",
    "AVERAGE": "Average",
    "MAXIMUM": "Maximum",
    "MINIMUM": "Minimum",
    "SAMPLE_COUNT": "SampleCount",
}

# the console of each partition; the commercial one has a host per region
_CONSOLE_HOSTS = {"aws-cn": "console.amazonaws.cn", "aws-us-gov": "console.amazonaws-us-gov.com"}


@dataclass(frozen=True)
class AlarmChange:
    """One state change of one alarm: what AlarmStates needs to tell how long ALARM lasted."""

    arn: str
    name: str
    new_state: str
    old_state: str
    changed_at: datetime | None


def alarm_alert(body: Mapping[str, Any], identity: str) -> Alert | None:
    """The alert for an SNS message body that is a CloudWatch alarm notification, else None.

    A notification names the alarm (``AlarmName``), its new state (ALARM, OK or
    INSUFFICIENT_DATA) and its ARN; a body missing any of these is some other message.
    ``identity`` is the SNS message's, so a redelivery is recognised as such.
    """
    name, state, arn = (body.get(key) for key in ("AlarmName", "NewStateValue", "AlarmArn"))
    if not (isinstance(name, str) and name and isinstance(arn, str)):
        return None
    located = _ALARM_ARN.match(arn)
    if not isinstance(state, str) or state not in SEVERITY_OF_STATE or located is None:
        return None
    old_state = str(body.get("OldStateValue") or "")
    changed_at = _parse_time(body.get("StateChangeTime"))
    trigger = body.get("Trigger")
    trigger = trigger if isinstance(trigger, Mapping) else {}
    region = located["region"]
    facts = (
        ("State change", f"{old_state or '?'} → {state}"),
        ("Changed at", _utc(changed_at) if changed_at else ""),
        *_metric_facts(trigger),
        ("Threshold", threshold_in_words(trigger)),
    )
    description = str(body.get("AlarmDescription") or "")
    reason = str(body.get("NewStateReason") or "")
    return Alert(
        kind=KIND,
        severity=SEVERITY_OF_STATE[str(state)],
        title=f"{state}: {name}",
        # the routing glob and the flood key: each alarm on its own, whatever its name holds
        source=f"alarm:{name}",
        identity=identity,
        # the fingerprint keeps the new state: an OK is never held back by its ALARM
        signature=str(state),
        facts=tuple((label, value) for label, value in facts if value),
        lines=tuple(line for line in (description, reason) if line),
        match_count=1,
        links=(("CloudWatch alarm", alarm_console_link(arn)),),
        region=region,
        account=str(body.get("AWSAccountId") or located["account"]),
        resolves=SEVERITY_OF_STATE.get(old_state, "") if state == "OK" else "",
        alarm=AlarmChange(arn, name, str(state), old_state, changed_at),
    )


#: A new or changed alarm starts in INSUFFICIENT_DATA and settles to OK within a few
#: periods: an OK from INSUFFICIENT_DATA this soon after its configuration says nothing.
SETTLING_SECONDS = 3600


def is_settling(body: Mapping[str, Any]) -> bool:
    """Whether ``body`` is a new or changed alarm's first OK (after every deploy), not news."""
    if body.get("NewStateValue") != "OK" or body.get("OldStateValue") != "INSUFFICIENT_DATA":
        return False
    configured = _parse_time(body.get("AlarmConfigurationUpdatedTimestamp"))
    changed = _parse_time(body.get("StateChangeTime"))
    if configured is None or changed is None:
        return False
    return 0 <= (changed - configured).total_seconds() <= SETTLING_SECONDS


def alarm_console_link(arn: str) -> str:
    """The alarm's page in the CloudWatch console of its partition and region (from its ARN)."""
    located = _ALARM_ARN.match(arn)
    if located is None:
        raise ValueError(f"{arn!r} is not the ARN of a CloudWatch alarm")
    region, partition = located["region"], located["partition"]
    host = _CONSOLE_HOSTS.get(partition, f"{region}.console.aws.amazon.com")
    name = quote(located["name"], safe="")
    return f"https://{host}/cloudwatch/home?region={region}#alarmsV2:alarm/{name}"


def threshold_in_words(trigger: Mapping[str, Any]) -> str:
    """What makes the alarm fire, e.g. ``Maximum > 0 for 1 of 1 periods of 300 s``."""
    operator = str(trigger.get("ComparisonOperator") or "")
    if not operator:
        return ""
    watched = _statistic(trigger) or _returned_id(trigger) or "value"
    if operator in _BAND_COMPARISONS:
        band = str(trigger.get("ThresholdMetricId") or "")
        condition = f"{watched} {_BAND_COMPARISONS[operator]} {band}".rstrip()
    else:
        condition = f"{watched} {_COMPARISONS.get(operator, operator)} {_number(trigger)}"
    evaluated = trigger.get("EvaluationPeriods")
    if not isinstance(evaluated, int):
        return condition
    needed = trigger.get("DatapointsToAlarm")
    needed = needed if isinstance(needed, int) else evaluated
    period = trigger.get("Period") or _first_metric_stat(trigger).get("Period")
    span = f" of {period} s" if isinstance(period, int) else ""
    return f"{condition} for {needed} of {evaluated} periods{span}"


def alarm_lasted(alert: Alert, began: datetime) -> Alert:
    """``alert`` (which ends an ALARM) saying how long the ALARM lasted, in its summary."""
    ended = alert.alarm.changed_at if alert.alarm else None
    if ended is None or began > ended:
        return alert
    same_day = began.date() == ended.date()
    since = began.strftime("%H:%M UTC" if same_day else "%Y-%m-%d %H:%M UTC")
    lasted = f"In ALARM for {duration_in_words((ended - began).total_seconds())} (since {since})"
    return replace(alert, summary=lasted)


def duration_in_words(seconds: float) -> str:
    """``45 s``, ``12 min``, ``2 h 5 min``, ``3 d 4 h``: as precise as a reader needs."""
    if seconds < 60:
        return f"{max(int(seconds), 0)} s"
    minutes = round(seconds / 60)
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


# --------------------------------------------------------------------- when ALARM began


class AlarmStates:
    """When each alarm went into ALARM, one item per alarm in AlertStateTable.

    The item keeps ``alarm_since`` (the last ALARM's change time) and ``ended_at`` (the last
    change out of ALARM, by ``ended_by``); the alarm is in ALARM while ``alarm_since`` is the
    later. Nothing is removed: the retry of a post that failed reads what the first attempt
    read, and a notification delivered late (SNS keeps no order) cannot reopen an ALARM.
    Items expire (TTL ``expiration``) KEEP_SECONDS after the alarm's last change.
    """

    def __init__(
        self, table: str, dynamodb: DynamoDBClient, keep_seconds: int = KEEP_SECONDS
    ) -> None:
        self.table = table
        self.dynamodb = dynamodb
        self.keep_seconds = keep_seconds

    @staticmethod
    def key_of(change: AlarmChange) -> str:
        return f"alarm#{hashlib.sha256(change.arn.encode()).hexdigest()[:32]}"

    def note(self, change: AlarmChange, identity: str, now: float) -> datetime | None:
        """Remember ``change``; when it ends an ALARM, return when that ALARM began.

        None when it ends nothing known: the ALARM came before this was deployed, its item
        expired, a later change already ended it, or the alarm left ALARM unnoticed (an
        OK after INSUFFICIENT_DATA, a state batchwire's alarms do not notify).
        """
        if change.changed_at is None:
            return None
        at = f"{change.changed_at.timestamp():.3f}"
        values: dict[str, AttributeValueTypeDef] = {
            ":at": {"N": at},
            ":name": {"S": change.name[:512]},
            ":expires": {"N": str(int(now) + self.keep_seconds)},
        }
        if change.new_state == "ALARM":
            # an ALARM delivered late, older than the one remembered, changes nothing
            self._update(
                change,
                "SET alarm_since = :at, alarm_name = :name, expiration = :expires",
                "attribute_not_exists(alarm_since) OR alarm_since <= :at",
                values,
            )
            return None
        values[":me"] = {"S": identity}
        before = self._update(
            change,
            "SET ended_at = :at, ended_by = :me, alarm_name = :name, expiration = :expires",
            "attribute_not_exists(ended_at) OR ended_at <= :at",
            values,
        )
        if before is None or change.old_state != "ALARM" or "alarm_since" not in before:
            return None
        began = float(before["alarm_since"].get("N", "0"))
        # this change's own earlier attempt does not count as an earlier end
        mine = before.get("ended_by", {}).get("S") == identity
        ended = None if mine or "ended_at" not in before else float(before["ended_at"]["N"])
        if began > change.changed_at.timestamp() or (ended is not None and ended >= began):
            return None
        return datetime.fromtimestamp(began, UTC)

    def _update(
        self,
        change: AlarmChange,
        expression: str,
        condition: str,
        values: dict[str, AttributeValueTypeDef],
    ) -> Mapping[str, Any] | None:
        """The item before the update, or None when the condition kept it unchanged."""
        try:
            answer = self.dynamodb.update_item(
                TableName=self.table,
                Key={"id": {"S": self.key_of(change)}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return None
        return answer.get("Attributes") or {}


# --------------------------------------------------------------------- reading the trigger


def _metric_facts(trigger: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The watched metric: namespace, name and dimensions, or a metric math expression."""
    if trigger.get("MetricName"):
        metric = _metric_in_words(trigger)
        return (("Metric", metric),)
    queries = [query for query in _list(trigger.get("Metrics")) if isinstance(query, Mapping)]
    returned = next((query for query in queries if query.get("ReturnData")), None)
    if returned is None:
        return ()
    if returned.get("Expression"):
        expression = f"{returned.get('Id') or '?'} = {returned['Expression']}"
    else:
        expression = _query_in_words(returned)
    if returned.get("Label"):
        expression += f"\n{returned['Label']}"
    inputs = [_query_in_words(query) for query in queries if query is not returned]
    return (("Expression", expression), ("Inputs", "\n".join(i for i in inputs if i)))


def _query_in_words(query: Mapping[str, Any]) -> str:
    stat = query.get("MetricStat") if isinstance(query.get("MetricStat"), Mapping) else None
    if stat is None:
        expression = str(query.get("Expression") or "")
        return f"{query.get('Id')}: {expression}" if expression else ""
    metric = stat.get("Metric") if isinstance(stat.get("Metric"), Mapping) else {}
    statistic = f" ({stat['Stat']})" if stat.get("Stat") else ""
    return f"{query.get('Id')}: {_metric_in_words(metric)}{statistic}"


def _metric_in_words(metric: Mapping[str, Any]) -> str:
    dimensions = [
        f"{dimension.get('name') or dimension.get('Name')}="
        f"{dimension.get('value') or dimension.get('Value')}"
        for dimension in _list(metric.get("Dimensions"))
        if isinstance(dimension, Mapping)
    ]
    named = f"{metric.get('Namespace') or ''} {metric.get('MetricName') or ''}".strip()
    return f"{named} ({', '.join(dimensions)})" if dimensions else named


def _statistic(trigger: Mapping[str, Any]) -> str:
    statistic = str(trigger.get("Statistic") or trigger.get("ExtendedStatistic") or "")
    return _STATISTICS.get(statistic.upper(), statistic)


def _returned_id(trigger: Mapping[str, Any]) -> str:
    queries = [query for query in _list(trigger.get("Metrics")) if isinstance(query, Mapping)]
    returned = next((query for query in queries if query.get("ReturnData")), {})
    return str(returned.get("Id") or "")


def _first_metric_stat(trigger: Mapping[str, Any]) -> Mapping[str, Any]:
    for query in _list(trigger.get("Metrics")):
        if isinstance(query, Mapping) and isinstance(query.get("MetricStat"), Mapping):
            stat: Mapping[str, Any] = query["MetricStat"]
            return stat
    return {}


def _number(trigger: Mapping[str, Any]) -> str:
    threshold = trigger.get("Threshold")
    if isinstance(threshold, (int, float)) and not isinstance(threshold, bool):
        return f"{threshold:g}"
    return str(threshold) if threshold is not None else "?"


def _list(value: Any) -> list[Any]:
    """``value`` when the notification has a list there, else nothing to read."""
    return value if isinstance(value, list) else []


def _parse_time(value: Any) -> datetime | None:
    """``2026-11-30T07:15:00.123+0000`` (the notification's format) as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
