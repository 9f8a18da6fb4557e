"""What the notifier tells people: one Alert per log stream or failure event.

Each trigger has its own reader (CloudWatch Logs subscription, ECS Task State Change,
Batch Job State Change, the retrier's SNS notification, a CloudWatch alarm's in
batchwire.alarms, anything else on SNS), each a pure function from event to Alert. Alerts
keep the raw text; redaction and Slack escaping happen once, in the formatter
(batchwire.slack_message), for every field alike.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from batchwire.errors import RequestError
from batchwire.slack import MAX_FIELDS

if TYPE_CHECKING:
    from batchwire.alarms import AlarmChange

SEVERITIES = ("info", "warning", "error", "critical")

#: How many log lines an alert keeps (more are only counted): enough to fill a section.
MAX_KEPT_LINES = 200

_CRITICAL_WORDS = re.compile(r"\b(?:FATAL|Fatal|fatal|CRITICAL|PANIC|panic)\b")
_EXCEPTION_LINE = re.compile(
    r"^\s*[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Failure|Fault)\b(?::|$)"
)
_TRACEBACK_HEADER = "Traceback (most recent call last):"

# Fingerprint normalisation, applied in this order: the parts that differ between two
# occurrences of the same error (when, which task, which row) become placeholders.
_VOLATILE = (
    (
        re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"),
        "<ts>",
    ),
    (re.compile(r"\b\d{1,2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2}(?: [+-]\d{4})?"), "<ts>"),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<ts>"),
    (re.compile(r"arn:aws[\w-]*:[\w-]+:[\w-]*:\d*:[^\s\"',]+"), "<arn>"),
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<id>",
    ),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"\b(?:i|vol|subnet|sg|eni|vpc|ami)-[0-9a-f]{8,17}\b"), "<id>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
)


@dataclass(frozen=True)
class Alert:
    """One thing to tell people about, before redaction and escaping.

    ``source`` is what routing globs and flood control key on: the log group for logs,
    ``ecs:<cluster>``, ``batch:<job queue>``, ``alarm:<alarm name>`` or ``sns:<topic>``
    for events. ``resolves`` is set on an alert saying a problem is over (an alarm back to
    OK): the severity of that problem, which routing uses so the all-clear goes where the
    problem went.
    """

    kind: str
    severity: str
    title: str
    source: str
    identity: str
    signature: str
    summary: str = ""
    facts: tuple[tuple[str, str], ...] = ()
    lines: tuple[str, ...] = ()
    more_lines: int = 0
    match_count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    links: tuple[tuple[str, str], ...] = ()
    region: str = ""
    account: str = ""
    resolves: str = ""
    #: the state change of a CloudWatch alarm notification, for AlarmStates
    alarm: AlarmChange | None = None

    @property
    def fingerprint(self) -> str:
        """Stable across occurrences: the signature with numbers, ids, hex, times removed."""
        return fingerprint_of(self.signature)


def fingerprint_of(text: str) -> str:
    """A short hash of ``text`` normalised so the same error from 50 tasks is one value."""
    normalised = normalise(text)
    return hashlib.sha256(normalised.encode()).hexdigest()[:24]


def normalise(text: str) -> str:
    """``text`` with timestamps, ARNs, UUIDs, hex, ids and numbers replaced by placeholders."""
    for pattern, placeholder in _VOLATILE:
        text = pattern.sub(placeholder, text)
    return text.strip()


def severity_of(lines: tuple[str, ...] | list[str]) -> str:
    """``critical`` when a line says fatal/critical/panic, else ``error``."""
    return "critical" if any(_CRITICAL_WORDS.search(line) for line in lines) else "error"


def signature_line(lines: tuple[str, ...] | list[str]) -> str:
    """The line that names the error: an exception line if any, else the first real line.

    A Python traceback's first line is the same for every error, so it never names one.
    """
    for line in lines:
        if _EXCEPTION_LINE.match(line):
            return line.strip()
    for line in lines:
        if line.strip() and line.strip() != _TRACEBACK_HEADER:
            return line.strip()
    return lines[0].strip() if lines else ""


def utc(milliseconds: int) -> datetime:
    return datetime.fromtimestamp(milliseconds / 1000, UTC)


def cloudwatch_stream_link(region: str, group: str, stream: str) -> str:
    """The console deep link: group and stream URL-encoded twice, then ``%`` -> ``$``."""

    def twice(value: str) -> str:
        return quote(quote(value, safe=""), safe="").replace("%", "$")

    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{twice(group)}/log-events/{twice(stream)}"
    )


def batch_job_link(region: str, job_id: str) -> str:
    """The Batch console's page of one job (alerts link it; ``batchwire runs`` shows it)."""
    return (
        f"https://{region}.console.aws.amazon.com/batch/home?region={region}"
        f"#jobs/detail/{quote(job_id, safe='')}"
    )


