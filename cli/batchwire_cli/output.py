"""How results reach the terminal: rich tables for people, JSON for scripts.

Text from the stack or its messages is never parsed as rich markup (``[REDACTED]`` and a
log's ``[ERROR]`` print as written).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.console import Console
from rich.table import Table
from rich.text import Text

#: Told what a command is reading now (``progress`` shows it; the default says nothing).
Report = Callable[[str], None]


def silent(_text: str) -> None:
    """A Report that says nothing: what a command reads when nobody watches."""
    return None


def console() -> Console:
    # created per call, so it writes to the sys.stdout of the moment (tests capture it)
    return Console(file=sys.stdout, highlight=False, markup=False, soft_wrap=False)


@contextlib.contextmanager
def progress(what: str, console: Console | None = None) -> Iterator[Report]:
    """A spinner on stderr saying what is being read; the ``report(text)`` it yields updates
    it. rich shows it on a terminal only (nothing reaches a pipe, a log or ``--json``
    stdout) and clears it when the block ends."""
    shown = console or Console(file=sys.stderr, highlight=False, markup=False)
    with shown.status(Text(what)) as status:
        yield lambda text: status.update(Text(text))


def age_in_words(seconds: int | None, at_least: bool = False) -> str:
    """``3 h 12 min`` (``at least`` when older ones may be unseen), ``-`` when unknown."""
    if seconds is None:
        return "-"
    days, rest = divmod(max(seconds, 0), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days} d {hours} h"
    elif hours:
        text = f"{hours} h {minutes} min"
    elif minutes:
        text = f"{minutes} min"
    else:
        text = f"{secs} s"
    return f"at least {text}" if at_least else text


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout (every field, for scripts)."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def _plain(value: Any) -> Text:
    return Text("" if value is None else str(value))


def print_dlq(stack_line: str, rows: list[dict[str, Any]]) -> None:
    out = console()
    out.print(stack_line)
    if not rows:
        out.print("no failure queues in this stack")
        return
    table = Table(show_lines=False)
    for column in ("queue", "name", "messages", "oldest", "what lands there"):
        table.add_column(
            column, justify="right" if column == "messages" else "left", overflow="fold"
        )
    for row in rows:
        table.add_row(
            _plain(row["queue"]),
            _plain(row["name"]),
            _plain(row["depth"]),
            _plain(age_in_words(row["oldest_age_seconds"], row["oldest_at_least"])),
            _plain(row["what_lands"]),
        )
    out.print(table)
    waiting = [row for row in rows if row["depth"]]
    if waiting:
        total = sum(row["depth"] for row in waiting)
        out.print(
            f"{total} message(s) in {len(waiting)} queue(s); "
            f"read them with: batchwire dlq show {waiting[0]['name']}"
        )
    else:
        out.print("every failure queue is empty")


def _pretty(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, default=str)


def print_messages(stack_line: str, shown: dict[str, Any]) -> None:
    out = console()
    out.print(stack_line)
    messages = shown["messages"]
    out.print(
        f"{shown['queue']} ({shown['name']}): {shown['depth']} message(s), "
        f"showing {len(messages)}, oldest first; nothing is consumed"
    )
    for number, message in enumerate(messages, start=1):
        age = age_in_words(message["age_seconds"])
        out.rule(f"message {number} of {len(messages)}", characters="-")
        out.print(f"id:        {message['message_id']}")
        sent = message["sent"]
        if sent:
            sent = datetime.fromisoformat(sent).strftime("%Y-%m-%d %H:%M:%S UTC")
        out.print(f"sent:      {sent} ({age} ago)")
        out.print(f"received:  {message['receive_count']} time(s)")
        for name, value in sorted(message["attributes"].items()):
            out.print(f"attribute: {name} = {value}")
        kind = message["kind"]
        if kind == "lambda-failure":
            out.print(
                f"Lambda on-failure record: {message['condition']} after "
                f"{message['approximate_invoke_count']} invocation(s) of {message['function']}"
            )
            if message["error_type"] or message["error_message"]:
                out.print(f"error:     {message['error_type']}: {message['error_message']}")
            out.print("request payload (the event to invoke again with):")
            out.print(_pretty(message["request_payload"]))
        elif kind == "sns-notification":
            subject = f", subject {message['subject']!r}" if message["subject"] else ""
            out.print(f"SNS notification from {message['topic']}{subject}")
            out.print(f"published: {message['published']}")
            out.print("message:")
            out.print(_pretty(message["message"]))
        elif kind in ("sqs-event", "sns-event"):
            source = "SQS" if kind == "sqs-event" else f"SNS ({message.get('topic')})"
            out.print(f"{source} event of {len(message['messages'])} record(s):")
            for record in message["messages"]:
                out.print(_pretty(record))
        else:
            out.print("body:")
            out.print(_pretty(message["body"]))


def _firing_text(value: str, timezone: str) -> str:
    """``Tue 2026-12-01 02:00 CET``: the firing in its schedule's zone, with its abbreviation."""
    moment = datetime.fromisoformat(value)
    with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
        moment = moment.astimezone(ZoneInfo(timezone))
    return moment.strftime("%a %Y-%m-%d %H:%M %Z").strip()


