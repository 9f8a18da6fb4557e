"""Driving a handler with generated events, and judging each outcome.

Every outcome must be one a person can act on:

- ``handled``: the handler returned and did its work (a redelivery found done included);
- ``ignored``: it returned having decided, on purpose, that the event asks for nothing;
- ``refused``: it raised a RequestError naming the problem, before any AWS call and any
  Slack post;
- ``records refused``: an SQS batch whose records it could not use are reported back to
  the queue (``batchItemFailures``), each for a RequestError, and no AWS call was made
  for a batch of which nothing was usable (the dispatcher's refusals are put in its
  dead-letter queue: that one call is how it refuses);
- ``refused by AWS``: the event passed every check and names something only the service
  can judge, which it answered does not exist (a job queue no one created): the error
  propagates so that the trigger retries, then dead-letters the event. Only the answers
  listed per handler (``UnknownResource``) count; any other ClientError fails the test.

Anything else fails the test with the event (hypothesis shrinks it to a minimal one): an
exception of another type, a refusal after an AWS call, a Slack post for a refused event.

AWS calls are seen with a ``before-send`` hook on the boto3 default session the handler's
clients come from, registered before moto's own, so every request a client is about to
send is recorded whether moto answers it or not.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import sys
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, Phase, given, settings
from moto import mock_aws
from moto.moto_api._internal import mock_random

from batchwire.errors import RequestError
from devtools.invoke import LocalContext
from devtools.local_aws import REGION
from tests.fuzz.events import EVENTS, EventPool, lambda_events

#: Events per handler: 1,000 in ``make test``; ``make fuzz`` sets 10,000.
EXAMPLES = int(os.environ.get("BATCHWIRE_FUZZ_EXAMPLES", "1000"))

HANDLED, IGNORED, REFUSED, RECORDS_REFUSED = "handled", "ignored", "refused", "records refused"
REFUSED_BY_AWS = "refused by AWS"


def fuzz_settings(examples: int = EXAMPLES) -> settings:
    """Derandomized (the same events on every run: CI fails or passes for the code alone)."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        # no coverage-traced explanation of a failure: the shrunk event says enough
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )


class AwsCalls:
    """The operations (``service.Operation``) the handler's clients sent, while recording."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self._recording = False

    def hook(self, event_name: str, **_: Any) -> None:
        if self._recording:
            self.sent.append(event_name.removeprefix("before-send."))

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[str]]:
        self.sent = []
        self._recording = True
        try:
            yield self.sent
        finally:
            self._recording = False


class CapturedLogs(logging.Handler):
    """The handler's log records (with their ``extra`` fields), while capturing."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def fields(self, name: str) -> list[Any]:
        """The value of extra field ``name`` in each record that has it, in order."""
        return [record.__dict__[name] for record in self.records if name in record.__dict__]


@dataclass(frozen=True)
class UnknownResource:
    """A service's answer that a resource the event names does not exist."""

    #: ``service.Operation`` as the hook records it (``batch.SubmitJob``).
    operation: str
    #: The error code (``ClientException``).
    code: str
    #: Words of the error message that say the resource is unknown.
    says: str

    def answered(self, invocation: Invocation) -> bool:
        error = invocation.error
        return (
            isinstance(error, ClientError)
            and self.operation in invocation.calls
            and self.operation.endswith(f".{error.operation_name}")
            and error.response.get("Error", {}).get("Code") == self.code
            and self.says in str(error.response.get("Error", {}).get("Message", ""))
        )


@dataclass
class Invocation:
    """One event, and everything the handler did with it."""

    event: Any
    #: The handler module that took it (its module-level state is part of the outcome).
    module: ModuleType | None = None
    result: Any = None
    error: BaseException | None = None
    calls: list[str] = field(default_factory=list)
    logs: CapturedLogs = field(default_factory=CapturedLogs)
    posts: int = 0

    def explain(self, problem: str) -> str:
        """The failure message: what is wrong, the event (cut), the calls and the traceback."""
        shown = json.dumps(self.event, ensure_ascii=False, default=repr)
        lines = [
            problem,
            f"event ({len(shown):,} characters): {shown[:1500]}",
            f"AWS calls: {self.calls}",
        ]
        if self.error is not None:
            lines.append("".join(traceback.format_exception(self.error)))
        return "\n".join(lines)

    def refused(self, unknown: tuple[UnknownResource, ...] = ()) -> str:
        """``refused`` when the handler raised a RequestError naming the problem before any
        AWS call and any Slack post, ``refused by AWS`` for an answer in ``unknown``; else
        the test fails, saying why."""
        if any(answer.answered(self) for answer in unknown):
            return REFUSED_BY_AWS
        if not isinstance(self.error, RequestError) or not str(self.error).strip():
            pytest.fail(self.explain("neither handled nor refused with a RequestError"))
        if self.calls or self.posts:
            pytest.fail(self.explain(f"refused after {self.posts} Slack posts and AWS calls"))
        return REFUSED


Classifier = Callable[[Invocation], str]


