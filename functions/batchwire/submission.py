"""SubmitJob exactly once, although AWS Batch takes no idempotency token.

Every job is tagged with a hash of its submission's identity (``batchwire:submission``). An
attempt whose outcome is unknown, its answer lost or its result never saved, leaves its
in-progress idempotency record behind (batchwire.idempotency); the next delivery, which
replaces it, then looks for a job of the same name in the same queue carrying that tag
before it submits.

botocore would send a SubmitJob again by itself after a read timeout, a dropped connection
or a server error, each of which may come after Batch created the job: here it does not.
The call fails, the trigger delivers the event again, and that delivery looks first (a
minute or more later, when ListJobs shows the job). Throttling and connection failures,
which never reach Batch, are still retried by botocore.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from batchwire.idempotency import RunOnce, run_once_noting
from batchwire.jobs import SubmittedJob, submit_via

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

#: The tag that names the submission a job was started for.
SUBMISSION_TAG = "batchwire:submission"
#: Batch allows 50 tags a job; a job given all 50 has no room for the submission's.
MAX_TAGS = 50
_DESCRIBE_AT_ONCE = 100


def submission_token(identity: str) -> str:
    """The value of a job's SUBMISSION_TAG: 32 hex characters of the identity's hash."""
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def submit_once(
    once: RunOnce,
    batch: BatchClient,
    kwargs: Mapping[str, Any],
    identity: str,
    on_submitted: Callable[[SubmittedJob], None] | None = None,
) -> SubmittedJob:
    """SubmitJob ``kwargs`` once per ``identity``: a redelivery gets the job submitted first.

    ``on_submitted`` is called with a job submitted now (or found after an attempt no
    delivery reported) as soon as its record is saved, before a later job may fail the
    delivery: the redelivery then replays it from its record, and must not be the first to
    count it.
    """
    done = run_once_noting(once, identity, JobSubmission(batch, kwargs, identity))
    job = SubmittedJob(**done.result, submitted_now=done.ran_now)
    if job.submitted_now and on_submitted is not None:
        on_submitted(job)
    return job


class JobSubmission:
    """One idempotent SubmitJob (a Recoverable action for OnceStore.run_once)."""

    def __init__(self, batch: BatchClient, kwargs: Mapping[str, Any], identity: str) -> None:
        self.batch = batch
        self.kwargs = dict(kwargs)
        self.token = submission_token(identity)

    def __call__(self) -> dict[str, str]:
        """Submit the job, tagged with its submission; errors propagate (the trigger retries)."""
        _no_blind_resend(self.batch)
        kwargs = dict(self.kwargs)
        tags = dict(kwargs.get("tags") or {})
        if len(tags) < MAX_TAGS:
            kwargs["tags"] = {**tags, SUBMISSION_TAG: self.token}
        return submit_via(self.batch, kwargs).as_dict()

    def recover(self) -> dict[str, str] | None:
        """The job an earlier attempt of this submission started, if there is one."""
        name, queue = str(self.kwargs["jobName"]), str(self.kwargs["jobQueue"])
        ids: list[str] = []
        pages = self.batch.get_paginator("list_jobs").paginate(
            jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [name]}]
        )
        for page in pages:
            ids.extend(job["jobId"] for job in page.get("jobSummaryList", []))
        for start in range(0, len(ids), _DESCRIBE_AT_ONCE):
            described = self.batch.describe_jobs(jobs=ids[start : start + _DESCRIBE_AT_ONCE])
            for job in described.get("jobs", []):
                if (job.get("tags") or {}).get(SUBMISSION_TAG) == self.token:
                    return SubmittedJob(
                        jobName=job["jobName"],
                        jobId=job["jobId"],
                        jobArn=job.get("jobArn", ""),
                        jobQueue=queue,
                    ).as_dict()
        return None


def _no_blind_resend(batch: BatchClient) -> None:
    batch.meta.events.register(
        "needs-retry.batch.SubmitJob", _refuse_resend, unique_id="batchwire-submitjob-resend"
    )


def _refuse_resend(
    caught_exception: Exception | None = None, response: Any = None, **_: Any
) -> None:
    """botocore's needs-retry hook for SubmitJob: fail instead of resending a request Batch
    may have acted on (raising here ends botocore's retries with that error)."""
    if isinstance(caught_exception, ReadTimeoutError | ConnectionClosedError):
        raise caught_exception
    if response is not None and response[0].status_code >= 500:
        raise ClientError(response[1], "SubmitJob")
