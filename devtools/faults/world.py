"""The local world the matrix runs in: a deployed stack, how to invoke its functions in this
process as Lambda would, how to read their side effects back, and how to reset it all."""

from __future__ import annotations

import contextlib
import copy
import gc
import importlib
import io
import json
import logging
import os
import re
import sys
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3

from devtools.ecs_local import EcsWorkload
from devtools.faults.injection import FUNCTIONS_DIR, Injector, unslept_backoff
from devtools.local_aws import LocalAws, sqs_event
from devtools.rehearse import DeployedStack
from devtools.slack_receiver import SlackReceiver

#: The deadline each invocation gets (the timeout its context reports): an idempotency
#: record an invocation leaves in progress expires then. A redelivery comes after it, as in
#: AWS, where Lambda retries an event a minute later at the soonest and SQS's visibility
#: timeout is at least the function's timeout. An invocation that runs past it would have
#: been stopped by Lambda: its cell counts as a defect. A failing Slack post takes the
#: webhook client's retries, and gets longer.
DEADLINE_SECONDS = 2
SLACK_DEADLINE_SECONDS = 3
#: The notifier's webhook timeout in the matrix (SLACK_TIMEOUT_SECONDS, 5 when deployed:
#: the same code path, a shorter wait), and how long the Slack stand-in holds an answer to
#: outlast it.
SLACK_TIMEOUT_SECONDS = 1
SLACK_HANG_SECONDS = 2.0
#: The local stack: every function on, a relaunch due at once (no backoff).
STACK_PARAMETERS = {
    "RetrierBackoffIntervalSeconds": "0",
    "DispatcherTaskFamily": "nightly-report",
    "DispatcherClusterName": "batch-jobs",
    "DispatcherContainerName": "app",
}
#: The Batch queue the scenarios submit to (devtools.local_aws's workload).
JOB_QUEUE = "feeds"
#: Queues that hold a function's input, not its side effects.
INPUT_QUEUES = frozenset({"ChainQueue", "WorkQueue"})

_VOLATILE = (
    (re.compile(r"\bit-faults-[0-9a-f]{8}\b"), "<stack>"),
    (re.compile(r"https?://127\.0\.0\.1:\d+\S*"), "<endpoint>"),
    (re.compile(r"arn:aws:[^\s\"',)]+"), "<arn>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<id>"),
    (re.compile(r"\b[0-9a-f]{20,64}\b"), "<id>"),
    (re.compile(r"\b\d+(\.\d+)? ?s\b"), "<n> s"),
)
_ERROR_CODE = re.compile(r"An error occurred \((?P<code>[^)]+)\)")
#: A queue's messages: visible, in flight (received, or put back for a while), delayed.
_QUEUED = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def normalise(text: str) -> str:
    """``text`` without what changes from run to run (ids, ARNs, ports, durations)."""
    for pattern, placeholder in _VOLATILE:
        text = pattern.sub(placeholder, text)
    return text


@dataclass(frozen=True)
class Invocation:
    """One delivery of an event to a function, as its trigger sees it, and what it left."""

    #: "succeeded", "failed" (raised), "init failed" (the cold start raised) or
    #: "records failed" (an SQS batch answered with batchItemFailures).
    status: str
    #: The error raised (its class name) and, for an AWS error, its code, and in full.
    error_type: str = ""
    error_code: str = ""
    error: str = ""
    result: Any = None
    #: (metric name, value) of the EMF lines the invocation printed.
    metrics: tuple[tuple[str, float], ...] = ()
    #: (level, message) of each WARNING or worse log record.
    logs: tuple[tuple[str, str], ...] = ()
    #: How long it ran, botocore's backoff included.
    seconds: float = 0.0
    #: time.monotonic() at which its context said no time was left, and its timeout.
    deadline: float = 0.0
    timeout: int = DEADLINE_SECONDS
    #: Records it put back in the queue on purpose (the dispatcher's deferral, counted by
    #: the scenario: Scenario.deferred_metric), among its batch item failures.
    deferred: int = 0

    @property
    def failed(self) -> bool:
        return self.status != "succeeded"

    @property
    def done(self) -> bool:
        """Whether it did its work: it succeeded, or each batch item failure it answered is a
        record it put back on purpose (its trigger's redelivery is then the normal path)."""
        if self.status == "records failed":
            return self.deferred == len(self.failed_records)
        return self.status == "succeeded"

    @property
    def failed_records(self) -> set[str]:
        if not isinstance(self.result, dict):
            return set()
        return {item["itemIdentifier"] for item in self.result.get("batchItemFailures", [])}


