"""Act on one schedule of the stack: pause it, resume it, or fire it once now.

A schedule is an EventBridge Scheduler schedule of the stack's group or a scheduled
EventBridge rule of the stack, named by its name or (a stack resource) its logical id.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from batchwire_cli import invoker
from batchwire_cli.errors import CliError
from batchwire_cli.schedules import scheduler_group
from batchwire_cli.stack import Stack, aws_errors

#: What UpdateSchedule keeps only when it is sent again: it replaces the whole schedule.
SCHEDULE_FIELDS = (
    "Name",
    "GroupName",
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "FlexibleTimeWindow",
    "Target",
    "Description",
    "StartDate",
    "EndDate",
    "KmsKeyArn",
    "ActionAfterCompletion",
)


@dataclass(frozen=True)
class ScheduleRef:
    """One schedule of the stack: a Scheduler schedule (``group``) or a rule (``bus``)."""

    kind: str  # "scheduler" or "rule"
    name: str
    logical_id: str | None
    group: str = ""
    bus: str = ""

    @property
    def label(self) -> str:
        return self.logical_id or self.name

    def bus_args(self) -> dict[str, str]:
        return {"EventBusName": self.bus} if self.bus else {}


def stack_schedules(stack: Stack) -> list[ScheduleRef]:
    """Every schedule of the stack: the group's schedules, then rules with a schedule."""
    refs: list[ScheduleRef] = []
    by_physical = {r.physical_id: r.logical_id for r in stack.resources.values()}
    group = scheduler_group(stack)
    if group:
        scheduler = stack.target.client("scheduler")
        with aws_errors(stack.target, f"listing schedules of group {group}"):
            for page in scheduler.get_paginator("list_schedules").paginate(GroupName=group):
                for summary in page["Schedules"]:
                    name = summary["Name"]
                    refs.append(ScheduleRef("scheduler", name, by_physical.get(name), group=group))
    events = stack.target.client("events")
    for resource in stack.of_type("AWS::Events::Rule"):
        bus, _, rule_name = resource.physical_id.rpartition("|")
        ref = ScheduleRef("rule", rule_name, resource.logical_id, bus=bus)
        with aws_errors(stack.target, f"reading rule {resource.logical_id}"):
            if events.describe_rule(Name=rule_name, **ref.bus_args()).get("ScheduleExpression"):
                refs.append(ref)
    return refs


def find_schedule(stack: Stack, wanted: str) -> ScheduleRef:
    """The schedule named ``wanted``; CliError listing the known ones when there is none.

    SAM names a function's schedule event after both: ``NightlySchedule`` is the schedule
    ``SubmitterFunctionNightlySchedule``. Otherwise a name one schedule ends with is meant,
    and one that several end with is ambiguous.
    """
    refs = stack_schedules(stack)
    for ref in refs:
        if wanted in (ref.name, ref.logical_id):
            return ref
    sam_events = [
        ref
        for ref in refs
        if ref.name.endswith(wanted) and ref.name[: -len(wanted)].endswith("Function")
    ]
    if len(sam_events) == 1:
        return sam_events[0]
    ending = [
        ref for ref in refs if ref.name.endswith(wanted) or (ref.logical_id or "").endswith(wanted)
    ]
    if len(ending) == 1:
        return ending[0]
    known = ", ".join(sorted(ref.label for ref in (ending or refs))) or "none"
    if ending:
        raise CliError(f"schedule {wanted!r} in stack {stack.name} is ambiguous: one of {known}")
    raise CliError(f"no schedule {wanted!r} in stack {stack.name}: known schedules: {known}")


def _updated_schedule(schedule: dict[str, Any], state: str) -> dict[str, Any]:
    """UpdateSchedule's arguments: every field the schedule has, and the new state."""
    kept = {key: schedule[key] for key in SCHEDULE_FIELDS if schedule.get(key) is not None}
    return {**kept, "State": state}


def set_schedule_state(stack: Stack, wanted: str, enabled: bool) -> dict[str, Any]:
    """Enable or disable one schedule; the state before and after (unchanged if it was)."""
    ref = find_schedule(stack, wanted)
    state = "ENABLED" if enabled else "DISABLED"
    with aws_errors(stack.target, f"{'resuming' if enabled else 'pausing'} {ref.label}"):
        if ref.kind == "scheduler":
            scheduler = stack.target.client("scheduler")
            schedule = scheduler.get_schedule(Name=ref.name, GroupName=ref.group)
            before = schedule.get("State", "")
            if before != state:
                scheduler.update_schedule(**_updated_schedule(schedule, state))
            after = scheduler.get_schedule(Name=ref.name, GroupName=ref.group).get("State", "")
        else:
            events = stack.target.client("events")
            before = events.describe_rule(Name=ref.name, **ref.bus_args()).get("State", "")
            if before != state:
                toggle = events.enable_rule if enabled else events.disable_rule
                toggle(Name=ref.name, **ref.bus_args())
            after = events.describe_rule(Name=ref.name, **ref.bus_args()).get("State", "")
    return {
        "schedule": ref.label,
        "name": ref.name,
        "kind": ref.kind,
        "before": before,
        "after": after,
        "changed": before != after,
    }