def ecs_task_link(region: str, cluster: str, task_id: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/ecs/v2/clusters/{quote(cluster, safe='')}"
        f"/tasks/{quote(task_id, safe='')}/configuration?region={region}"
    )


def _last_part(arn: str) -> str:
    return arn.rsplit("/", 1)[-1] if arn else ""


def _identity(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


# --------------------------------------------------------------------- CloudWatch Logs


def alert_from_logs(decoded: Mapping[str, Any], region: str) -> Alert | None:
    """The alert for one subscription payload (one log stream); None for a CONTROL_MESSAGE."""
    if decoded.get("messageType") != "DATA_MESSAGE":
        return None
    group = str(decoded.get("logGroup") or "")
    stream = str(decoded.get("logStream") or "")
    events = list(decoded.get("logEvents") or [])
    if not group or not stream or not events:
        raise RequestError(
            "CloudWatch Logs payload is incomplete",
            [
                f"awslogs.data.{name}: missing or empty"
                for name, value in (
                    ("logGroup", group),
                    ("logStream", stream),
                    ("logEvents", events),
                )
                if not value
            ],
        )
    lines: list[str] = []
    total_lines = 0
    for event in events:
        message_lines = str(event.get("message", "")).rstrip("\n").splitlines() or [""]
        total_lines += len(message_lines)
        room = MAX_KEPT_LINES - len(lines)
        if room > 0:
            lines.extend(line.rstrip() for line in message_lines[:room])
    timestamps = [int(event.get("timestamp", 0)) for event in events]
    facts = _stream_facts(stream)
    account = str(decoded.get("owner") or "")
    return Alert(
        kind="log-errors",
        severity=severity_of(lines),
        title=_stream_title(dict(facts), group),
        source=group,
        identity=_identity(
            "logs",
            group,
            stream,
            str(events[0].get("id")),
            str(events[-1].get("id")),
            str(len(events)),
        ),
        signature=signature_line(lines),
        facts=(*facts, ("Log group", group), ("Log stream", stream)),
        lines=tuple(lines),
        more_lines=total_lines - len(lines),
        match_count=len(events),
        first_seen=utc(min(timestamps)),
        last_seen=utc(max(timestamps)),
        links=(("CloudWatch log stream", cloudwatch_stream_link(region, group, stream)),),
        region=region,
        account=account,
    )


def _stream_title(facts: Mapping[str, str], group: str) -> str:
    if "Job definition" in facts:
        return f"Errors in Batch job {facts['Job definition']}"
    if "Container" in facts:
        return f"Errors in ECS task {facts['Container']}"
    return f"Errors in {group}"


def _stream_facts(stream: str) -> tuple[tuple[str, str], ...]:
    """What ran, read from the stream name.

    Batch streams are ``<job definition>/default/<task id>``; ECS awslogs streams are
    ``<prefix>/<container>/<task id>``. Neither names the cluster or the Batch job id, so a
    log alert links to the stream only.
    """
    parts = stream.split("/")
    if len(parts) == 3 and parts[1] == "default":
        return (("Job definition", parts[0]), ("Task id", parts[2]))
    if len(parts) == 3:
        return (("Container", parts[1]), ("Task id", parts[2]), ("Stream prefix", parts[0]))
    return ()


# --------------------------------------------------------------------- EventBridge


#: Stop codes of tasks stopped on purpose: never an alert.
INTENDED_STOPS = frozenset({"UserInitiated", "ServiceSchedulerInitiated"})


def alert_from_ecs_task(event: Mapping[str, Any]) -> Alert | None:
    """The alert for an ECS Task State Change that stopped with a failure, else None.

    A failure: the task failed to start, or an essential container has no exit code or a
    non-zero one. Stops someone meant are not failures: a person's (UserInitiated), and a
    service's deployment or scale-in (ServiceSchedulerInitiated, whose containers exit 143
    on SIGTERM).
    """
    detail = event.get("detail") or {}
    if detail.get("lastStatus") != "STOPPED" or detail.get("stopCode") in INTENDED_STOPS:
        return None
    containers = list(detail.get("containers") or [])
    failed = [c for c in containers if c.get("exitCode") != 0]
    if detail.get("stopCode") != "TaskFailedToStart" and not failed:
        return None
    region = str(event.get("region") or "")
    cluster = _last_part(str(detail.get("clusterArn") or ""))
    task_id = _last_part(str(detail.get("taskArn") or ""))
    family = _last_part(str(detail.get("taskDefinitionArn") or ""))
    reason = str(detail.get("stoppedReason") or "")
    container_lines = [
        f"{c.get('name', '?')}: exit code {c.get('exitCode', 'none')}"
        + (f" - {c['reason']}" if c.get("reason") else "")
        for c in containers
    ]
    signature = next((str(c["reason"]) for c in failed if c.get("reason")), reason)
    stopped_at = _parse_time(detail.get("stoppedAt")) or _parse_time(event.get("time"))
    return Alert(
        kind="ecs-task-stopped",
        severity="error",
        title=f"ECS task {family or task_id} stopped: {detail.get('stopCode') or 'failed'}",
        source=f"ecs:{cluster}",
        identity=_identity("event", str(event.get("id") or "")),
        signature=f"{family.split(':')[0]} {detail.get('stopCode')} {signature}",
        summary=reason,
        facts=(
            ("Task definition", family),
            ("Task id", task_id),
            ("Cluster", cluster),
            ("Group", str(detail.get("group") or "")),
            ("Stop code", str(detail.get("stopCode") or "(none)")),
            (
                "Launch type",
                str(detail.get("launchType") or detail.get("capacityProviderName") or ""),
            ),
        ),
        lines=tuple(container_lines),
        match_count=len(failed),
        first_seen=_parse_time(detail.get("startedAt") or detail.get("createdAt")),
        last_seen=stopped_at,
        links=(("ECS task", ecs_task_link(region, cluster, task_id)),)
        if cluster and task_id
        else (),
        region=region,
        account=str(event.get("account") or ""),
    )


def alert_from_batch_job(event: Mapping[str, Any]) -> Alert | None:
    """The alert for a Batch Job State Change to FAILED, else None."""
    detail = event.get("detail") or {}
    if detail.get("status") != "FAILED":
        return None
    region = str(event.get("region") or "")
    attempts = list(detail.get("attempts") or [])
    last = (attempts[-1].get("container") or {}) if attempts else {}
    container = detail.get("container") or {}
    stream = str(last.get("logStreamName") or container.get("logStreamName") or "")
    log_group = str(
        ((container.get("logConfiguration") or {}).get("options") or {}).get("awslogs-group")
        or "/aws/batch/job"
    )
    queue = _last_part(str(detail.get("jobQueue") or ""))
    job_id = str(detail.get("jobId") or "")
    job_name = str(detail.get("jobName") or job_id)
    reason = str(detail.get("statusReason") or "")
    exit_code = last.get("exitCode", container.get("exitCode"))
    container_reason = str(last.get("reason") or container.get("reason") or "")
    index = (detail.get("arrayProperties") or {}).get("index")
    definition = _last_part(str(detail.get("jobDefinition") or ""))
    links = [("Batch job", batch_job_link(region, job_id))] if job_id else []
    if stream:
        links.append(("CloudWatch log stream", cloudwatch_stream_link(region, log_group, stream)))
    # the status reason is the summary already; the container's reason adds the detail
    lines = [line for line in (container_reason,) if line]
    return Alert(
        kind="batch-job-failed",
        severity="error",
        title=f"Batch job {job_name} failed",
        source=f"batch:{queue}",
        identity=_identity("event", str(event.get("id") or "")),
        signature=f"{definition.split(':')[0]} {reason} {container_reason}",
        summary=reason,
        facts=tuple(
            (label, value)
            for label, value in (
                ("Job", f"{job_name} ({job_id})"),
                ("Job queue", queue),
                ("Job definition", definition),
                ("Exit code", "none" if exit_code is None else str(exit_code)),
                ("Attempts", str(len(attempts))),
                ("Array index", "" if index is None else str(index)),
                ("Log stream", stream),
            )
            if value
        ),
        lines=tuple(lines),
        match_count=1,
        first_seen=_epoch_ms(detail.get("startedAt") or detail.get("createdAt")),
        last_seen=_epoch_ms(detail.get("stoppedAt")) or _parse_time(event.get("time")),
        links=tuple(links),
        region=region,
        account=str(event.get("account") or ""),
    )


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _epoch_ms(value: Any) -> datetime | None:
    return utc(value) if isinstance(value, int) and value > 0 else None


# --------------------------------------------------------------------- SNS

RETRIER_KINDS = {
    "task-retries-exhausted": "Task retries exhausted",
    "task-rejected": "Task rejected",
}


def alert_from_sns(record: Mapping[str, Any]) -> Alert | None:
    """The alert for one SNS record: retrier notices, CloudWatch alarms, anything else plainly.

    None for a new or changed alarm settling into OK, which every deploy sends.
    """
    # batchwire.alarms builds on Alert: imported here, not above, so neither import is circular
    from batchwire.alarms import alarm_alert, is_settling

    sns = record.get("Sns") or {}
    message = str(sns.get("Message") or "")
    topic = _last_part(str(sns.get("TopicArn") or "").replace(":", "/"))
    identity = _identity("sns", str(sns.get("MessageId") or ""))
    attribute = ((sns.get("MessageAttributes") or {}).get("kind") or {}).get("Value")
    try:
        body: Any = json.loads(message)
    except ValueError:
        body = None
    kind = body.get("kind") if isinstance(body, dict) else None
    kind = kind if isinstance(kind, str) else None
    if isinstance(body, dict) and kind in RETRIER_KINDS and attribute in (None, kind):
        return _retrier_alert(body, topic, identity, sns)
    if isinstance(body, dict) and kind in WATCH_KINDS and attribute in (None, kind):
        return _watch_alert(body, identity, sns)
    if isinstance(body, dict) and is_settling(body):
        return None
    alarm = alarm_alert(body, identity) if isinstance(body, dict) else None
    if alarm is not None:
        return alarm
    shown = json.dumps(body, indent=2) if isinstance(body, (dict, list)) else message
    lines = shown.splitlines() or ["(empty message)"]
    return Alert(
        kind="generic",
        severity="warning",
        title=str(sns.get("Subject") or f"Notification on {topic or 'SNS'}"),
        source=f"sns:{topic}",
        identity=identity,
        signature=f"{sns.get('Subject') or ''} {signature_line(lines)}",
        facts=(("Topic", topic),),
        lines=tuple(lines[:MAX_KEPT_LINES]),
        more_lines=max(0, len(lines) - MAX_KEPT_LINES),
        match_count=1,
        last_seen=_parse_time(sns.get("Timestamp")),
    )


def _retrier_alert(
    body: Mapping[str, Any], topic: str, identity: str, sns: Mapping[str, Any]
) -> Alert:
    kind = str(body["kind"])
    region = str(body.get("region") or "")
    cluster = _last_part(str(body.get("clusterArn") or ""))
    task_id = _last_part(str(body.get("taskArn") or ""))
    family = _last_part(str(body.get("taskDefinitionArn") or ""))
    exit_code = body.get("exitCode")
    attempt, max_attempts = body.get("attempt"), body.get("maxAttempts")
    account = str(body.get("account") or "")
    facts = (
        ("Task definition", family),
        ("Task id", task_id),
        # only a task started for a queued message (the dispatcher's) names one
        ("Message id", str(body.get("messageId") or "")),
        ("Cluster", cluster),
        ("Group", str(body.get("group") or "")),
        ("Container", str(body.get("container") or "")),
        ("Exit code", "none" if exit_code is None else str(exit_code)),
        ("Stop code", str(body.get("stopCode") or "")),
        ("Attempt", f"{attempt} of {max_attempts}" if attempt is not None else ""),
    )
    lines = [
        line
        for line in (
            f"stopped: {body['stoppedReason']}" if body.get("stoppedReason") else "",
            f"retrier: {body['reason']}" if body.get("reason") else "",
        )
        if line
    ]
    return Alert(
        kind=kind,
        severity="error" if kind == "task-retries-exhausted" else "warning",
        title=f"{RETRIER_KINDS[kind]}: {family or task_id}",
        source=f"ecs:{cluster}" if cluster else f"sns:{topic}",
        identity=identity,
        signature=f"{kind} {family.split(':')[0]} {body.get('stopCode')} {exit_code} "
        f"{body.get('reason') or ''}",
        summary=str(body.get("summary") or ""),
        facts=_within_fields(
            [(label, value) for label, value in facts if value],
            # the formatter adds Account and Region to the same section
            MAX_FIELDS - bool(account) - bool(region),
            family.split(":")[0],
        ),
        lines=tuple(lines),
        match_count=1,
        last_seen=_parse_time(sns.get("Timestamp")),
        links=(("ECS task", ecs_task_link(region, cluster, task_id)),)
        if region and cluster and task_id
        else (),
        region=region,
        account=account,
    )


#: Notices of the watch (batchwire.watch): a schedule's expectation not met.
WATCH_KINDS = {
    "missed-firing": "Schedule did not fire",
    "run-overdue": "Run not done by its deadline",
    "schedule-disabled": "Watched schedule is disabled",
}


def _watch_alert(body: Mapping[str, Any], identity: str, sns: Mapping[str, Any]) -> Alert:
    kind = str(body["kind"])
    schedule = str(body.get("schedule") or "")
    region, account = str(body.get("region") or ""), str(body.get("account") or "")
    group = str(body.get("group") or "")
    expression = str(body.get("expression") or "")
    facts = (
        ("Schedule", schedule),
        ("Scheduled for", str(body.get("scheduledLocal") or body.get("scheduledTime") or "")),
        ("Deadline", str(body.get("deadline") or "")),
        ("Expression", f"{expression} ({body.get('timezone') or 'UTC'})" if expression else ""),
        ("Chain id", str(body.get("chainId") or "")),
    )
    lines = tuple(str(line) for line in body.get("lines") or [])
    return Alert(
        kind=kind,
        severity="warning" if kind == "schedule-disabled" else "error",
        title=f"{WATCH_KINDS[kind]}: {schedule}",
        source=f"schedule:{schedule}",
        identity=identity,
        # the scheduled time is part of what is reported: each missed firing is its own
        signature=f"{kind} {schedule} {body.get('scheduledTime') or ''}",
        summary=lines[0] if lines else "",
        facts=tuple((label, value) for label, value in facts if value),
        lines=lines[1:],
        match_count=1,
        last_seen=_parse_time(sns.get("Timestamp")),
        links=(("Schedule", scheduler_link(region, group, schedule)),)
        if region and group and schedule
        else (),
        region=region,
        account=account,
    )


def scheduler_link(region: str, group: str, schedule: str) -> str:
    """The EventBridge Scheduler console page of one schedule."""
    return (
        f"https://{region}.console.aws.amazon.com/scheduler/home?region={region}"
        f"#schedules/{quote(group, safe='')}/{quote(schedule, safe='')}"
    )


def _within_fields(
    facts: list[tuple[str, str]], room: int, family: str
) -> tuple[tuple[str, str], ...]:
    """The retrier's facts in at most ``room`` Slack fields, none of them lost.

    A task started for a queued message has one fact more (Message id) than Slack's ten
    fields hold with Account and Region. What goes first says least: the Group when it is
    ECS's default ``family:<family>`` (the task definition says it), then the Stop code,
    which joins the Exit code. A scheduled task's facts fit and are left as they are.
    """
    if len(facts) > room:
        facts = [fact for fact in facts if fact != ("Group", f"family:{family}")]
    codes = dict(facts)
    if len(facts) > room and "Stop code" in codes and "Exit code" in codes:
        joined = f"{codes['Exit code']} ({codes['Stop code']})"
        facts = [
            ("Exit code", joined) if label == "Exit code" else (label, value)
            for label, value in facts
            if label != "Stop code"
        ]
    return tuple(facts)
