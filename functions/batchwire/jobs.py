"""The job request: what a schedule or a chain rule asks AWS Batch to run.

A request names one or more jobs in the shape of Batch SubmitJob (camelCase keys). It is
validated completely before any AWS call, against the limits Batch enforces either at
submit time or, worse, only when the job later fails.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

import msgspec

from batchwire.errors import RequestError, describe_validation_error

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

JOB_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
MAX_CONTAINER_OVERRIDES_CHARS = 8192
MAX_REQUEST_BYTES = 30 * 1024
MAX_JOBS_PER_REQUEST = 20

#: The keys of a single job, in SubmitJob spelling. Anything else is refused.
JOB_FIELDS = (
    "jobName",
    "jobQueue",
    "jobDefinition",
    "containerOverrides",
    "parameters",
    "dependsOn",
    "arrayProperties",
    "retryStrategy",
    "timeout",
    "tags",
    "propagateTags",
    "schedulingPriorityOverride",
    "shareIdentifier",
)

NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """A part of a job request: unknown keys are refused, optional fields default to None.

    As every default is None, ``msgspec.to_builtins`` (omit_defaults) leaves out exactly the
    fields the request did not give. Subclasses inherit this configuration; they repeat
    ``frozen=True`` for type checkers.
    """


class EnvironmentVariable(_Strict, frozen=True):
    name: NonEmptyStr
    value: str

    def __post_init__(self) -> None:
        if self.name.upper().startswith("AWS_BATCH"):
            raise ValueError(
                f"name {self.name!r}: names starting with AWS_BATCH are reserved by AWS Batch"
            )


class ResourceRequirement(_Strict, frozen=True):
    type: Literal["GPU", "VCPU", "MEMORY"]
    value: NonEmptyStr


class ContainerOverrides(_Strict, frozen=True):
    command: list[str] | None = None
    environment: list[EnvironmentVariable] | None = None
    resourceRequirements: list[ResourceRequirement] | None = None
    instanceType: NonEmptyStr | None = None

    def __post_init__(self) -> None:
        size = len(_compact_json(msgspec.to_builtins(self)))
        if size > MAX_CONTAINER_OVERRIDES_CHARS:
            raise ValueError(
                f"{size:,} characters, over Batch's limit of "
                f"{MAX_CONTAINER_OVERRIDES_CHARS:,} (the job would fail after submission)"
            )


class JobDependency(_Strict, frozen=True):
    """A dependency on a Batch job id, or on an earlier job of the same request by name."""

    jobId: NonEmptyStr | None = None
    jobName: NonEmptyStr | None = None
    type: Literal["N_TO_N", "SEQUENTIAL"] | None = None

    def __post_init__(self) -> None:
        if (self.jobId is None) == (self.jobName is None):
            raise ValueError("give exactly one of jobId or jobName")


class ArrayProperties(_Strict, frozen=True):
    size: Annotated[int, msgspec.Meta(ge=2, le=10_000)]


class EvaluateOnExit(_Strict, frozen=True):
    action: Annotated[str, msgspec.Meta(pattern=r"(?i)^(RETRY|EXIT)$")]
    onStatusReason: str | None = None
    onReason: str | None = None
    onExitCode: str | None = None


class RetryStrategy(_Strict, frozen=True):
    attempts: Annotated[int, msgspec.Meta(ge=1, le=10)] | None = None
    evaluateOnExit: Annotated[list[EvaluateOnExit], msgspec.Meta(max_length=5)] | None = None


class JobTimeout(_Strict, frozen=True):
    attemptDurationSeconds: Annotated[int, msgspec.Meta(ge=60)]


class JobSpec(_Strict, frozen=True):
    """One SubmitJob call, as written in a schedule or chain rule."""

    jobName: NonEmptyStr
    jobQueue: NonEmptyStr
    jobDefinition: NonEmptyStr
    containerOverrides: ContainerOverrides | None = None
    parameters: dict[str, str] | None = None
    dependsOn: Annotated[list[JobDependency], msgspec.Meta(max_length=20)] | None = None
    arrayProperties: ArrayProperties | None = None
    retryStrategy: RetryStrategy | None = None
    timeout: JobTimeout | None = None
    tags: Annotated[dict[str, str], msgspec.Meta(max_length=50)] | None = None
    propagateTags: bool | None = None
    schedulingPriorityOverride: Annotated[int, msgspec.Meta(ge=0, le=9999)] | None = None
    shareIdentifier: NonEmptyStr | None = None

    def __post_init__(self) -> None:
        for key in self.tags or {}:
            if key.lower().startswith("aws:"):
                raise ValueError(f"tag key {key!r}: the aws: prefix is reserved")


class Expectation(_Strict, frozen=True):
    """What a schedule promises about each firing, checked by the watch: its jobs, and the
    jobs they chain, succeed within ``withinMinutes`` of the scheduled time.

    ``jobs`` are glob patterns over the submitted job names (``nightly-*``), each of which
    must match a job that SUCCEEDED; without it, every job of the firing and of its chain
    must succeed. A firing with no run record ``graceMinutes`` after its time never fired.
    """

    withinMinutes: Annotated[int, msgspec.Meta(ge=1, le=10080)]
    jobs: Annotated[list[NonEmptyStr], msgspec.Meta(min_length=1, max_length=50)] | None = None
    graceMinutes: Annotated[int, msgspec.Meta(ge=0, le=1440)] | None = None

    @property
    def grace_minutes(self) -> int:
        return 15 if self.graceMinutes is None else self.graceMinutes


@dataclass(frozen=True)
class JobRequest:
    """What one firing asks for: jobs to submit, and the firing's identity when known."""

    jobs: list[JobSpec]
    schedule: str | None = None
    scheduled_time: datetime | None = None
    expect: Expectation | None = None
    #: True when the request was written as a single job at the top level; paths then
    #: read ``containerOverrides...`` rather than ``jobs[0].containerOverrides...``.
    single: bool = False


