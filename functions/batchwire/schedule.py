"""Schedule submitter: a firing of EventBridge Scheduler or a cron rule becomes Batch jobs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from batchwire.chain_rules import (
    CHAIN_HOP_TAG,
    CHAIN_HOP_VARIABLE,
    CHAIN_ID_TAG,
    CHAIN_ID_VARIABLE,
)
from batchwire.errors import RequestError
from batchwire.idempotency import RunOnce
from batchwire.jobs import (
    JobRequest,
    SubmittedJob,
    build_submit_requests,
    parse_job_request,
    submit_job_set,
)
from batchwire.runs import RunRecords, chain_id_for_firing
from batchwire.submission import submit_once

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

#: The most tags Batch allows a job.
MAX_BATCH_TAGS = 50
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
    runs: RunRecords | None = None,
    on_submitted: Callable[[SubmittedJob], None] | None = None,
) -> dict[str, Any]:
    """Submit the jobs a firing asks for, each exactly once per firing.

    Everything is validated before the first AWS call (RequestError otherwise). Each job
    is recorded under ``<firing>#<index>``, so a redelivery, or a retry after a partial
    failure, returns the jobs already submitted and submits only the missing ones.
    ``submittedNow`` counts the jobs this call submitted (0 for a redelivered firing), a
    job found by the lookup after an attempt whose outcome was unknown included (no
    delivery reported it). ``on_submitted`` is called with each of those as soon as its
    record is saved, before a later job or the run record may fail the call: the
    redelivery then replays it from its record, and must not be the first to count it.

    The jobs are hop 0 of a chain named after the firing (BATCHWIRE_CHAIN_ID and _HOP in
    their environment and tags), so what they chain can be traced back to it. With ``runs``,
    the firing and its jobs are recorded once all are submitted; a failure to record fails
    the call, and the redelivery records it (the jobs are not submitted again).
    """
    firing = firing_from_event(event, request_id, now)
    chain_id = chain_id_for_firing(firing.identity)
    submissions = build_submit_requests(firing.request, firing.scheduled_time)
    crowded = [
        f"{'' if firing.request.single else f'jobs[{index}].'}tags: {len(kwargs['tags'])} "
        f"tags; batchwire adds 2 (the chain id and hop) and Batch allows {MAX_BATCH_TAGS}, "
        f"so a job may have {MAX_BATCH_TAGS - 2} of its own"
        for index, kwargs in enumerate(submissions)
        if len(kwargs.get("tags") or {}) > MAX_BATCH_TAGS - 2
    ]
    if crowded:
        raise RequestError("invalid job request", crowded)
    submissions = [_at_chain_start(kwargs, chain_id) for kwargs in submissions]

    def submit_one(index: int, kwargs: dict[str, Any]) -> SubmittedJob:
        return submit_once(once, batch, kwargs, f"{firing.identity}#{index}", on_submitted)

    jobs = submit_job_set(submissions, [job.jobName for job in firing.request.jobs], submit_one)
    if runs is not None:
        runs.record_firing(
            identity=firing.identity,
            schedule=firing.request.schedule,
            scheduled_time=firing.scheduled_time,
            chain_id=chain_id,
            jobs=jobs,
            now=now,
        )
    return {
        "firing": firing.identity,
        "scheduledTime": firing.scheduled_time.isoformat(),
        "chainId": chain_id,
        "jobs": [job.as_dict() for job in jobs],
        "submittedNow": sum(job.submitted_now for job in jobs),
    }


def _at_chain_start(kwargs: dict[str, Any], chain_id: str) -> dict[str, Any]:
    """SubmitJob arguments with the chain position of a firing's own job (hop 0) added."""
    overrides = dict(kwargs.get("containerOverrides") or {})
    overrides["environment"] = [
        *overrides.get("environment", []),
        {"name": CHAIN_ID_VARIABLE, "value": chain_id},
        {"name": CHAIN_HOP_VARIABLE, "value": "0"},
    ]
    tags = {**(kwargs.get("tags") or {}), CHAIN_ID_TAG: chain_id, CHAIN_HOP_TAG: "0"}
    return {**kwargs, "containerOverrides": overrides, "tags": tags}
