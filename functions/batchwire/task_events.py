"""The ECS Task State Change event, and the attempt marker a relaunched task carries.

ECS says nothing about attempts: the retrier writes ``batchwire-retry/<attempt>/<origin>``
into ``startedBy`` of every task it starts (``origin`` is the id of the task the
scheduler first started), and ECS hands it back in that task's own STOPPED event.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from botocore.exceptions import ClientError, ParamValidationError
from botocore.validate import validate_parameters

from batchwire.errors import RequestError, describe_validation_error

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

#: ``startedBy`` allows up to 128 letters, digits, ``-``, ``_`` and ``/``.
MARKER_PREFIX = "batchwire-retry"
_MARKER = re.compile(rf"^{MARKER_PREFIX}/(?P<attempt>[1-9][0-9]{{0,2}})/(?P<origin>[A-Za-z0-9-]+)$")
MAX_CLIENT_TOKEN = 64
#: The largest event EventBridge delivers (its PutEvents limit), in bytes of compact JSON.
MAX_EVENT_BYTES = 256 * 1024
#: The container environment variable that names the queued message a task was started
#: for (the dispatcher's, watchbot's name); relaunches keep the overrides, so every run has it.
MESSAGE_ID_VARIABLE = "MessageId"

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]

# AWS adds fields to its events over time: the models below ignore the keys they do not
# name and refuse nothing for them (no forbid_unknown_fields).


class ContainerState(msgspec.Struct, frozen=True):
    name: NonEmpty
    exitCode: int | None = None
    reason: str | None = None
    lastStatus: str | None = None


class AttachmentDetail(msgspec.Struct, frozen=True):
    name: str
    value: str | None = None


class Attachment(msgspec.Struct, frozen=True):
    type: str | None = None
    details: list[AttachmentDetail] = []


class TaskDetail(msgspec.Struct, frozen=True):
    """``detail`` of an ECS Task State Change, the fields the retrier reads."""

    taskArn: Annotated[str, msgspec.Meta(pattern=r"^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task/.+")]
    clusterArn: Annotated[
        str, msgspec.Meta(pattern=r"^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:cluster/.+")
    ]
    taskDefinitionArn: Annotated[
        str,
        msgspec.Meta(
            pattern=r"^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition/[A-Za-z0-9_-]+:\d+$"
        ),
    ]
    lastStatus: NonEmpty
    containers: list[ContainerState] = []
    stopCode: str | None = None
    stoppedReason: str | None = None
    group: str | None = None
    startedBy: str | None = None
    launchType: str | None = None
    capacityProviderName: str | None = None
    platformVersion: str | None = None
    overrides: dict[str, Any] | None = None
    attachments: list[Attachment] = []


class TaskStateChange(msgspec.Struct, frozen=True, kw_only=True):
    id: NonEmpty
    source: str
    detail_type: str = msgspec.field(name="detail-type")
    account: str = ""
    region: str = ""
    time: str = ""
    detail: TaskDetail


@dataclass(frozen=True)
class Attempt:
    """Which run of a scheduled task this is: ``number`` 1 is the run the scheduler started."""

    number: int
    origin: str

    @property
    def started_by(self) -> str:
        return f"{MARKER_PREFIX}/{self.number}/{self.origin}"

    def next(self) -> Attempt:
        return Attempt(self.number + 1, self.origin)

    def client_token(self, placement_try: int) -> str:
        """RunTask's idempotency token: one per origin, attempt and placement try.

        Task ids are 32 or 36 characters, so the token reads ``<origin>-<attempt>-<try>``;
        anything longer is hashed rather than cut, which could make two tokens equal.
        """
        token = f"{self.origin}-{self.number}-{placement_try}"
        if len(token) <= MAX_CLIENT_TOKEN:
            return token
        return hashlib.sha256(token.encode()).hexdigest()[:MAX_CLIENT_TOKEN]


def parse_task_state_change(event: Any) -> TaskStateChange:
    """Validate an ECS Task State Change; RequestError names each wrong field."""
    if not isinstance(event, dict):
        raise RequestError("ECS event must be a JSON object", [f"(event): got {type(event)}"])
    try:
        parsed = msgspec.convert(event, TaskStateChange)
    except msgspec.ValidationError as error:
        raise RequestError(
            "not a usable ECS Task State Change event", describe_validation_error(error, event)
        ) from None
    problems = []
    size = len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_EVENT_BYTES:
        problems.append(f"(event): {size:,} bytes, over EventBridge's {MAX_EVENT_BYTES:,}")
    if parsed.source != "aws.ecs":
        problems.append(f"source: expected 'aws.ecs' (got {parsed.source!r})")
    if parsed.detail_type != "ECS Task State Change":
        problems.append(
            f"detail-type: expected 'ECS Task State Change' (got {parsed.detail_type!r})"
        )
    if problems:
        raise RequestError("not an ECS Task State Change event", problems)
    return parsed


def task_id(task_arn: str) -> str:
    """The task id: last part of ``task/<cluster>/<id>`` (or of the old ``task/<id>``)."""
    return task_arn.rsplit("/", 1)[-1]


def task_family(task_definition_arn: str) -> str:
    """``family`` of ``arn:...:task-definition/family:revision``."""
    return task_definition_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]


def attempt_of(detail: TaskDetail) -> Attempt:
    """The attempt this task was, read back from its ``startedBy`` marker.

    A task without the marker was started by something else (the scheduler, a person):
    it is attempt 1 and the origin of its own retries.
    """
    match = _MARKER.match(detail.startedBy or "")
    if match:
        return Attempt(int(match["attempt"]), match["origin"])
    return Attempt(1, task_id(detail.taskArn))


def subnets_of(detail: TaskDetail) -> list[str]:
    """Subnets of the task's network interfaces (the event has no security groups)."""
    subnets: list[str] = []
    for attachment in detail.attachments:
        for item in attachment.details:
            if item.name == "subnetId" and item.value and item.value not in subnets:
                subnets.append(item.value)
    return subnets


