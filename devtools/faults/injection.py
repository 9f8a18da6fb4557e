"""The faults, and the botocore event hooks that record every AWS call and fail one of them.

The hooks sit on the boto3 session the function's clients are made from (never on our own
code): ``before-call`` sees each API call once and notes the function's code that made it;
``before-send`` sees each HTTP attempt and answers the targeted call's first attempt with
the fault, an error in the service's own wire protocol or a botocore timeout. Later
attempts of that call are botocore's own retries.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

from devtools.template import ROOT

FUNCTIONS_DIR = ROOT / "functions"


@dataclass(frozen=True)
class Fault:
    """One way a call can fail."""

    name: str
    #: How the table names it.
    label: str
    #: What the service, or Slack, did with the request.
    meaning: str


THROTTLED = Fault(
    "throttled",
    "throttled",
    "the service refuses the request for its rate and does nothing: DynamoDB "
    "ProvisionedThroughputExceededException, SNS Throttling, Batch 429 TooManyRequestsException, "
    "S3 503 SlowDown, the others ThrottlingException; Slack 429 with `Retry-After: 1`",
)
SERVER_ERROR = Fault(
    "server-error",
    "5xx",
    "the service answers 500 without having acted (InternalServerError, ServerException, "
    "InternalError, InternalFailure); Slack 500 `rollup_error`",
)
READ_TIMEOUT = Fault(
    "read-timeout",
    "timeout after acting",
    "the request reached the service, which acted on it, and its answer never came back "
    "(botocore's ReadTimeoutError); Slack posted the message and answered after the webhook "
    "client's timeout",
)
CONNECT_TIMEOUT = Fault(
    "connect-timeout",
    "connection failed",
    "the request never reached the service (botocore's ConnectTimeoutError); Slack closed "
    "the connection without an answer, posting nothing",
)
ACCESS_DENIED = Fault(
    "access-denied",
    "access denied",
    "the service refuses the caller and does nothing (AccessDeniedException, AccessDenied, "
    "AuthorizationError), which no client retries; Slack 403 `action_prohibited`",
)
FAULTS: tuple[Fault, ...] = (THROTTLED, SERVER_ERROR, READ_TIMEOUT, CONNECT_TIMEOUT, ACCESS_DENIED)

#: (HTTP status, error code) per fault and service, as each service spells them.
_ERRORS: dict[str, dict[str, tuple[int, str]]] = {
    THROTTLED.name: {
        "dynamodb": (400, "ProvisionedThroughputExceededException"),
        "sns": (400, "Throttling"),
        "batch": (429, "TooManyRequestsException"),
        "s3": (503, "SlowDown"),
        "*": (400, "ThrottlingException"),
    },
    SERVER_ERROR.name: {
        "dynamodb": (500, "InternalServerError"),
        "batch": (500, "ServerException"),
        "ecs": (500, "ServerException"),
        "sns": (500, "InternalError"),
        "sqs": (500, "InternalError"),
        "s3": (500, "InternalError"),
        "*": (500, "InternalFailure"),
    },
    ACCESS_DENIED.name: {
        "sns": (403, "AuthorizationError"),
        "sqs": (403, "AccessDenied"),
        "s3": (403, "AccessDenied"),
        "batch": (403, "AccessDeniedException"),
        "*": (400, "AccessDeniedException"),
    },
}


def _response(url: str, status: int, headers: Mapping[str, str], body: bytes) -> AWSResponse:
    """An HTTP answer made here, as botocore reads one from the wire."""
    http_headers = HTTPHeaders()
    for name, value in headers.items():
        http_headers[name] = value
    return AWSResponse(url, status, http_headers, _Body(body))


class _Body:
    """The raw body of an answer made here, as botocore reads one."""

    def __init__(self, content: bytes) -> None:
        self.content = content

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.content


def error_response(url: str, protocol: str, service: str, fault: Fault) -> AWSResponse:
    """The error answer of ``service`` for ``fault``, in the service's wire protocol."""
    codes = _ERRORS[fault.name]
    status, code = codes.get(service, codes["*"])
    message = f"{code} (injected by devtools.faults)"
    request_id = str(uuid.uuid4())
    headers = {"x-amzn-RequestId": request_id}
    if protocol in ("json", "rest-json"):
        headers["Content-Type"] = (
            "application/x-amz-json-1.0" if protocol == "json" else "application/json"
        )
        headers["x-amzn-ErrorType"] = code
        body = json.dumps({"__type": code, "message": message}).encode()
    elif protocol == "query":
        kind = "Receiver" if status >= 500 else "Sender"
        headers["Content-Type"] = "text/xml"
        body = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId>"
            "</ErrorResponse>"
        ).encode()
    elif protocol == "rest-xml":
        headers["Content-Type"] = "application/xml"
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
    else:
        raise ValueError(f"{service}: no injected errors in protocol {protocol!r}; add them here")
    return _response(url, status, headers, body)


@dataclass(frozen=True, order=True)
class CallSite:
    """One call a scenario makes: the nth call of an operation, and the code that made it."""

    service: str
    operation: str
    #: 1 for the first call of the operation in the scenario, 2 for the second...
    occurrence: int
    #: The function's own code that made the call (``module:function <- module:caller``).
    where: str = field(default="", compare=False)

    @property
    def label(self) -> str:
        return f"{self.service} {self.operation} #{self.occurrence}"


SLACK = "slack"
SLACK_POST = "webhook POST"
SLACK_WHERE = "slack:WebhookDelivery.post (slack_sdk)"


def slack_sites(posts: int) -> list[CallSite]:
    """The call sites of ``posts`` Slack posts."""
    return [CallSite(SLACK, SLACK_POST, n, SLACK_WHERE) for n in range(1, posts + 1)]


