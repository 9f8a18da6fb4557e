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


#: CloudWatch Logs takes log events of up to 256 KB.
MAX_LOG_LINE_BYTES = 256_000


def _filled(unit: str, prefix: str = "ERROR ", suffix: str = "") -> str:
    room = MAX_LOG_LINE_BYTES - len(prefix) - len(suffix)
    return prefix + (unit * (room // len(unit) + 1))[:room] + suffix


def adversarial_log_lines() -> dict[str, tuple[str, str]]:
    """One 256 KB log line per worst case of each built-in redaction pattern
    (``batchwire.redaction.BUILTIN_PATTERNS``, by name): near-misses the pattern must start
    on and give up, over and over. Name -> (pattern name, line). A pattern that backtracks
    more than linearly takes hundreds of times longer on these than on a plain line.
    Each was the slowest of several tried for its pattern (bench/README.md)."""
    return {
        "webhook prefix repeated": (
            "slack-webhook-url",
            _filled("https://hooks.slack.com/services"),
        ),
        "key id prefix repeated": ("aws-access-key-id", _filled(" AKIA")),
        "secret key label, then blanks": (
            "aws-secret-access-key",
            _filled(" ", "ERROR secret_access_key", ":"),
        ),
        "x run, then base64 run": (
            "aws-secret-key-shape",
            _filled("aB3/", "ERROR " + "x" * 128_000 + " "),
        ),
        "base64 run": ("aws-secret-key-shape", _filled("aB3/")),
        "bearer, then blanks": ("bearer-token", _filled(" ", "ERROR bearer", "!")),
        "schemes before a long user and password without @": (
            "url-password",
            _filled("+a" * 16 + "://" + "b" * 255 + ":" + "c:" * 128 + "/"),
        ),
        # a scheme may hold dots: without its {0,30} bound each "a" would scan to the end
        # (measured: the unbounded pattern takes 1 s on 64 KB of this, 16x that on 256 KB)
        "dotted run, no ://": ("url-password", _filled("a.")),
        "password label, then blanks": ("key-value-secret", _filled(" ", "ERROR password", "x")),
        "password label repeated": ("key-value-secret", _filled("password" + " " * 40)),
    }


def plain_log_line() -> str:
    """A 256 KB log line with nothing to redact: the linear reference for the above."""
    return _filled("row rejected by rule 17 in feed nightly-import; retrying later ")


# ------------------------------------------------------------------ chainer

#: SQS delivers at most 10 messages per batch to Lambda by default (BatchSize 10, no window).
SQS_BATCH_SIZE = 10
#: The classic SQS message size limit (256 KiB); see bench/README.md for the 1 MiB one.
SQS_MAX_MESSAGE_BYTES = 262_144


def largest_chain_batch(
    records: int = SQS_BATCH_SIZE, message_bytes: int = SQS_MAX_MESSAGE_BYTES
) -> dict[str, Any]:
    """An SQS batch of ``records`` chain messages, each a JSON body of ``message_bytes``
    (a feed-updated message whose ``notes`` field pads it to the size limit)."""
    event_records = []
    for index in range(records):
        message = {"feed": f"feed-{index}", "url": f"s3://batchwire-feeds/{index}.xml"}
        base = len(_compact({**message, "notes": ""}))
        message["notes"] = "x" * (message_bytes - base)
        event_records.append(
            {
                "messageId": f"00000000-0000-4000-8000-{index:012d}",
                "receiptHandle": f"AQEB{index:04d}",
                "body": _compact(message),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1795401892010",
                    "SenderId": "AROAEXAMPLE6JOBROLE:feedstream",
                    "ApproximateFirstReceiveTimestamp": "1795401892022",
                },
                "messageAttributes": {
                    "event": {
                        "stringValue": "feed-updated",
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": "String",
                    }
                },
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ChainQueue",
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": event_records}


# ------------------------------------------------------------------ retrier

#: ECS allows at most 10 containers in a task definition.
MAX_TASK_CONTAINERS = 10
#: RunTask refuses overrides of more than 8,192 characters (the JSON of ``overrides``).
MAX_TASK_OVERRIDES_CHARS = 8192


def _stopped_sample() -> dict[str, Any]:
    from bench.registry import ROOT

    sample: dict[str, Any] = json.loads((ROOT / "events/ecs-task-stopped-exit1.json").read_text())
    return sample


def largest_task_stopped_event(containers: int = MAX_TASK_CONTAINERS) -> dict[str, Any]:
    """The exit-1 STOPPED sample grown to ``containers`` containers (the ECS maximum), each
    with its own container override, all the overrides just under RunTask's 8,192
    characters (environment variables fill them up)."""
    event = _stopped_sample()
    detail = event["detail"]
    template = detail["containers"][0]
    detail["containers"] = [
        {**template, "name": f"step-{index}", "exitCode": 1 if index == 0 else 0}
        for index in range(containers)
    ]
    container_overrides: list[dict[str, Any]] = [
        {"name": f"step-{index}", "command": ["python", "-m", "reports", f"step{index}"]}
        for index in range(containers)
    ]
    overrides = {"containerOverrides": container_overrides}
    variable = 0
    while True:
        target = container_overrides[variable % containers]
        grown = [*target.get("environment", []), {"name": f"S_{variable:03d}", "value": "v" * 40}]
        previous = target.get("environment")
        target["environment"] = grown
        if len(_compact(overrides)) > MAX_TASK_OVERRIDES_CHARS - 64:
            if previous is None:
                del target["environment"]
            else:
                target["environment"] = previous
            break
        variable += 1
    detail["overrides"] = overrides
    return event


def retrier_relaunch_event() -> dict[str, Any]:
    """The SQS event that brings back the relaunch message the STOPPED sample queues
    (exit 1, run 1 of 3): due now, first placement try. Built as
    ``batchwire.retrier.handle_task_stopped`` writes it (tests/unit/test_bench_payloads.py
    checks it against the code)."""
    event = _stopped_sample()
    detail = event["detail"]
    origin = detail["taskArn"].rsplit("/", 1)[-1]
    request = {
        "cluster": detail["clusterArn"],
        "taskDefinition": detail["taskDefinitionArn"],
        "count": 1,
        "startedBy": f"batchwire-retry/2/{origin}",
        "group": detail["group"],
        "overrides": {"containerOverrides": detail["overrides"]["containerOverrides"]},
        "launchType": detail["launchType"],
        "platformVersion": detail["platformVersion"],
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": ["subnet-0a1b2c3d4e5f60718"],
                "assignPublicIp": "DISABLED",
            }
        },
        "tags": [
            {"key": "team", "value": "reports"},
            {"key": "batchwire:retry-of", "value": origin},
            {"key": "batchwire:attempt", "value": "2"},
        ],
    }
    facts = {
        "clusterArn": detail["clusterArn"],
        "taskArn": detail["taskArn"],
        "taskDefinitionArn": detail["taskDefinitionArn"],
        "group": detail["group"],
        "container": "app",
        "exitCode": 1,
        "stopCode": detail["stopCode"],
        "stoppedReason": detail["stoppedReason"],
        "reason": "container app exited 1; run 1 of 3",
        "region": event["region"],
        "account": event["account"],
        "eventId": event["id"],
        "task": detail,
        "cause": "container app exited 1",
        "messageId": None,  # a scheduled task: started for no queued message
    }
    message = {
        "kind": "relaunch",
        "attempt": 2,
        "origin": origin,
        "placementTry": 1,
        "notBefore": "2026-11-23T02:08:41.065000+00:00",  # in the past: due now
        "request": request,
        "facts": facts,
    }
    return {
        "Records": [
            {
                "messageId": "7a0c3e55-1b2d-4f6a-8c9e-0d1e2f3a4b5c",
                "receiptHandle": "AQEB7a0c3e55",
                "body": json.dumps(message),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1795400921065",
                    "SenderId": "AROAEXAMPLE:RetrierFunction",
                    "ApproximateFirstReceiveTimestamp": "1795400921100",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:RetrierDelayQueue",
                "awsRegion": "us-east-1",
            }
        ]
    }


# ------------------------------------------------------------------ dispatcher


def largest_work_batch(
    records: int = SQS_BATCH_SIZE, message_bytes: int = SQS_MAX_MESSAGE_BYTES
) -> dict[str, Any]:
    """An SQS batch of ``records`` WorkQueue messages of ``message_bytes`` each, as Lambda
    delivers them to the dispatcher: far over the 8,192 characters of container overrides,
    so each goes through S3 (``DISPATCHER_PAYLOAD_BUCKET``) before its task starts."""
    event_records = []
    for index in range(records):
        head = f"s3://feeds-inbox/2026-11-23/part-{index:02d}.csv\n"
        body = head + "r" * (message_bytes - len(head))
        event_records.append(
            {
                "messageId": f"00000000-0000-4000-9000-{index:012d}",
                "receiptHandle": f"AQEBwork{index:04d}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1795400999183",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1795400999271",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:WorkQueue",
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": event_records}