@dataclass
class Harness:
    """A handler module imported as on a cold start, with its calls and logs observed."""

    module: ModuleType
    function_name: str
    calls: AwsCalls
    #: The handler's Powertools logger, and what it logged during the last invocation.
    logger: logging.Logger
    logs: CapturedLogs
    #: Slack requests made so far (the notifier's stand-in), for the posts of one invocation.
    slack_requests: Callable[[], int] = lambda: 0
    #: Run after each invocation (the dispatcher stops the tasks it started).
    after: Callable[[Invocation], None] = lambda invocation: None

    def invoke(self, event: Any) -> Invocation:
        invocation = Invocation(event, self.module)
        context = LocalContext(
            function_name=self.function_name,
            memory_limit_in_mb=256,
            timeout_seconds=60,
            region=REGION,
        )
        self.logs.records = []
        posts_before = self.slack_requests()
        with (
            _muted(self.logger, self.logs),
            self.calls.recording() as sent,
            contextlib.redirect_stdout(io.StringIO()),  # the metrics' EMF lines
            warnings.catch_warnings(),
        ):
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            try:
                invocation.result = self.module.handler(event, context)
            except Exception as error:
                invocation.error = error
        invocation.calls = list(sent)
        invocation.logs = CapturedLogs()
        invocation.logs.records = list(self.logs.records)
        invocation.posts = self.slack_requests() - posts_before
        self.after(invocation)
        return invocation

    def fuzz(self, pool: EventPool, classify: Classifier, examples: int = EXAMPLES) -> Counter[str]:
        """Classify the handler's outcome for ``examples`` generated events; count each."""
        outcomes: Counter[str] = Counter()

        @fuzz_settings(examples)
        @given(event=lambda_events(pool))
        def one_event(event: Any) -> None:
            outcomes[classify(self.invoke(event))] += 1

        one_event()  # hypothesis may run a few events more than ``examples``: all are counted
        return outcomes


@contextlib.contextmanager
def _muted(logger: logging.Logger, keep: logging.Handler) -> Iterator[None]:
    """Only ``keep`` hears the handler's logger: thousands of JSON lines and tracebacks per
    test stay out of the test's output (pytest's own capture included)."""
    loggers = [logger, logging.getLogger("aws_lambda_powertools")]
    propagating = [each.propagate for each in loggers]
    handlers = [h for each in loggers for h in each.handlers if h is not keep]
    levels = [handler.level for handler in handlers]
    for each in loggers:
        each.propagate = False
    for handler in handlers:
        handler.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for handler, level in zip(handlers, levels, strict=True):
            handler.setLevel(level)
        for each, propagate in zip(loggers, propagating, strict=True):
            each.propagate = propagate


@contextlib.contextmanager
def cold_start(
    module_name: str,
    function_name: str,
    environ: Mapping[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Harness]:
    """Import handler ``module_name`` afresh with ``environ``, its AWS calls and logs observed.

    To be entered inside ``mock_aws`` with the handler's resources created: the hook goes
    on a new default session, which the module's clients (made at import) and any client
    it makes later copy it from.
    """
    service = module_name
    for name, value in {**environ, "POWERTOOLS_SERVICE_NAME": service}.items():
        monkeypatch.setenv(name, value)
    calls = AwsCalls()
    boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register_first("before-send", calls.hook)
    sys.modules.pop(module_name, None)
    module = importlib.import_module(module_name)

    logger = logging.getLogger(service)
    logs = CapturedLogs()
    logger.addHandler(logs)
    try:
        yield Harness(module, function_name, calls, logger, logs)
    finally:
        logger.removeHandler(logs)
        session.events.unregister("before-send", calls.hook)
        sys.modules.pop(module_name, None)


def record_counts(
    record_property: Callable[[str, object], None], handler: str, outcomes: Counter[str]
) -> None:
    """Hand the counts to the run's summary (tests/fuzz/conftest.py), xdist workers too."""
    record_property("fuzz_outcomes", json.dumps({"handler": handler, "outcomes": outcomes}))


def at_least(outcomes: Counter[str], examples: int = EXAMPLES) -> None:
    """The run fed the handler as many events as promised, and reached both sides of it."""
    assert sum(outcomes.values()) >= examples, outcomes
    assert outcomes[HANDLED] > 0, f"no generated event was handled: {outcomes}"
    assert outcomes[REFUSED] + outcomes[RECORDS_REFUSED] > 0, f"none was refused: {outcomes}"


@contextlib.contextmanager
def moto_in_process() -> Iterator[None]:
    """moto in-process, Batch jobs without Docker, and the same ids on every run: derandomized
    events made from what it created (subnet ids, ARNs) are the same events every time."""
    with mock_aws(config={"batch": {"use_docker": False}}):
        mock_random.seed(17)
        yield


def create_table(name: str) -> str:
    """A DynamoDB table keyed on ``id``, as the template's IdempotencyTable and AlertStateTable."""
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def sample(name: str) -> Any:
    """A sample event of events/."""
    return json.loads((EVENTS / name).read_text())