class _LogRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: dict[int, logging.LogRecord] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.records.setdefault(id(record), record)


@contextlib.contextmanager
def _records_of(logger_names: Sequence[str]) -> Iterator[_LogRecords]:
    handler = _LogRecords()
    loggers = [logging.getLogger(name) for name in logger_names]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def _emf_metrics(printed: str) -> list[tuple[str, float]]:
    metrics: list[tuple[str, float]] = []
    for line in printed.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict) or "_aws" not in document:
            continue
        for directive in document["_aws"].get("CloudWatchMetrics", []):
            for metric in directive.get("Metrics", []):
                value = document.get(metric["Name"])
                values = value if isinstance(value, list) else [value]
                total = sum(float(v) for v in values if isinstance(v, int | float))
                metrics.append((metric["Name"], total))
    return metrics


@contextlib.contextmanager
def default_session(session: boto3.Session) -> Iterator[None]:
    """``boto3.client()`` makes its clients from ``session`` for the duration of the block."""
    saved = boto3.DEFAULT_SESSION
    boto3.DEFAULT_SESSION = session
    try:
        yield
    finally:
        boto3.DEFAULT_SESSION = saved


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """The process environment with ``values`` set, restored afterwards."""
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class World:
    """The deployed local stack the scenarios run in, and how to read and reset it."""

    local: LocalAws
    stack: DeployedStack
    slack: SlackReceiver
    ecs: EcsWorkload
    #: The session the functions' clients are made from, and its hooks.
    session: boto3.Session
    injector: Injector
    #: An SQS queue subscribed to NotificationTopic: what the retrier publishes.
    inbox: str
    consumer_queue: str
    consumer_service: str
    #: Cells run so far (each gets an event of its own: scenarios.fresh).
    cells: int = 0
    #: What scenarios make once per world (a task to stop, a relaunch message...).
    made: dict[str, Any] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict)
    _known_jobs: set[str] = field(default_factory=set)
    _known_tasks: set[str] = field(default_factory=set)
    _taken: Counter[str] = field(default_factory=Counter)
    #: Queue URL -> receipt handles of the input messages handed to the functions.
    _received: dict[str, list[str]] = field(default_factory=dict)
    _modules: dict[str, Any] = field(default_factory=dict)
    _setups: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        """A client of the local AWS for the matrix itself (never the functions' session)."""
        if service not in self._clients:
            self._clients[service] = self.local.client(service)
        return self._clients[service]

    def physical(self, logical_id: str) -> str:
        return str(self.stack.physical_ids[logical_id])

    def resources(self, kind: str) -> dict[str, str]:
        """Logical id -> physical id of the stack's resources of type ``kind``."""
        return {
            logical_id: str(self.stack.physical_ids[logical_id])
            for logical_id, resource in self.stack.template["Resources"].items()
            if resource["Type"] == kind and logical_id in self.stack.physical_ids
        }

    # ------------------------------------------------------------------ reset

    def reset(self) -> None:
        """Back to before any scenario: no records, messages, tasks, objects or posts (the
        consumer queue, which no function writes, keeps its backlog)."""
        self.injector.forget_tokens()
        dynamodb = self.client("dynamodb")
        for table in self.resources("AWS::DynamoDB::Table").values():
            schema = dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
            keys = [key["AttributeName"] for key in schema]
            for page in dynamodb.get_paginator("scan").paginate(TableName=table):
                items = page["Items"]
                for start in range(0, len(items), 25):
                    dynamodb.batch_write_item(
                        RequestItems={
                            table: [
                                {"DeleteRequest": {"Key": {k: item[k] for k in keys}}}
                                for item in items[start : start + 25]
                            ]
                        }
                    )
        self._forget_received()
        inputs = [self.physical(name) for name in INPUT_QUEUES]
        for url in {*self.injector.queues_written, *inputs, self.inbox}:
            self._drain(url)
        ecs = self.client("ecs")
        for arn in self._task_arns(("RUNNING",)):
            ecs.stop_task(cluster=self.ecs.cluster_arn, task=arn, reason="scenario reset")
        cluster, service = self.consumer_service.split("/")
        ecs.update_service(cluster=cluster, service=service, desiredCount=0)
        s3 = self.client("s3")
        for bucket in self.resources("AWS::S3::Bucket").values():
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    s3.delete_object(Bucket=bucket, Key=item["Key"])
        self.as_found()
        self._taken = Counter()
        self.slack.forget()

    def as_found(self) -> None:
        """The jobs and tasks there now are where the scenario starts, not its side effects
        (what its setup started after the reset: the tasks a full family runs...)."""
        self._known_jobs = {job["jobId"] for job in self._jobs()}
        self._known_tasks = set(self._task_arns())

    def receive_input(self, logical_id: str) -> dict[str, Any]:
        """The messages of the input queue ``logical_id`` visible now (10 at most), received
        as Lambda's poller receives them, in the SQS event it delivers."""
        sqs = self.client("sqs")
        url = self.physical(logical_id)
        messages = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        self._received.setdefault(url, []).extend(message["ReceiptHandle"] for message in messages)
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        return sqs_event(messages, arn)

    def _forget_received(self) -> None:
        """Every input message handed out, deleted: a deferred one is out of sight until
        its backoff ends, where draining the queue cannot reach it."""
        sqs = self.client("sqs")
        for url, handles in self._received.items():
            for start in range(0, len(handles), 10):
                # a message deleted already (by the poller) is answered as deleted again
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(n), "ReceiptHandle": handle}
                        for n, handle in enumerate(handles[start : start + 10])
                    ],
                )
        self._received = {}

    def _jobs(self) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = []
        # with a filter, ListJobs answers jobs of every status
        pages = (
            self.client("batch")
            .get_paginator("list_jobs")
            .paginate(jobQueue=JOB_QUEUE, filters=[{"name": "JOB_NAME", "values": ["*"]}])
        )
        for page in pages:
            jobs.extend(page["jobSummaryList"])
        return jobs

    def _task_arns(self, statuses: Sequence[str] = ("RUNNING", "STOPPED")) -> list[str]:
        arns: list[str] = []
        for status in statuses:
            pages = (
                self.client("ecs")
                .get_paginator("list_tasks")
                .paginate(cluster=self.ecs.cluster_arn, desiredStatus=status)
            )
            for page in pages:
                arns.extend(page["taskArns"])
        return arns

    def _drain(self, url: str) -> list[str]:
        """Every message of the queue, deleted (PurgeQueue is allowed once a minute)."""
        sqs = self.client("sqs")
        bodies: list[str] = []
        while True:
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0
            ).get("Messages", [])
            if not messages:
                return bodies
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": message["ReceiptHandle"]}
                    for n, message in enumerate(messages)
                ],
            )
            bodies.extend(message["Body"] for message in messages)

    # ------------------------------------------------------------------ side effects

    def side_effects(self, left_in: str = "") -> Counter[str]:
        """Every side effect since the last reset, one entry per effect (a multiset); with
        ``left_in``, the messages left in that input queue too (put back, not taken)."""
        effects: Counter[str] = Counter()
        if left_in:
            attributes = self.client("sqs").get_queue_attributes(
                QueueUrl=self.physical(left_in), AttributeNames=list(_QUEUED)
            )["Attributes"]
            left = sum(int(attributes.get(name, 0)) for name in _QUEUED)
            if left:
                effects[f"SQS message left in {left_in}"] += left
        for job in self._jobs():
            if job["jobId"] not in self._known_jobs:
                effects[f"Batch job {job['jobName']}"] += 1
        new_tasks = [arn for arn in self._task_arns() if arn not in self._known_tasks]
        if new_tasks:
            described = self.client("ecs").describe_tasks(
                cluster=self.ecs.cluster_arn, tasks=new_tasks
            )
            for task in described["tasks"]:
                family = task["taskDefinitionArn"].rsplit("/", 1)[-1].split(":")[0]
                effects[normalise(f"ECS task {family} started by {task.get('startedBy')}")] += 1
        self._take_messages()
        effects += self._taken
        s3 = self.client("s3")
        for logical_id, bucket in self.resources("AWS::S3::Bucket").items():
            for _ in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
                effects[f"S3 object in {logical_id}"] += 1
        cluster, service = self.consumer_service.split("/")
        [described_service] = self.client("ecs").describe_services(
            cluster=cluster, services=[service]
        )["services"]
        if described_service["desiredCount"]:
            effects[f"ECS service {service} at {described_service['desiredCount']} tasks"] += 1
        for post in list(self.slack.accepted):
            text = str(post.get("text") or "(no text)").splitlines()[0]
            effects[normalise(f"Slack post: {text[:80]}")] += 1
        return effects

    def _take_messages(self) -> None:
        """The messages of every queue a function sent to, and of the NotificationTopic's
        subscriber: taken (a later read finds them in ``_taken``)."""
        names = {url: logical_id for logical_id, url in self.resources("AWS::SQS::Queue").items()}
        watched = {url: names.get(url, url) for url in self.injector.queues_written}
        watched[self.inbox] = "NotificationTopic"
        for url, name in watched.items():
            if name in INPUT_QUEUES:
                continue
            for body in self._drain(url):
                self._taken[_describe_message(name, body)] += 1

    def in_progress(self) -> int:
        """Idempotency records left IN_PROGRESS that still hold their identity: those a
        failed attempt marked expired (batchwire.idempotency) block no redelivery."""
        dynamodb = self.client("dynamodb")
        pages = dynamodb.get_paginator("scan").paginate(TableName=self.physical("IdempotencyTable"))
        now_ms = time.time() * 1000
        return sum(
            1
            for page in pages
            for item in page["Items"]
            if item.get("status", {}).get("S") == "INPROGRESS"
            and float(item.get("in_progress_expiration", {}).get("N", "inf")) > now_ms
        )

    # ------------------------------------------------------------------ invoking

    def setup(self, function: str) -> Any:
        """The deployed function's handler, environment and limits (its Lambda API's)."""
        from devtools.invoke import deployed_setup
        from devtools.local_aws import pointed_at

        if function not in self._setups:
            with pointed_at(self.local):
                self._setups[function] = deployed_setup(function, self.stack.name, shell_env={})
        return self._setups[function]

    def invoke(
        self,
        function: str,
        event: Any,
        *,
        request_id: str,
        cold: bool,
        deadline_seconds: int = DEADLINE_SECONDS,
    ) -> Invocation:
        """Deliver ``event`` to the deployed ``function`` in this process, as Lambda would.

        ``cold``: in a new execution environment (the handler module imported again: its
        clients, settings and caches made anew), as on a first delivery or after a failed
        init; else in the one the last delivery used.
        """
        from devtools.invoke import LocalContext

        setup = self.setup(function)
        module_name, _, attribute = setup.handler.rpartition(".")
        start = time.monotonic()
        context = LocalContext(
            function_name=setup.function_name or function,
            memory_limit_in_mb=setup.memory,
            timeout_seconds=deadline_seconds,
            region=setup.environment.get("AWS_REGION", "us-east-1"),
            aws_request_id=request_id,
        )
        values = {
            **self.local.environ,
            **setup.environment,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "SLACK_TIMEOUT_SECONDS": str(SLACK_TIMEOUT_SECONDS),
        }
        service = setup.environment.get("POWERTOOLS_SERVICE_NAME", module_name)
        printed = io.StringIO()
        done = _Done(start, start + deadline_seconds)
        with (
            warnings.catch_warnings(),
            environment(values),
            default_session(self.session),
            _records_of([service, "batchwire"]) as done.records,
            unslept_backoff() as done.backoff,
        ):
            # Powertools warns when an invocation that failed early printed no metric
            warnings.filterwarnings("ignore", "No application metrics to publish")
            if cold or module_name not in self._modules:
                sys.modules.pop(module_name, None)
                self._modules.pop(module_name, None)
                if str(FUNCTIONS_DIR) not in sys.path:
                    sys.path.insert(0, str(FUNCTIONS_DIR))
                try:
                    self._modules[module_name] = importlib.import_module(module_name)
                except Exception as error:
                    # a handler pauses the collector during its init; Lambda would discard
                    # this process, the matrix goes on in it
                    gc.enable()
                    return done("init failed", printed, error)
            handler = getattr(self._modules[module_name], attribute)
            try:
                with contextlib.redirect_stdout(printed):
                    result = handler(copy.deepcopy(event), context)
            except Exception as error:
                return done("failed", printed, error)
            failures = result.get("batchItemFailures") if isinstance(result, dict) else None
            return done("records failed" if failures else "succeeded", printed, None, result)


