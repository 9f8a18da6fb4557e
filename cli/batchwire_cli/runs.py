"""What the schedules started: each firing, the jobs it submitted and every job chained from them.

The stack's ``RunsTable`` (keys ``pk``/``sk``, expired through ``expiresAt``) holds two kinds
of item:

- one per firing, written by the submitter: ``firing#<UTC date of the scheduled time>`` /
  ``<scheduled time, ISO>#<firing identity>``, with the schedule, the chain id and the jobs
  it submitted (hop 0 of that chain);
- one per chained job, written by the chainer: ``chain#<chain id>`` / ``<hop, 4 digits>#<job
  id>``, with its hop (1 and up), the chain rule and what finished upstream.

Status and timings come from Batch (``DescribeJobs``, at most 100 ids a call). Batch forgets
a job about a week after it ended: such a job reads ``unknown (no longer in Batch)``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError
from rich.style import Style
from rich.table import Table
from rich.text import Text

from batchwire.alerts import batch_job_link
from batchwire_cli import output
from batchwire_cli.errors import CliError
from batchwire_cli.output import Report, age_in_words, silent
from batchwire_cli.stack import Stack, aws_errors

#: Batch answers DescribeJobs for at most this many job ids a call.
DESCRIBE_BATCH = 100
#: The status of a job Batch does not return (ended more than about 7 days ago, or deleted).
UNKNOWN = "unknown (no longer in Batch)"
#: Batch statuses of a job that has not ended yet.
IN_PROGRESS = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
#: One Query per UTC day of the window: a bound keeps a typo from asking for years.
MAX_SINCE_DAYS = 366
_SINCE = re.compile(r"(\d{1,7})([mhd])")
_MINUTES = {"m": 1, "h": 60, "d": 24 * 60}
_DESERIALIZE = TypeDeserializer().deserialize


def parse_since(text: str) -> timedelta:
    """``30m``, ``24h`` or ``7d`` as a timedelta, 1 minute to 366 days (an argparse type)."""
    match = _SINCE.fullmatch(text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age such as 30m, 24h or 7d")
    minutes = int(match[1]) * _MINUTES[match[2]]
    if minutes < 1:
        raise argparse.ArgumentTypeError(f"{text!r} covers no time: give 1m or more")
    if minutes > MAX_SINCE_DAYS * _MINUTES["d"]:
        raise argparse.ArgumentTypeError(
            f"{text!r} is more than {MAX_SINCE_DAYS}d (runs are read one UTC day at a time)"
        )
    return timedelta(minutes=minutes)


def runs_table(stack: Stack) -> str:
    """The name of the stack's RunsTable; CliError when the stack has none."""
    name = stack.physical_id("RunsTable") or stack.outputs.get("RunsTableName")
    if not name:
        raise CliError(
            f"stack {stack.name} has no RunsTable: it predates run records; deploy the "
            "current template (sam deploy) and the firings from then on are recorded"
        )
    return name


def _query(
    dynamodb: Any,
    table: str,
    pk: str,
    sk_from: str | None,
    report: Report,
    saying: str,
) -> list[dict[str, Any]]:
    """Every item of partition ``pk`` (from sort key ``sk_from`` on), all pages."""
    condition = "#pk = :pk" + (" AND #sk >= :from" if sk_from else "")
    names = {"#pk": "pk", **({"#sk": "sk"} if sk_from else {})}
    values = {":pk": {"S": pk}, **({":from": {"S": sk_from}} if sk_from else {})}
    items: list[dict[str, Any]] = []
    report(saying)
    pages = dynamodb.get_paginator("query").paginate(
        TableName=table,
        KeyConditionExpression=condition,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )
    for number, page in enumerate(pages, start=1):
        if number > 1:
            report(f"{saying}, page {number}")
        items += [_DESERIALIZE({"M": item}) for item in page.get("Items", [])]
    return items


