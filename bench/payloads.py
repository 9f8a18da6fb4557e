"""Events the benchmarks feed the handlers: the largest each one accepts, built in memory.

Standard library only: the benchmark children import this before the handler under test.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

#: A CloudWatch Logs subscription delivers up to about 1 MB and 10,000 events at once.
MAX_LOG_EVENTS = 10_000
MAX_LOG_BYTES = 1_000_000

#: Batch refuses more than this many characters of container overrides (job FAILs later).
MAX_OVERRIDES_CHARS = 8192
MAX_JOBS_PER_FIRING = 20

ERROR_LINE = "ERROR row rejected"


def largest_schedule_event(jobs: int = MAX_JOBS_PER_FIRING) -> dict[str, Any]:
    """A Scheduler firing with ``jobs`` jobs, each with container overrides just under
    Batch's 8,192-character limit and a dependency on the job before it."""
    environment = [
        {"name": f"SETTING_{index:03d}", "value": "v" * 96} for index in range(MAX_OVERRIDES_CHARS)
    ]
    overrides: dict[str, Any] = {"command": ["python", "-m", "feedstream", "import"]}
    overrides["environment"] = []
    for variable in environment:
        grown = {**overrides, "environment": [*overrides["environment"], variable]}
        if len(_compact(grown)) >= MAX_OVERRIDES_CHARS - 64:
            break
        overrides = grown
    job_list = []
    for index in range(jobs):
        job: dict[str, Any] = {
            "jobName": f"nightly-{index:02d}-{{scheduled_time:%Y%m%d}}",
            "jobQueue": "feeds",
            "jobDefinition": "feedstream-Broadbean",
            "containerOverrides": overrides,
            "parameters": {"since": "24h"},
            "retryStrategy": {"attempts": 2},
            "tags": {"team": "feeds"},
        }
        if index:
            job["dependsOn"] = [{"jobName": f"nightly-{index - 1:02d}-{{scheduled_time:%Y%m%d}}"}]
        job_list.append(job)
    return {
        "schedule": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/batchwire-largest",
        "scheduledTime": "2026-11-23T02:00:00Z",
        "jobs": job_list,
    }


def log_batch_document(
    events: int = MAX_LOG_EVENTS,
    target_bytes: int = MAX_LOG_BYTES,
    message: str = ERROR_LINE,
    log_group: str = "/aws/batch/job",
    log_stream: str = "feedstream-Broadbean/default/0123456789abcdef",
) -> dict[str, Any]:
    """The decompressed subscription document: ``events`` lines of one stream, padded so
    the compact JSON is about ``target_bytes`` long (longer when 10,000 bare lines already
    are: real event ids take 56 digits). Each line is ``message`` and its line number."""
    head: dict[str, Any] = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": ["batchwire-errors"],
        "logEvents": [],
    }
    sample = _log_event(0, message, "")
    per_event = len(_compact(sample)) + 1
    spare = max(0, target_bytes - len(_compact(head)) - per_event * events)
    padding = " " * (spare // events)
    head["logEvents"] = [_log_event(index, message, padding) for index in range(events)]
    return head


def log_subscription_event(document: dict[str, Any]) -> dict[str, Any]:
    """Wrap a subscription document as Lambda receives it: base64(gzip(json))."""
    data = base64.b64encode(gzip.compress(_compact(document).encode(), compresslevel=6))
    return {"awslogs": {"data": data.decode()}}


def decode_floor(event: dict[str, Any]) -> dict[str, Any]:
    """The least any notifier must do with a subscription event: base64, gunzip, json.loads."""
    document: dict[str, Any] = json.loads(
        gzip.decompress(base64.b64decode(event["awslogs"]["data"]))
    )
    return document


def _log_event(index: int, message: str, padding: str) -> dict[str, Any]:
    return {
        "id": str(3 * 10**55 + index),  # 56 digits, as CloudWatch writes them
        "timestamp": 1_795_399_200_000 + index,
        "message": f"{message} {index}{padding}",
    }


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