@dataclass
class _Done:
    """Makes the Invocation of a delivery that started at ``start``."""

    start: float
    deadline: float
    records: _LogRecords = field(default_factory=_LogRecords)
    backoff: Any = None

    def __call__(
        self,
        status: str,
        printed: io.StringIO,
        error: BaseException | None,
        result: Any = None,
    ) -> Invocation:
        logs = []
        for record in self.records.records.values():
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message += f" ({type(record.exc_info[1]).__name__})"
            logs.append((record.levelname, normalise(message)))
        described = f"{type(error).__name__}: {error}" if error is not None else ""
        code = _ERROR_CODE.search(described)
        return Invocation(
            status=status,
            error_type=type(error).__name__ if error is not None else "",
            error_code=code["code"] if code else "",
            error=normalise(described),
            result=result,
            metrics=tuple(_emf_metrics(printed.getvalue())),
            logs=tuple(logs),
            seconds=time.monotonic() - self.start + (self.backoff.seconds if self.backoff else 0),
            deadline=self.deadline,
            timeout=round(self.deadline - self.start),
        )


def _describe_message(where: str, body: str) -> str:
    """How the side effects name a message: its queue (or topic), kind and attempt."""
    try:
        document = json.loads(body)
    except ValueError:
        return f"SQS message in {where}"
    if isinstance(document, dict) and document.get("Type") == "Notification":
        try:
            document = json.loads(document.get("Message", ""))
        except ValueError:
            return f"SNS notification on {where}"
        kind = document.get("kind", "message") if isinstance(document, dict) else "message"
        return f"SNS notification on {where}: {kind}"
    if not isinstance(document, dict):
        return f"SQS message in {where}"
    kind = document.get("kind") or document.get("record") or "message"
    details = [f"{key} {document[key]}" for key in ("attempt", "placementTry") if key in document]
    return f"SQS message in {where}: {kind}" + (f" ({', '.join(details)})" if details else "")


