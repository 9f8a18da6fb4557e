"""Run records: what each firing submitted, and what its chain went on to submit.

The submitter writes one item per firing and the chainer one per job it chains, in the
stack's RunsTable. The watch reads them to tell a firing that never happened or a run that
did not finish by its deadline; ``batchwire runs`` reads them to show firings and chains.

Keys (partition ``pk``, sort ``sk``; ``expiresAt`` is the table's TTL attribute):

- a firing: ``firing#<UTC date of the scheduled time>`` / ``<scheduled time>#<firing identity>``
- a chained job: ``chain#<chain id>`` / ``<hop, 4 digits>#<job id>``
- the watch's verdict on a firing: ``watch#<schedule name>`` / ``<scheduled time>``

Every write is conditional on the item not existing yet, so a redelivered firing or record
leaves the first item as it was (the jobs it names are the same: the submissions are
idempotent). The jobs of a firing are hop 0 of the chain the firing names; the chain id is
derived from the firing's identity, so every delivery of the firing gives the same one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from batchwire.config import EnvSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from batchwire.jobs import SubmittedJob

#: Chain ids of firings are UUIDs in this namespace, named by the firing's identity.
_FIRING_CHAINS = uuid.UUID("6f0d4a52-0b8e-4d3a-9a43-7f6d2f3c8e15")


class RunSettings(EnvSettings, frozen=True, kw_only=True):
    """Where run records go (none when RUNS_TABLE is unset) and how long they are kept."""

    runs_table: str = msgspec.field(name="RUNS_TABLE", default="")
    runs_retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = msgspec.field(
        name="RUNS_RETENTION_DAYS", default=35
    )


def chain_id_for_firing(identity: str) -> str:
    """The chain id of a firing's jobs: the same for every delivery of the firing."""
    return str(uuid.uuid5(_FIRING_CHAINS, identity))


def schedule_name(schedule: str | None) -> str:
    """A Scheduler schedule's name from its ARN (``...:schedule/<group>/<name>``)."""
    return (schedule or "").rsplit("/", 1)[-1]