def _where() -> str:
    """The function's own code on the stack: its innermost frame, and the nearest caller
    outside that function and outside batchwire.idempotency."""
    frames: list[str] = []
    frame: Any = sys._getframe(2)
    root = str(FUNCTIONS_DIR) + os.sep
    while frame is not None and len(frames) < 2:
        filename = frame.f_code.co_filename
        if filename.startswith(root):
            module = filename[len(root) :].removesuffix(".py").replace(os.sep, ".")
            module = module.removeprefix("batchwire.")
            name = f"{module}:{frame.f_code.co_qualname.replace('<locals>.', '')}"
            if not frames or (module != "idempotency" and not frames[0].startswith(name)):
                frames.append(name)
        frame = frame.f_back
    return " <- ".join(frames)


class Injector:
    """Records every AWS call of a boto3 session and fails the targeted one once.

    ECS RunTask's ``clientToken`` is honoured as ECS honours it, which moto does not: a
    token seen before gets the first answer again, and no second task.
    """

    def __init__(self) -> None:
        self.calls: list[CallSite] = []
        #: Every SQS queue a message was sent to, since the hooks were installed.
        self.queues_written: set[str] = set()
        #: The calls to fail in this delivery, each once, and those failed so far.
        self.targets: tuple[tuple[CallSite, Fault], ...] = ()
        self.failed: set[CallSite] = set()
        #: How often botocore sent each failed call again.
        self.resends: Counter[CallSite] = Counter()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._current: CallSite | None = None
        self._protocol = ""
        self._armed: Fault | None = None
        self._run_task_answers: dict[str, tuple[dict[str, str], bytes]] = {}
        self._http = URLLib3Session(timeout=30)
        self._lock = threading.Lock()

    def install(self, session: boto3.Session) -> None:
        """Hook into every client ``session`` makes from now on."""
        session.events.register("before-parameter-build.sqs", self._note_queue)
        session.events.register("before-call", self._before_call)
        # a before-send handler may answer in place of the service (the stubs say None)
        before_send = cast(Callable[..., None], self._before_send)
        session.events.register("before-send", before_send)

    def begin(self, *targets: tuple[CallSite, Fault] | None) -> None:
        """Start a delivery: calls counted from zero, each of ``targets`` failing once (a
        None among them stands for none)."""
        self.targets = tuple(target for target in targets if target is not None)
        self.calls, self.failed = [], set()
        self.resends = Counter()
        self._counts.clear()
        self._current, self._armed = None, None

    @property
    def resent(self) -> int:
        """How often botocore sent a failed call again, all of them together."""
        return sum(self.resends.values())

    @property
    def fired(self) -> bool:
        """Whether every targeted call was made, and failed."""
        return all(site in self.failed for site, _ in self.targets)

    def forget_tokens(self) -> None:
        """ECS forgets every client token (a new world)."""
        self._run_task_answers.clear()

    def _note_queue(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in ("SendMessage", "SendMessageBatch") and "QueueUrl" in params:
            self.queues_written.add(str(params["QueueUrl"]))

    def _before_call(self, model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        key = (service, model.name)
        self._counts[key] += 1
        self._current = CallSite(service, model.name, self._counts[key], _where())
        self.calls.append(self._current)
        self._protocol = model.service_model.resolved_protocol or model.service_model.protocol
        self._armed = next(
            (
                fault
                for site, fault in self.targets
                if site == self._current and site not in self.failed
            ),
            None,
        )

    def _before_send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        fault, self._armed = self._armed, None
        if fault is None:
            if self._current is not None and self._current in self.failed:
                self.resends[self._current] += 1
            return self._run_task(request) if self._is_run_task() else None
        assert self._current is not None
        self.failed.add(self._current)
        if fault is READ_TIMEOUT:
            # the service acts on the request; only its answer is lost
            if self._is_run_task():
                self._run_task(request)
            else:
                self._http.send(request).content  # noqa: B018 (read through: the service acts)
            raise ReadTimeoutError(endpoint_url=request.url, error="read timeout (injected)")
        if fault is CONNECT_TIMEOUT:
            raise ConnectTimeoutError(endpoint_url=request.url, error="connect timeout (injected)")
        return error_response(request.url, self._protocol, self._current.service, fault)

    def _is_run_task(self) -> bool:
        site = self._current
        return site is not None and (site.service, site.operation) == ("ecs", "RunTask")

    def _run_task(self, request: AWSPreparedRequest) -> AWSResponse | None:
        body = request.body
        text = body.decode() if isinstance(body, bytes) else str(body or "")
        token = json.loads(text or "{}").get("clientToken")
        if not token:
            return None
        with self._lock:
            if token not in self._run_task_answers:
                answer = self._http.send(request)
                content = answer.content
                if answer.status_code != 200:
                    return _response(request.url, answer.status_code, answer.headers, content)
                self._run_task_answers[token] = (dict(answer.headers), content)
            headers, content = self._run_task_answers[token]
        return _response(request.url, 200, headers, content)


class Backoff:
    """Stands in for the ``time`` module botocore.endpoint sleeps with between retries."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def sleep(self, seconds: float) -> None:
        self.seconds += seconds


@contextlib.contextmanager
def unslept_backoff() -> Iterator[Backoff]:
    """botocore's retries without their waits, which change nothing the local AWS sees; the
    waits are added up instead (an invocation's duration counts them)."""
    import botocore.endpoint

    backoff = Backoff()
    saved = botocore.endpoint.time  # type: ignore[attr-defined]
    botocore.endpoint.time = backoff  # type: ignore[attr-defined]
    try:
        yield backoff
    finally:
        botocore.endpoint.time = saved  # type: ignore[attr-defined]