@contextlib.contextmanager
def local_world(stack_name: str | None = None) -> Iterator[World]:
    """A moto server, the Slack stand-in and the stack deployed with every function on."""
    from devtools.local_stack import CONSUMER_QUEUE, running_local_stack

    for name in ("werkzeug", "moto", "samtranslator"):
        logging.getLogger(name).setLevel(logging.ERROR)
    name = stack_name or f"it-faults-{uuid.uuid4().hex[:8]}"
    with warnings.catch_warnings(), contextlib.ExitStack() as resources:
        warnings.filterwarnings("ignore", message="Tried to parse AWS::")
        # moto's CloudFormation prints a line for each resource type it skips
        with contextlib.redirect_stdout(io.StringIO()):
            running = resources.enter_context(running_local_stack(STACK_PARAMETERS, name))
        local = running.local
        sqs, sns = local.client("sqs"), local.client("sns")
        inbox = sqs.create_queue(QueueName=f"{name}-notifications")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(
            TopicArn=running.stack.physical_ids["NotificationTopic"],
            Protocol="sqs",
            Endpoint=inbox_arn,
        )
        # the matrix is the SQS poller: moto's own would run the functions in Docker
        lambda_ = local.client("lambda")
        for mapping in lambda_.list_event_source_mappings()["EventSourceMappings"]:
            lambda_.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
        session = boto3.Session()
        injector = Injector()
        injector.install(session)
        yield World(
            local=local,
            stack=running.stack,
            slack=running.slack,
            ecs=running.ecs,
            session=session,
            injector=injector,
            inbox=inbox,
            consumer_queue=sqs.get_queue_url(QueueName=CONSUMER_QUEUE)["QueueUrl"],
            consumer_service=running.stack.parameters["ScalerServices"],
        )