class _RequestEnvelope(_Strict, frozen=True):
    jobs: Annotated[
        list[dict[str, Any]], msgspec.Meta(min_length=1, max_length=MAX_JOBS_PER_REQUEST)
    ]
    schedule: NonEmptyStr | None = None
    scheduledTime: datetime | None = None
    expect: Expectation | None = None


#: Keys of a request that describe the firing, not a job (also in a single-job request).
FIRING_KEYS = ("schedule", "scheduledTime", "expect")


@dataclass(frozen=True)
class SubmittedJob:
    """A job Batch accepted."""

    jobName: str
    jobId: str
    jobArn: str
    jobQueue: str
    #: False when an earlier delivery submitted the job and this one found it recorded.
    submitted_now: bool = field(default=True, compare=False)

    def as_dict(self) -> dict[str, str]:
        return {
            "jobName": self.jobName,
            "jobId": self.jobId,
            "jobArn": self.jobArn,
            "jobQueue": self.jobQueue,
        }


def parse_job_request(payload: Any) -> JobRequest:
    """Validate a request written either as one job at the top level or as ``{"jobs": [...]}``.

    Raises RequestError listing the problems, each with its field path: the first problem
    of each job (every job is checked) and those of the request as a whole.
    """
    if not isinstance(payload, Mapping):
        raise RequestError(
            "job request must be a JSON object", [f"(request): got {type(payload).__name__}"]
        )
    single = "jobs" not in payload
    if single:
        firing_keys = {key: payload[key] for key in FIRING_KEYS if key in payload}
        envelope_input: dict[str, Any] = {
            "jobs": [{k: v for k, v in payload.items() if k not in firing_keys}],
            **firing_keys,
        }
    else:
        envelope_input = dict(payload)
    try:
        envelope = msgspec.convert(envelope_input, _RequestEnvelope)
    except msgspec.ValidationError as error:
        raise RequestError(
            "invalid job request", describe_validation_error(error, envelope_input)
        ) from None

    problems: list[str] = []
    jobs: list[JobSpec] = []
    for index, raw in enumerate(envelope.jobs):
        prefix = "" if single else f"jobs[{index}]"
        try:
            jobs.append(msgspec.convert(raw, JobSpec))
        except msgspec.ValidationError as error:
            problems.extend(describe_validation_error(error, raw, prefix))
    if envelope.schedule and envelope.scheduledTime is None:
        problems.append("scheduledTime: required with schedule (the firing's identity)")
    if envelope.scheduledTime is not None and not envelope.schedule:
        problems.append("schedule: required with scheduledTime (the firing's identity)")
    if envelope.scheduledTime is not None and envelope.scheduledTime.tzinfo is None:
        problems.append("scheduledTime: needs a time zone, as in 2026-11-23T02:00:00Z")
    if not problems:
        problems.extend(_check_dependencies(jobs, single))
    if problems:
        raise RequestError("invalid job request", problems)
    return JobRequest(
        jobs=jobs,
        schedule=envelope.schedule,
        scheduled_time=envelope.scheduledTime,
        expect=envelope.expect,
        single=single,
    )