def _is_function(arn: str) -> bool:
    return arn.startswith("arn:") and ":lambda:" in arn and ":function:" in arn


def _scheduler_input(text: str, schedule_arn: str, now: datetime) -> Any:
    """The target's Input as Scheduler delivers it: its context placeholders filled in.

    The submitter knows a firing by schedule ARN + scheduled time: the time of this run,
    to the second, makes it a firing of its own (Scheduler's own times are whole minutes).
    """
    filled = (
        text.replace("<aws.scheduler.schedule-arn>", schedule_arn)
        .replace("<aws.scheduler.scheduled-time>", now.strftime("%Y-%m-%dT%H:%M:%SZ"))
        .replace("<aws.scheduler.execution-id>", str(uuid.uuid4()))
        .replace("<aws.scheduler.attempt-number>", "1")
    )
    try:
        return json.loads(filled)
    except ValueError:
        return filled  # a plain-text Input is delivered as a JSON string


def _scheduled_event(rule_arn: str, now: datetime) -> dict[str, Any]:
    """What a scheduled rule without Input delivers: its Scheduled Event, a fresh id."""
    account, region = rule_arn.split(":")[4], rule_arn.split(":")[3]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def firing_now(stack: Stack, ref: ScheduleRef, now: datetime) -> list[dict[str, Any]]:
    """The invocations one firing of the schedule makes now: function and event each.

    CliError when a target is not a Lambda function (an ECS task, a queue...).
    """
    if ref.kind == "scheduler":
        scheduler = stack.target.client("scheduler")
        with aws_errors(stack.target, f"reading schedule {ref.label}"):
            schedule = scheduler.get_schedule(Name=ref.name, GroupName=ref.group)
        target = schedule.get("Target", {})
        arn = str(target.get("Arn", ""))
        if target.get("EcsParameters"):
            raise CliError(
                f"{ref.label} starts an ECS task: run-now is not supported for it: "
                "use aws ecs run-task with the schedule's task definition and network"
            )
        if not _is_function(arn):
            raise CliError(f"{ref.label}: run-now only invokes Lambda targets, not {arn}")
        event = _scheduler_input(target.get("Input") or "{}", schedule["Arn"], now)
        return [{"function": arn, "event": event}]
    events = stack.target.client("events")
    with aws_errors(stack.target, f"reading rule {ref.label}"):
        rule = events.describe_rule(Name=ref.name, **ref.bus_args())
        targets = events.list_targets_by_rule(Rule=ref.name, **ref.bus_args()).get("Targets", [])
    firings = []
    for target in targets:
        arn = str(target.get("Arn", ""))
        if not _is_function(arn):
            raise CliError(f"{ref.label}: run-now only invokes Lambda targets, not {arn}")
        if target.get("InputPath") or target.get("InputTransformer"):
            raise CliError(
                f"{ref.label}: target {target.get('Id')} transforms its event: "
                "run-now only replays a constant Input or the scheduled event"
            )
        # constant input carries no identity: the submitter takes Lambda's request id,
        # new for every invocation, so each run is a firing of its own
        event = json.loads(target["Input"]) if target.get("Input") else None
        firings.append({"function": arn, "event": event or _scheduled_event(rule["Arn"], now)})
    if not firings:
        raise CliError(f"{ref.label} has no targets: nothing to run")
    return firings


def run_now(
    stack: Stack, wanted: str, dry_run: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    """Fire one schedule now, as Scheduler or EventBridge would: invoke each Lambda target
    with its event and wait for its answer. CliError (errorMessage) when a function fails."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    ref = find_schedule(stack, wanted)
    invocations = firing_now(stack, ref, now)
    for invocation in invocations:
        if dry_run:
            continue
        answer = invoker.invoke_function(
            stack.target, invocation["function"], invocation["event"], asynchronous=False
        )
        if answer.error is not None:
            function = invoker.function_name(invocation["function"])
            raise CliError(f"run-now {ref.label}: {function} failed: {answer.error}")
        invocation["result"] = answer.result
    return {
        "schedule": ref.label,
        "name": ref.name,
        "kind": ref.kind,
        "time": now.isoformat(),
        "dry_run": dry_run,
        "invocations": invocations,
    }