def timestamp(moment: datetime) -> str:
    """The one text form of a time in run records: ISO 8601 in UTC, to the second."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def firing_key(scheduled_time: datetime, identity: str) -> dict[str, dict[str, str]]:
    return {
        "pk": {"S": f"firing#{scheduled_time.astimezone(UTC):%Y-%m-%d}"},
        "sk": {"S": f"{timestamp(scheduled_time)}#{identity}"},
    }


def chain_partition(chain_id: str) -> str:
    return f"chain#{chain_id}"


def watch_partition(schedule: str) -> str:
    return f"watch#{schedule}"


@dataclass(frozen=True)
class RecordedJob:
    """A job as run records hold it."""

    job_id: str
    job_name: str
    job_queue: str
    hop: int


class RunRecords:
    """Reads and writes run records in one DynamoDB table."""

    def __init__(self, table: str, retention_days: int, dynamodb: DynamoDBClient) -> None:
        self.table = table
        self.retention = timedelta(days=retention_days)
        self.dynamodb = dynamodb

    # -- writing

    def record_firing(
        self,
        *,
        identity: str,
        schedule: str | None,
        scheduled_time: datetime,
        chain_id: str,
        jobs: Sequence[SubmittedJob],
        now: datetime,
    ) -> bool:
        """The firing and its jobs (hop 0); False when an earlier delivery recorded it."""
        item: dict[str, Any] = {
            **firing_key(scheduled_time, identity),
            "kind": {"S": "firing"},
            "firing": {"S": identity},
            "schedule": {"S": schedule_name(schedule)},
            "scheduleArn": {"S": schedule or ""},
            "scheduledTime": {"S": timestamp(scheduled_time)},
            "chainId": {"S": chain_id},
            "jobs": {
                "L": [
                    {
                        "M": {
                            "jobId": {"S": job.jobId},
                            "jobName": {"S": job.jobName},
                            "jobQueue": {"S": job.jobQueue},
                            "index": {"N": str(index)},
                        }
                    }
                    for index, job in enumerate(jobs)
                ]
            },
        }
        return self._put_new(item, now)

    def record_chained(
        self,
        *,
        chain_id: str,
        hop: int,
        jobs: Iterable[tuple[str, SubmittedJob]],
        upstream: str,
        now: datetime,
    ) -> int:
        """Each ``(rule name, job)`` a record chained; the number of items new in this call."""
        written = 0
        for rule, job in jobs:
            item: dict[str, Any] = {
                "pk": {"S": chain_partition(chain_id)},
                "sk": {"S": f"{hop:04d}#{job.jobId}"},
                "kind": {"S": "chained"},
                "chainId": {"S": chain_id},
                "hop": {"N": str(hop)},
                "jobId": {"S": job.jobId},
                "jobName": {"S": job.jobName},
                "jobQueue": {"S": job.jobQueue},
                "upstream": {"S": upstream},
                "rule": {"S": rule},
            }
            written += self._put_new(item, now)
        return written

    def record_verdict(
        self, schedule: str, scheduled_time: datetime, verdict: str, now: datetime
    ) -> bool:
        """The watch's last word on one expected firing: ``ok``, ``missed`` or ``overdue``."""
        item: dict[str, Any] = {
            "pk": {"S": watch_partition(schedule)},
            "sk": {"S": timestamp(scheduled_time)},
            "kind": {"S": "verdict"},
            "verdict": {"S": verdict},
        }
        return self._put_new(item, now)

    def _put_new(self, item: dict[str, Any], now: datetime) -> bool:
        item["recordedAt"] = {"S": timestamp(now)}
        item["expiresAt"] = {"N": str(int((now + self.retention).timestamp()))}
        try:
            self.dynamodb.put_item(
                TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # -- reading

    def firings_on(self, day: datetime, scheduled_from: datetime) -> list[dict[str, Any]]:
        """The firing items of one UTC day scheduled at or after ``scheduled_from``."""
        return self._query(
            "pk = :pk AND sk >= :from",
            {
                ":pk": {"S": f"firing#{day.astimezone(UTC):%Y-%m-%d}"},
                ":from": {"S": timestamp(scheduled_from)},
            },
        )

    def chained_jobs(self, chain_id: str) -> list[RecordedJob]:
        items = self._query("pk = :pk", {":pk": {"S": chain_partition(chain_id)}})
        return [
            RecordedJob(
                job_id=item["jobId"]["S"],
                job_name=item["jobName"]["S"],
                job_queue=item["jobQueue"]["S"],
                hop=int(item["hop"]["N"]),
            )
            for item in items
        ]

    def verdicts(self, schedule: str, since: datetime) -> dict[str, str]:
        """Scheduled time -> verdict of the watch, for firings at or after ``since``."""
        items = self._query(
            "pk = :pk AND sk >= :from",
            {":pk": {"S": watch_partition(schedule)}, ":from": {"S": timestamp(since)}},
        )
        return {item["sk"]["S"]: item["verdict"]["S"] for item in items}

    def _query(self, condition: str, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        paginator = self.dynamodb.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=dict(values),
            ConsistentRead=True,
        ):
            items.extend(page["Items"])
        return items


def firing_jobs(item: Mapping[str, Any]) -> list[RecordedJob]:
    """The hop-0 jobs of a firing item."""
    return [
        RecordedJob(
            job_id=job["M"]["jobId"]["S"],
            job_name=job["M"]["jobName"]["S"],
            job_queue=job["M"]["jobQueue"]["S"],
            hop=0,
        )
        for job in item.get("jobs", {}).get("L", [])
    ]


def run_records(settings: RunSettings, dynamodb: DynamoDBClient) -> RunRecords | None:
    """The records of RUNS_TABLE, or None when the stack keeps none."""
    if not settings.runs_table:
        return None
    return RunRecords(settings.runs_table, settings.runs_retention_days, dynamodb)