def _check_dependencies(jobs: Sequence[JobSpec], single: bool) -> list[str]:
    problems = []
    earlier: set[str] = set()
    for index, job in enumerate(jobs):
        for dep_index, dependency in enumerate(job.dependsOn or []):
            if dependency.jobName is not None and dependency.jobName not in earlier:
                path = f"{'' if single else f'jobs[{index}].'}dependsOn[{dep_index}].jobName"
                problems.append(
                    f"{path}: {dependency.jobName!r} is not an earlier job of this request"
                )
        earlier.add(job.jobName)
    return problems


def render_job_name(template: str, scheduled_time: datetime) -> str:
    """Fill ``{scheduled_time:%Y%m%d}``-style fields; the only field is ``scheduled_time``."""
    fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    unknown = sorted({field for field in fields if field != "scheduled_time"})
    if unknown:
        raise ValueError(f"unknown template field(s) {unknown}; only scheduled_time is available")
    try:
        return template.format(scheduled_time=scheduled_time)
    except (ValueError, IndexError) as error:
        raise ValueError(f"cannot fill template {template!r}: {error}") from None


def build_submit_requests(request: JobRequest, scheduled_time: datetime) -> list[dict[str, Any]]:
    """Turn a validated request into SubmitJob keyword arguments, one per job.

    Job names are rendered with ``scheduled_time``; a ``dependsOn`` by name is left as
    ``{"jobName": ...}`` for :func:`submit_job_set` to resolve to the real job id.
    Raises RequestError when a rendered name breaks Batch's rules or a call grows too big.
    """
    problems: list[str] = []
    submissions: list[dict[str, Any]] = []
    for index, job in enumerate(request.jobs):
        prefix = "" if request.single else f"jobs[{index}]."
        kwargs = msgspec.to_builtins(job)
        try:
            name = render_job_name(job.jobName, scheduled_time)
        except ValueError as error:
            problems.append(f"{prefix}jobName: {error}")
            continue
        if not JOB_NAME_PATTERN.match(name):
            problems.append(
                f"{prefix}jobName: {name!r} does not match {JOB_NAME_PATTERN.pattern} "
                "(letters, digits, - and _, up to 128, starting with a letter or digit)"
            )
            continue
        kwargs["jobName"] = name
        size = len(_compact_json(kwargs).encode())
        if size > MAX_REQUEST_BYTES:
            problems.append(
                f"{prefix.rstrip('.') or '(request)'}: SubmitJob request is "
                f"{size:,} bytes, over the 30 KiB limit"
            )
            continue
        submissions.append(kwargs)
    if problems:
        raise RequestError("invalid job request", problems)
    return submissions


def submit_job_set(
    submissions: Sequence[Mapping[str, Any]],
    templates: Sequence[str],
    submit_one: SubmitOne,
) -> list[SubmittedJob]:
    """Submit jobs in order, resolving ``dependsOn`` by name to the ids Batch returned.

    ``templates`` are the job names as written (before rendering): a dependency may name
    either. ``submit_one(index, kwargs)`` performs one idempotent SubmitJob.
    """
    ids_by_name: dict[str, str] = {}
    submitted: list[SubmittedJob] = []
    for index, kwargs in enumerate(submissions):
        call = dict(kwargs)
        if "dependsOn" in call:
            call["dependsOn"] = [_resolve_dependency(dep, ids_by_name) for dep in call["dependsOn"]]
        job = submit_one(index, call)
        submitted.append(job)
        ids_by_name[templates[index]] = job.jobId
        ids_by_name[job.jobName] = job.jobId
    return submitted


class SubmitOne(Protocol):
    def __call__(self, index: int, kwargs: dict[str, Any]) -> SubmittedJob: ...


def submit_via(batch: BatchClient, kwargs: Mapping[str, Any]) -> SubmittedJob:
    """One SubmitJob call; errors from Batch propagate so the trigger retries."""
    response = batch.submit_job(**kwargs)
    return SubmittedJob(
        jobName=response["jobName"],
        jobId=response["jobId"],
        jobArn=response.get("jobArn", ""),
        jobQueue=str(kwargs["jobQueue"]),
    )


def _resolve_dependency(
    dependency: Mapping[str, str], ids_by_name: Mapping[str, str]
) -> dict[str, str]:
    resolved = {"jobId": dependency.get("jobId") or ids_by_name[dependency["jobName"]]}
    if "type" in dependency:
        resolved["type"] = dependency["type"]
    return resolved


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
