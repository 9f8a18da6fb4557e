"""Schedule submitter: a firing of EventBridge Scheduler or a cron rule becomes Batch jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from batchwire.idempotency import RunOnce, run_once_noting
from batchwire.jobs import (
    JobRequest,
    SubmittedJob,
    build_submit_requests,
    parse_job_request,
    submit_job_set,
    submit_via,
)

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

#: Prefix of the idempotency records the submitter writes.
IDEMPOTENCY_PREFIX = "batchwire.submitter"


@dataclass(frozen=True)
class Firing:
    """One firing of a schedule: its identity, its time, and the jobs it asks for."""

    identity: str
    scheduled_time: datetime
    request: JobRequest


def firing_from_event(event: Any, request_id: str, now: datetime) -> Firing:
    """Validate the event and work out the firing's identity.

    A Scheduler firing is identified by schedule ARN + scheduled time, which stay the same
    across Scheduler's own retries (its execution id does not). A constant-input cron rule
    carries no identity, so the Lambda request id stands in: it is stable across Lambda's
    asynchronous retries of the same event. A hash of the payload never is: the same payload
    fires every day.
    """
    request = parse_job_request(event)
    if request.schedule and request.scheduled_time:
        identity = f"{request.schedule}@{request.scheduled_time.isoformat()}"
        return Firing(identity=identity, scheduled_time=request.scheduled_time, request=request)
    return Firing(identity=f"request:{request_id}", scheduled_time=now, request=request)


def submit_scheduled_jobs(
    event: Any,
    *,
    request_id: str,
    now: datetime,
    batch: BatchClient,
    once: RunOnce,
) -> dict[str, Any]:
    """Submit the jobs a firing asks for, each exactly once per firing.

    Everything is validated before the first AWS call (RequestError otherwise). Each job
    is recorded under ``<firing>#<index>``, so a redelivery, or a retry after a partial
    failure, returns the jobs already submitted and submits only the missing ones.
    ``submittedNow`` counts the jobs this call submitted (0 for a redelivered firing).
    """
    firing = firing_from_event(event, request_id, now)
    submissions = build_submit_requests(firing.request, firing.scheduled_time)

    def submit_one(index: int, kwargs: dict[str, Any]) -> SubmittedJob:
        done = run_once_noting(
            once, f"{firing.identity}#{index}", lambda: submit_via(batch, kwargs).as_dict()
        )
        return SubmittedJob(**done.result, submitted_now=done.ran_now)

    jobs = submit_job_set(submissions, [job.jobName for job in firing.request.jobs], submit_one)
    return {
        "firing": firing.identity,
        "scheduledTime": firing.scheduled_time.isoformat(),
        "jobs": [job.as_dict() for job in jobs],
        "submittedNow": sum(job.submitted_now for job in jobs),
    }
