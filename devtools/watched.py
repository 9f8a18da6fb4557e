"""A schedule that declares an expectation, made in a deployed stack's Scheduler group.

What a user writes in a schedule's input to have the watch check it (docs/watch.md): the
rehearsals and tests make one through the Scheduler API of the local engine.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from batchwire.schedule_expressions import parse_schedule


def create_watched_schedule(
    scheduler: Any,
    *,
    group: str,
    name: str,
    target_arn: str,
    role_arn: str,
    jobs: list[dict[str, Any]],
    expect: dict[str, Any],
    expression: str = "cron(0 2 * * ? *)",
    timezone: str = "UTC",
) -> dict[str, Any]:
    """The schedule as GetSchedule returns it, its input the submitter's with ``expect``."""
    document = {
        "schedule": "<aws.scheduler.schedule-arn>",
        "scheduledTime": "<aws.scheduler.scheduled-time>",
        "expect": expect,
        "jobs": jobs,
    }
    scheduler.create_schedule(
        Name=name,
        GroupName=group,
        ScheduleExpression=expression,
        ScheduleExpressionTimezone=timezone,
        FlexibleTimeWindow={"Mode": "OFF"},
        State="ENABLED",
        Target={"Arn": target_arn, "RoleArn": role_arn, "Input": json.dumps(document)},
    )
    schedule: dict[str, Any] = scheduler.get_schedule(Name=name, GroupName=group)
    return schedule


def next_firing(schedule: dict[str, Any], after: datetime | None = None) -> datetime:
    """The schedule's first firing after ``after`` (default: a day after its creation, so
    that the firing is one the watch expects), in UTC."""
    created = schedule.get("LastModificationDate") or schedule["CreationDate"]
    moment = after or created.astimezone(UTC) + timedelta(days=1)
    parsed = parse_schedule(
        schedule["ScheduleExpression"], schedule.get("ScheduleExpressionTimezone") or "UTC"
    )
    return parsed.next_firings(moment, 1)[0].astimezone(UTC)


def firing_event(schedule: dict[str, Any], scheduled: datetime) -> dict[str, Any]:
    """The submitter's event for one firing: the input with Scheduler's placeholders filled,
    as Scheduler delivers it."""
    text = schedule["Target"]["Input"]
    text = text.replace("<aws.scheduler.schedule-arn>", schedule["Arn"])
    text = text.replace(
        "<aws.scheduler.scheduled-time>", scheduled.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    event: dict[str, Any] = json.loads(text)
    return event


def watch_tick(at: datetime) -> dict[str, Any]:
    """The watch's own event, as its schedule delivers it for a run at ``at``."""
    return {"scheduledTime": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
