"""Every schedule of the stack: what fires, when next, and which jobs it submits.

Two kinds: EventBridge Scheduler schedules in the stack's group (output
``ScheduleGroupName``: ``NightlySchedule``, the scaler's tick, the example's and yours),
and the stack's EventBridge rules that have a ``ScheduleExpression`` (the classic cron
shape, such as the example's ``ExampleCronRule``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from batchwire.schedule_expressions import ScheduleExpressionError, parse_schedule
from batchwire_cli.output import Report, silent
from batchwire_cli.stack import Stack, aws_errors

FIRINGS = 3


def _task_family(task_definition: str) -> str:
    """``arn:...:task-definition/nightly-report:3`` -> ``nightly-report``."""
    name = task_definition.rsplit("/", 1)[-1]
    return name.split(":", 1)[0]


def _job_of(request: dict[str, Any]) -> dict[str, str]:
    return {
        key: str(request[key])
        for key in ("jobName", "jobQueue", "jobDefinition")
        if request.get(key) is not None
    }


def target_work(target: dict[str, Any]) -> tuple[list[dict[str, str]], list[str]]:
    """The jobs a target's input submits, and each thing it starts in words."""
    ecs = target.get("EcsParameters")
    if isinstance(ecs, dict) and ecs.get("TaskDefinitionArn"):
        return [], [f"ECS task {_task_family(str(ecs['TaskDefinitionArn']))}"]
    try:
        payload = json.loads(target.get("Input") or "null")
    except ValueError:
        payload = None
    jobs: list[dict[str, str]] = []
    if isinstance(payload, dict):
        requests = payload.get("jobs")
        if isinstance(requests, list):
            jobs = [_job_of(r) for r in requests if isinstance(r, dict)]
        elif payload.get("jobName"):
            jobs = [_job_of(payload)]
    if jobs:
        words = [
            f"{job.get('jobName', '?')} ({job.get('jobQueue', '?')} / "
            f"{job.get('jobDefinition', '?')})"
            for job in jobs
        ]
        return jobs, words
    arn = str(target.get("Arn", ""))
    return [], [f"invokes {arn.rsplit(':', 1)[-1]}" if arn else "no target"]


def _firings(
    expression: str,
    timezone: str,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
) -> tuple[str, list[datetime], str | None]:
    """Meaning in words, next firings (before ``end``), and an error if unreadable."""
    try:
        schedule = parse_schedule(expression, timezone or "UTC", start)
        firings = schedule.next_firings(now, FIRINGS)
        words = schedule.in_words()
    except ScheduleExpressionError as error:
        return "", [], str(error)
    if end is not None:
        firings = [f for f in firings if f <= end]
    return words, firings, None


def _row(
    *,
    kind: str,
    name: str,
    logical_id: str | None,
    expression: str,
    timezone: str,
    state: str,
    targets: list[dict[str, Any]],
    start: datetime | None,
    end: datetime | None,
    now: datetime,
) -> dict[str, Any]:
    words, firings, problem = _firings(expression, timezone, start, end, now)
    jobs: list[dict[str, str]] = []
    submits: list[str] = []
    for target in targets:
        target_jobs, target_words = target_work(target)
        jobs += target_jobs
        submits += target_words
    return {
        "kind": kind,
        "name": name,
        "logical_id": logical_id,
        "expression": expression,
        "in_words": words,
        "expression_error": problem,
        "timezone": timezone,
        "next_firings": [f.isoformat() for f in firings],
        "state": state,
        "jobs": jobs,
        "submits": submits,
    }


def scheduler_group(stack: Stack) -> str | None:
    """The stack's EventBridge Scheduler group (output ScheduleGroupName)."""
    return stack.outputs.get("ScheduleGroupName") or stack.physical_id("ScheduleGroup")