def message_id_of(detail: TaskDetail) -> str | None:
    """The id of the queued message the task was started for, or None for other tasks.

    Read from the ``MessageId`` variable of the containers' environment overrides, where
    the queue dispatcher puts it (the first container that has one, if several do).
    """
    overrides = detail.overrides or {}
    for container in _list(overrides.get("containerOverrides")):
        if not isinstance(container, dict):
            continue
        for variable in _list(container.get("environment")):
            if (
                isinstance(variable, dict)
                and variable.get("name") == MESSAGE_ID_VARIABLE
                and isinstance(variable.get("value"), str)
                and variable["value"]
            ):
                return str(variable["value"])
    return None


def _list(value: Any) -> list[Any]:
    """``value`` when the event has a list there, else nothing to read."""
    return value if isinstance(value, list) else []


#: RunTask errors that say "not now": the call is tried again later, never counted as a run.
TRANSIENT_ERROR_CODES = frozenset(
    {"ThrottlingException", "Throttling", "RequestLimitExceeded", "ServerException"}
)


def check_run_task_request(
    ecs: ECSClient, request: Mapping[str, Any], summary: str, where: str
) -> None:
    """Refuse ``request`` where botocore would refuse it as RunTask's parameters, before any
    call: RequestError(``summary``) with a line per problem, each under ``where``."""
    shape = ecs.meta.service_model.operation_model("RunTask").input_shape
    if shape is None:  # botocore's model of RunTask has its parameters: nothing to check else
        return
    try:
        validate_parameters(dict(request), shape)
    except ParamValidationError as error:
        report = str(error.kwargs.get("report", error))
        problems = [f"{where}: {_clipped(line)}" for line in report.splitlines() if line.strip()]
        raise RequestError(summary, problems) from None


def _clipped(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_task(ecs: ECSClient, request: dict[str, Any], client_token: str) -> dict[str, Any]:
    """One RunTask call: ``{"taskArn"}`` when a task started, else ``{"failures"}``.

    A 200 answer without a task is a failure, never a success. Throttling and server
    errors become failures too (tried later); any other error propagates.
    """
    try:
        response = ecs.run_task(**request, clientToken=client_token)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code not in TRANSIENT_ERROR_CODES:
            raise
        message = error.response.get("Error", {}).get("Message", "")
        return {"failures": [{"reason": code, "detail": message}]}
    tasks = response.get("tasks", [])
    if tasks:
        return {"taskArn": tasks[0]["taskArn"]}
    failures = [
        {key: str(failure[key]) for key in ("arn", "reason", "detail") if key in failure}
        for failure in response.get("failures", [])
    ]
    return {"failures": failures or [{"reason": "NO_TASK", "detail": "RunTask started no task"}]}