def _short(value: str) -> str:
    """An ARN's resource name (``arn:...:job-queue/feeds`` -> ``feeds``); others as they are."""
    return value.rsplit("/", 1)[-1] if value.startswith("arn:") else value


def _job_text(job: dict[str, str]) -> str:
    queue, definition = _short(job.get("jobQueue", "?")), _short(job.get("jobDefinition", "?"))
    return f"{job.get('jobName', '?')} on {queue} with {definition}"


def print_schedules(stack_line: str, rows: list[dict[str, Any]], note: str | None) -> None:
    out = console()
    out.print(stack_line)
    if note:
        out.print(note)
    if not rows:
        out.print("no schedules found")
        return
    table = Table(show_lines=True)
    columns = ["name", "expression", "time zone", "next firings", "state", "submits"]
    recorded = any("last_firing" in row for row in rows)
    for column in [*columns, *(["last firing"] if recorded else [])]:
        table.add_column(column, overflow="fold")
    for row in rows:
        label = row["logical_id"] or row["name"]
        kind = "EventBridge rule" if row["kind"] == "rule" else "Scheduler"
        meaning = row["in_words"] or f"unreadable: {row['expression_error']}"
        firings = "\n".join(_firing_text(f, row["timezone"]) for f in row["next_firings"])
        submits = [_job_text(job) for job in row["jobs"]] or row["submits"]
        table.add_row(
            _plain(f"{label}\n{kind}"),
            _plain(f"{row['expression']}\n{meaning}"),
            _plain(row["timezone"]),
            _plain(firings or "-"),
            _plain(row["state"]),
            _plain("\n".join(submits)),
            *(
                [_plain(_last_firing_text(row.get("last_firing"), row["timezone"]))]
                if recorded
                else []
            ),
        )
    out.print(table)


def _last_firing_text(firing: dict[str, Any] | None, timezone: str) -> str:
    """The newest recorded firing: its time and outcome, then each job and its status."""
    if firing is None:
        return "-"
    lines = [f"{_firing_text(firing['scheduled_time'], timezone)}: {firing['outcome']}"]
    lines += [f"{'  ' * job['hop']}{job['job_name']} {job['status']}" for job in firing["jobs"]]
    return "\n".join(lines)


def print_state_change(stack_line: str, changed: dict[str, Any]) -> None:
    out = console()
    out.print(stack_line)
    kind = "rule" if changed["kind"] == "rule" else "schedule"
    if changed["changed"]:
        out.print(f"{kind} {changed['schedule']}: {changed['before']} -> {changed['after']}")
    else:
        out.print(f"{kind} {changed['schedule']}: already {changed['after']}, left as it is")


def print_run_now(stack_line: str, fired: dict[str, Any]) -> None:
    from batchwire_cli.invoker import function_name

    out = console()
    out.print(stack_line)
    verb = "would invoke" if fired["dry_run"] else "invoked"
    for invocation in fired["invocations"]:
        function = function_name(invocation["function"])
        out.print(f"{fired['schedule']} fired at {fired['time']}: {verb} {function}")
        if fired["dry_run"]:
            out.print("event:")
            out.print(_pretty(invocation["event"]))
            continue
        result = invocation.get("result")
        jobs = result.get("jobs") if isinstance(result, dict) else None
        if not isinstance(jobs, list):
            out.print(_pretty(result))
            continue
        out.print(
            f"firing {result.get('firing')}: {result.get('submittedNow', 0)} job(s) submitted now"
        )
        for job in jobs:
            out.print(f"  {job.get('jobName')} {job.get('jobId', '')}".rstrip())


def print_redrive(stack_line: str, moved: dict[str, Any]) -> None:
    out = console()
    out.print(stack_line)
    if moved["method"] == "move-task":
        out.print(
            f"{moved['queue']} ({moved['name']}): SQS message move task {moved['task_handle']} "
            f"started: about {moved['approximate_messages']} message(s) back to "
            f"{moved['destination']} (follow it with aws sqs list-message-move-tasks)"
        )
        return
    messages = moved["messages"]
    for message in messages:
        if moved["dry_run"]:
            where = message["destination"] if message["problem"] is None else "stays"
            reason = f" ({message['problem']})" if message["problem"] else ""
            out.print(f"would move {message['message_id']} -> {where}{reason}")
        elif message["moved"]:
            out.print(f"moved {message['message_id']} -> {message['destination']}")
        else:
            out.print(f"kept  {message['message_id']}: {message['problem']}")
    done = sum(m["moved"] for m in messages)
    name = f"{moved['queue']} ({moved['name']})"
    if moved["dry_run"]:
        out.print(f"{name}: {len(messages)} message(s) seen, nothing moved (--dry-run)")
    else:
        out.print(
            f"{name}: {done} message(s) moved, {len(messages) - done} kept in the failure queue"
        )