def list_schedules(
    stack: Stack, now: datetime | None = None, report: Report = silent
) -> list[dict[str, Any]]:
    """Every schedule of the stack, Scheduler schedules first, each kind by name."""
    now = now or datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    by_physical = {r.physical_id: r.logical_id for r in stack.resources.values()}
    group = scheduler_group(stack)
    if group:
        scheduler = stack.target.client("scheduler")
        with aws_errors(stack.target, f"listing schedules of group {group}"):
            report(f"listing the schedules of group {group}")
            names = [
                summary["Name"]
                for page in scheduler.get_paginator("list_schedules").paginate(GroupName=group)
                for summary in page["Schedules"]
            ]
            for number, name in enumerate(sorted(names), start=1):
                report(f"reading schedule {number} of {len(names)}: {name}")
                schedule = scheduler.get_schedule(Name=name, GroupName=group)
                expression = schedule["ScheduleExpression"]
                # a rate counts from StartDate, else from the schedule's creation
                start = schedule.get("StartDate")
                if start is None and expression.startswith("rate("):
                    start = schedule.get("CreationDate")
                rows.append(
                    _row(
                        kind="scheduler",
                        name=name,
                        logical_id=by_physical.get(name),
                        expression=expression,
                        timezone=schedule.get("ScheduleExpressionTimezone") or "UTC",
                        state=schedule.get("State", ""),
                        targets=[schedule.get("Target", {})],
                        start=start,
                        end=schedule.get("EndDate"),
                        now=now,
                    )
                )
    events = stack.target.client("events")
    rules = sorted(stack.of_type("AWS::Events::Rule"), key=lambda r: r.physical_id)
    for number, resource in enumerate(rules, start=1):
        report(f"reading rule {number} of {len(rules)}: {resource.logical_id}")
        bus, _, rule_name = resource.physical_id.rpartition("|")
        bus_args = {"EventBusName": bus} if bus else {}
        with aws_errors(stack.target, f"reading rule {resource.logical_id}"):
            rule = events.describe_rule(Name=rule_name, **bus_args)
            if not rule.get("ScheduleExpression"):
                continue  # an event-pattern rule, not a schedule
            targets = events.list_targets_by_rule(Rule=rule_name, **bus_args).get("Targets", [])
        rows.append(
            _row(
                kind="rule",
                name=rule_name,
                logical_id=resource.logical_id,
                expression=rule["ScheduleExpression"],
                timezone="UTC",  # EventBridge rules always run in UTC
                state=rule.get("State", ""),
                targets=targets,
                start=None,
                end=None,
                now=now,
            )
        )
    return rows


#: How far back ``schedules`` looks for each schedule's last firing in the run records.
LAST_FIRING_WITHIN = timedelta(days=8)


def attach_last_firings(
    stack: Stack, rows: list[dict[str, Any]], now: datetime | None = None, report: Report = silent
) -> bool:
    """Give each Scheduler row ``last_firing``: its newest recorded firing within
    LAST_FIRING_WITHIN (scheduled time, outcome, each job's name and status), or None.
    False, and nothing attached, when the stack keeps no run records."""
    from batchwire_cli.runs import list_runs

    if not stack.physical_id("RunsTable") and "RunsTableName" not in stack.outputs:
        return False
    firings = list_runs(stack, LAST_FIRING_WITHIN, now, report)["firings"]
    newest: dict[str, dict[str, Any]] = {}
    for firing in firings:
        held = newest.get(firing["schedule"])
        if held is None or firing["scheduled_time"] > held["scheduled_time"]:
            newest[firing["schedule"]] = firing
    for row in rows:
        firing = newest.get(row["name"]) if row["kind"] == "scheduler" else None
        row["last_firing"] = (
            None
            if firing is None
            else {
                "scheduled_time": firing["scheduled_time"],
                "outcome": firing["outcome"],
                "chain_id": firing["chain_id"],
                "jobs": [
                    {"job_name": job["job_name"], "hop": job["hop"], "status": job["status"]}
                    for job in firing["jobs"]
                ],
            }
        )
    return True