def _days(start: datetime, end: datetime) -> list[date]:
    first, last = start.astimezone(UTC).date(), end.astimezone(UTC).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _moment(milliseconds: Any) -> datetime | None:
    number = _int(milliseconds)
    return None if number is None else datetime.fromtimestamp(number / 1000, UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def describe_jobs(batch: Any, job_ids: Iterable[str], report: Report) -> dict[str, dict[str, Any]]:
    """What Batch says of each job id it still knows, by id (100 ids a call)."""
    wanted = sorted({job_id for job_id in job_ids if job_id})
    known: dict[str, dict[str, Any]] = {}
    for first in range(0, len(wanted), DESCRIBE_BATCH):
        chunk = wanted[first : first + DESCRIBE_BATCH]
        report(f"asking Batch about {len(wanted)} job(s): {first + 1}-{first + len(chunk)}")
        for job in batch.describe_jobs(jobs=chunk).get("jobs", []):
            known[job["jobId"]] = job
    return known


def _batch_view(described: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """Status, reason, exit code, times and log stream of one job as Batch describes it."""
    if described is None:
        return {
            "status": UNKNOWN,
            "status_reason": None,
            "exit_code": None,
            "created_at": None,
            "started_at": None,
            "stopped_at": None,
            "duration_seconds": None,
            "log_stream": None,
        }
    attempts = described.get("attempts") or [{}]
    last_container = attempts[-1].get("container") or {}
    container = described.get("container") or {}
    status = _text(described.get("status"))
    created, started, stopped = (
        _moment(described.get(key)) for key in ("createdAt", "startedAt", "stoppedAt")
    )
    # a running job's duration counts up to now; one that never started has none
    end = stopped or (now if status in IN_PROGRESS else None)
    duration = (end - started).total_seconds() if started and end else None
    return {
        "status": status,
        "status_reason": described.get("statusReason") or last_container.get("reason"),
        "exit_code": _int(container.get("exitCode", last_container.get("exitCode"))),
        "created_at": _iso(created),
        "started_at": _iso(started),
        "stopped_at": _iso(stopped),
        "duration_seconds": None if duration is None else max(int(duration), 0),
        "log_stream": container.get("logStreamName") or last_container.get("logStreamName"),
    }


def _submitted_jobs(firing: dict[str, Any]) -> list[dict[str, Any]]:
    """The firing's own jobs (hop 0), in the order it submitted them."""
    jobs = [job for job in firing.get("jobs") or [] if isinstance(job, dict)]
    jobs.sort(key=lambda job: _int(job.get("index")) or 0)
    return [
        {
            "hop": 0,
            "job_id": _text(job.get("jobId")),
            "job_name": _text(job.get("jobName")),
            "job_queue": _text(job.get("jobQueue")),
            "index": _int(job.get("index")),
            "rule": None,
            "upstream": None,
            "recorded_at": firing.get("recordedAt"),
        }
        for job in jobs
    ]


def _chained_job(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "hop": _int(item.get("hop")) or 0,
        "job_id": _text(item.get("jobId")),
        "job_name": _text(item.get("jobName")),
        "job_queue": _text(item.get("jobQueue")),
        "index": None,
        "rule": item.get("rule"),
        "upstream": item.get("upstream"),
        "recorded_at": item.get("recordedAt"),
    }


def in_tree_order(
    submitted: list[dict[str, Any]], chained: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each job followed by the jobs chained from it, depth first.

    A chained job whose upstream is a job of the firing goes under that job; one chained
    from a message (an SNS or SQS message id) cannot be placed so: those follow the
    firing's own jobs, by hop.
    """
    ids = {job["job_id"] for job in submitted + chained if job["job_id"]}
    children: dict[str, list[dict[str, Any]]] = {}
    loose: list[dict[str, Any]] = []
    ordered_chain = sorted(chained, key=lambda j: (j["hop"], _text(j["recorded_at"]), j["job_id"]))
    for job in ordered_chain:
        upstream = _text(job["upstream"])
        if upstream in ids and upstream != job["job_id"]:
            children.setdefault(upstream, []).append(job)
        else:
            loose.append(job)
    ordered: list[dict[str, Any]] = []
    placed: set[int] = set()
    pending = list(reversed(submitted + loose))
    while pending:
        job = pending.pop()
        if id(job) in placed:
            continue  # an upstream loop in the records: show each job once
        placed.add(id(job))
        ordered.append(job)
        pending += reversed(children.get(job["job_id"], []))
    ordered += [job for job in ordered_chain if id(job) not in placed]
    return ordered


def _outcome(jobs: list[dict[str, Any]]) -> str:
    statuses = {job["status"] for job in jobs}
    if "FAILED" in statuses:
        return "failed"
    if statuses & set(IN_PROGRESS):
        return "running"
    if UNKNOWN in statuses:
        return "unknown"
    return "succeeded" if jobs else "no jobs"


def _span_seconds(jobs: list[dict[str, Any]], now: datetime) -> int | None:
    """From the first job's start to the last one's end (to now while any still runs)."""
    starts = [datetime.fromisoformat(j["started_at"]) for j in jobs if j["started_at"]]
    if not starts:
        return None
    if any(job["status"] in IN_PROGRESS for job in jobs):
        end = now
    else:
        stops = [datetime.fromisoformat(j["stopped_at"]) for j in jobs if j["stopped_at"]]
        if not stops:
            return None
        end = max(stops)
    return max(int((end - min(starts)).total_seconds()), 0)


def list_runs(
    stack: Stack,
    since: timedelta,
    now: datetime | None = None,
    report: Report = silent,
) -> dict[str, Any]:
    """Every firing scheduled within ``since`` before ``now``, with its jobs and the jobs
    chained from them (status, times, console link); failed firings first, then newest."""
    now = now or datetime.now(UTC)
    start = now - since
    table = runs_table(stack)
    region = stack.target.session.region_name or ""
    dynamodb = stack.target.client("dynamodb")
    firings: list[dict[str, Any]] = []
    with aws_errors(stack.target, f"reading RunsTable {table}"):
        try:
            days = _days(start, now)
            for number, day in enumerate(days, start=1):
                firings += [
                    item
                    for item in _query(
                        dynamodb,
                        table,
                        f"firing#{day.isoformat()}",
                        start.astimezone(UTC).isoformat(timespec="seconds"),
                        report,
                        f"reading the firings of {day.isoformat()} (day {number} of {len(days)})",
                    )
                    if item.get("kind", "firing") == "firing"
                ]
            chains: dict[str, list[dict[str, Any]]] = {}
            for number, firing in enumerate(firings, start=1):
                chain_id = _text(firing.get("chainId"))
                if chain_id and chain_id not in chains:
                    chains[chain_id] = [
                        _chained_job(item)
                        for item in _query(
                            dynamodb,
                            table,
                            f"chain#{chain_id}",
                            None,
                            report,
                            f"reading chain {chain_id} (firing {number} of {len(firings)})",
                        )
                        if item.get("kind", "chained") == "chained"
                    ]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise CliError(
                    f"RunsTable {table} of stack {stack.name} not found: deleted outside "
                    "CloudFormation?"
                ) from None
            raise
    runs: list[dict[str, Any]] = []
    for firing in firings:
        chain_id = _text(firing.get("chainId"))
        runs.append(
            {
                "firing": _text(firing.get("firing")),
                "schedule": _text(firing.get("schedule")),
                "scheduled_time": _text(firing.get("scheduledTime")),
                "chain_id": chain_id,
                "recorded_at": firing.get("recordedAt"),
                "jobs": in_tree_order(_submitted_jobs(firing), chains.get(chain_id, [])),
            }
        )
    every_job = [job for run in runs for job in run["jobs"]]
    with aws_errors(stack.target, f"describing {len(every_job)} Batch job(s)"):
        described = describe_jobs(
            stack.target.client("batch"), (job["job_id"] for job in every_job), report
        )
    for job in every_job:
        batch_job = described.get(job["job_id"]) if job["job_id"] else None
        job.update(_batch_view(batch_job, now))
        if not job["job_name"] and batch_job:
            job["job_name"] = _text(batch_job.get("jobName"))
        job["console_url"] = batch_job_link(region, job["job_id"]) if job["job_id"] else None
    for run in runs:
        run["outcome"] = _outcome(run["jobs"])
        run["failed"] = run["outcome"] == "failed"
        run["duration_seconds"] = _span_seconds(run["jobs"], now)
    runs.sort(key=lambda run: (run["scheduled_time"], run["firing"]), reverse=True)
    runs.sort(key=lambda run: not run["failed"])  # stable: failed first, each newest first
    return {
        "table": table,
        "region": region,
        "since": start.isoformat(),
        "until": now.isoformat(),
        "firings": runs,
    }


def _time_text(value: str) -> str:
    """``Mon 2026-11-30 02:00 UTC`` (seconds only when there are some)."""
    try:
        moment = datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        return value
    shape = "%a %Y-%m-%d %H:%M:%S UTC" if moment.second else "%a %Y-%m-%d %H:%M UTC"
    return moment.strftime(shape)


def _duration_text(seconds: int | None, running: bool) -> str:
    if seconds is None:
        return "-"
    return f"{age_in_words(seconds)} so far" if running else age_in_words(seconds)


def _status_counts(jobs: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for job in sorted(jobs, key=lambda j: j["status"] != "FAILED"):
        status = "unknown" if job["status"] == UNKNOWN else job["status"]
        counts[status] = counts.get(status, 0) + 1
    return "\n".join(f"{count} {status}" for status, count in counts.items()) or "no jobs"


def _job_status(job: dict[str, Any]) -> str:
    status = "unknown\n(no longer in Batch)" if job["status"] == UNKNOWN else job["status"]
    if job["exit_code"] not in (None, 0):
        status += f" (exit {job['exit_code']})"
    if status.startswith("FAILED") and job["status_reason"]:
        status += f"\n{job['status_reason']}"
    return str(status)


def print_runs(stack_line: str, runs: dict[str, Any]) -> None:
    out = output.console()
    out.print(stack_line)
    since = _time_text(runs["since"])
    firings = runs["firings"]
    if not firings:
        out.print(f"no firings recorded since {since} (RunsTable {runs['table']})")
        return
    table = Table(show_lines=False)
    table.add_column("firing / job", overflow="fold")
    table.add_column("hop", justify="right")
    # ids stay whole (people copy them) where the terminal has room: names fold first
    table.add_column("chain / job id", no_wrap=out.width >= 100, overflow="fold")
    for column in ("status", "duration", "link"):
        table.add_column(column, overflow="fold")
    for firing in firings:
        jobs = firing["jobs"]
        table.add_row(
            Text(
                f"{firing['schedule'] or firing['firing']}\n{_time_text(firing['scheduled_time'])}"
            ),
            Text(""),
            Text(firing["chain_id"] or "-"),
            Text(_status_counts(jobs)),
            Text(_duration_text(firing["duration_seconds"], firing["outcome"] == "running")),
            Text(""),
            style="bold",
            end_section=not jobs,
        )
        for number, job in enumerate(jobs, start=1):
            hop = job["hop"]
            branch = "└─" if hop else ""
            url = job["console_url"]
            table.add_row(
                Text(f"{'  ' * (hop + 1)}{branch}{job['job_name'] or '?'}"),
                Text(str(hop)),
                Text(job["job_id"] or "-"),
                Text(_job_status(job)),
                Text(_duration_text(job["duration_seconds"], job["status"] in IN_PROGRESS)),
                Text("console", style=Style(link=url)) if url else Text("-"),
                end_section=number == len(jobs),
            )
    out.print(table)
    failed = sum(firing["failed"] for firing in firings)
    out.print(f"{len(firings)} firing(s) since {since}, {failed} failed; failed first, then newest")
    out.print(f"console links: {batch_job_link(runs['region'], '')}<job id>")
