"""Chainer: a finished job's message (SNS, SQS or a Batch state change) starts the next jobs.

Each record is matched against the chain rules; every matching rule's jobs are submitted
with the message in an environment variable, fields of a JSON message mapped to parameters
or environment, and the chain position (chain id, hop) in environment and tags. Everything
is validated before the first AWS call, and each job is submitted once per record.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from batchwire.chain_rules import (
    CHAIN_HOP_TAG,
    CHAIN_HOP_VARIABLE,
    CHAIN_ID_TAG,
    CHAIN_ID_VARIABLE,
    ChainRule,
    RuleMatch,
    globs,
)
from batchwire.envelopes import check_sqs_event, sns_notification
from batchwire.errors import RequestError, describe_validation_error
from batchwire.idempotency import RunOnce
from batchwire.jobs import (
    MAX_CONTAINER_OVERRIDES_CHARS,
    JobRequest,
    SubmittedJob,
    build_submit_requests,
    parse_job_request,
    submit_job_set,
)
from batchwire.sqs_batch import QueueRecord, partial_batch_response
from batchwire.submission import submit_once

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

    from batchwire.runs import RunRecords

#: Prefix of the idempotency records the chainer writes.
IDEMPOTENCY_PREFIX = "batchwire.chainer"

Status = Literal["chained", "unrouted", "ignored", "failed"]


class UnroutedError(RequestError):
    """No chain rule matches a record, and unrouted records are configured to be errors."""


class ChainLoopError(RequestError):
    """A chain would go past its maximum number of hops; nothing was submitted."""


@dataclass(frozen=True)
class ChainOptions:
    """How the chainer treats the edge cases: the hop cap and records no rule matches."""

    max_hops: int = 10
    unrouted_is_error: bool = False


@dataclass(frozen=True)
class ChainRecord:
    """One incoming message, whatever the trigger, with what rules can match on."""

    identity: str
    message: str
    time: datetime
    topic: str | None = None
    subject: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    #: The finished job's detail when the record is a Batch Job State Change.
    job: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ChainPosition:
    """Where a job stands in a chain: the chain's id and its hop (0 = not chained)."""

    chain_id: str
    hop: int


@dataclass(frozen=True)
class RecordOutcome:
    """What happened to one record; the handler logs and counts these."""

    identity: str
    status: Status
    rules: tuple[str, ...] = ()
    jobs: tuple[SubmittedJob, ...] = ()
    chain: ChainPosition | None = None
    reason: str = ""
    problems: tuple[str, ...] = ()
    #: The class name of the error a failed record raised (UnroutedError, ChainLoopError...).
    error: str = ""

    @property
    def submitted_now(self) -> int:
        """How many of the jobs this delivery submitted; the others an earlier one did."""
        return sum(job.submitted_now for job in self.jobs)

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"record": self.identity, "status": self.status}
        if self.rules:
            result["rules"] = list(self.rules)
        if self.jobs:
            result["jobs"] = [job.as_dict() for job in self.jobs]
            result["submittedNow"] = self.submitted_now
        if self.chain is not None:
            result["chainId"], result["hop"] = self.chain.chain_id, self.chain.hop
        if self.reason:
            result["reason"] = self.reason
        if self.problems:
            result["problems"] = list(self.problems)
        if self.error:
            result["error"] = self.error
        return result


@dataclass(frozen=True)
class ChainResult:
    """The handler's answer to the trigger, and the outcome of every record."""

    response: dict[str, Any]
    outcomes: list[RecordOutcome]


class ChainRecordsFailed(Exception):
    """Some records of an SNS invocation failed; the others were chained.

    Raised after every record was handled so that Lambda's asynchronous retries and the
    on-failure destination keep the whole event; records already chained are idempotent.
    """

    def __init__(self, outcomes: list[RecordOutcome]) -> None:
        self.outcomes = outcomes
        failed = [outcome for outcome in outcomes if outcome.status == "failed"]
        details = "; ".join(f"{outcome.identity}: {outcome.reason}" for outcome in failed)
        super().__init__(f"{len(failed)} of {len(outcomes)} records failed: {details}")


# ------------------------------------------------------------------ the shapes of the triggers

# The fields the records are read from, with the types AWS sends them in (other fields are
# left alone). An event that breaks them was made by hand, and is refused naming the field.
# Ids become the chain id, a Batch tag value: UUIDs in practice, tag-safe characters always.
_Id = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9._:/=+@-]{1,128}$")]


class _SnsAttribute(msgspec.Struct, frozen=True):
    Value: str


class _SnsEnvelope(msgspec.Struct, frozen=True):
    """An SNS notification in an SQS body (a subscription without raw delivery)."""

    MessageId: _Id
    Message: str
    TopicArn: str | None = None
    Subject: str | None = None
    Timestamp: datetime | None = None
    MessageAttributes: dict[str, _SnsAttribute] | None = None


class _SnsMessage(msgspec.Struct, frozen=True):
    """``Records[i].Sns`` of an SNS event, every field the chainer reads."""

    MessageId: _Id
    Message: str
    TopicArn: str
    Subject: str | None
    Timestamp: datetime
    MessageAttributes: dict[str, _SnsAttribute]


class _SnsRecord(msgspec.Struct, frozen=True):
    Sns: _SnsMessage


class _SnsEvent(msgspec.Struct, frozen=True):
    Records: list[_SnsRecord]


class _SqsAttribute(msgspec.Struct, frozen=True):
    stringValue: str | None = None


class _SqsRecord(msgspec.Struct, frozen=True):
    messageId: _Id
    attributes: dict[str, str] = {}
    messageAttributes: dict[str, _SqsAttribute] | None = None


class _SqsEvent(msgspec.Struct, frozen=True):
    Records: list[_SqsRecord]


class _Variable(msgspec.Struct, frozen=True):
    name: str
    value: str


class _JobContainer(msgspec.Struct, frozen=True):
    environment: list[_Variable] | None = None


class _ArrayProperties(msgspec.Struct, frozen=True):
    index: int | None = None


class _JobDetail(msgspec.Struct, frozen=True):
    jobId: str | None = None
    jobName: str | None = None
    jobQueue: str | None = None
    jobArn: str | None = None
    status: str | None = None
    arrayProperties: _ArrayProperties | None = None
    container: _JobContainer | None = None


class _BatchEvent(msgspec.Struct, frozen=True):
    id: _Id
    time: datetime | None = None
    detail: _JobDetail | None = None


def _check_shape(value: Any, model: type[msgspec.Struct], summary: str, prefix: str = "") -> None:
    try:
        msgspec.convert(value, model)
    except msgspec.ValidationError as error:
        raise RequestError(summary, describe_validation_error(error, value, prefix)) from None


# ------------------------------------------------------------------ records from each trigger


def record_from_sns(raw: Mapping[str, Any]) -> ChainRecord:
    """A record of a Lambda SNS event (``Records[i]``)."""
    sns = raw["Sns"]
    return ChainRecord(
        identity=f"sns:{sns['MessageId']}",
        message=sns["Message"],
        time=_parse_time(sns["Timestamp"]),
        topic=sns["TopicArn"],
        subject=sns.get("Subject"),
        attributes={
            name: attribute["Value"]
            for name, attribute in (sns.get("MessageAttributes") or {}).items()
        },
    )


def record_from_sqs(raw: Mapping[str, Any]) -> ChainRecord:
    """A record of a Lambda SQS event: a raw message, or an SNS notification the queue got.

    A notification delivered through a subscribed queue (raw delivery off) is read like a
    direct SNS record and keeps the SNS MessageId as identity, so the same notification
    arriving both directly and through the queue starts its jobs once.
    """
    record = QueueRecord(raw)
    envelope = _sns_envelope(record.body)
    if envelope is not None:
        _check_shape(envelope, _SnsEnvelope, "SNS notification in the body is not usable", "body")
        return ChainRecord(
            identity=f"sns:{envelope['MessageId']}",
            message=envelope["Message"],
            time=_parse_time(envelope.get("Timestamp")),
            topic=envelope.get("TopicArn"),
            subject=envelope.get("Subject"),
            attributes={
                name: str(attribute.get("Value", ""))
                for name, attribute in (envelope.get("MessageAttributes") or {}).items()
            },
        )
    sent = record.attribute("SentTimestamp")
    return ChainRecord(
        identity=f"sqs:{record.message_id}",
        message=record.body,
        time=(
            datetime.fromtimestamp(int(sent) / 1000, UTC)
            if sent.isdigit() and len(sent) <= 15
            else datetime.now(UTC)
        ),
        attributes={
            name: attribute.get("stringValue") or ""
            for name, attribute in (raw.get("messageAttributes") or {}).items()
        },
    )


def record_from_batch_event(event: Mapping[str, Any]) -> ChainRecord:
    """A Batch Job State Change; the message is a compact JSON summary of the finished job."""
    detail = event.get("detail") or {}
    summary = {key: detail.get(key) for key in ("jobId", "jobName", "jobQueue", "jobArn", "status")}
    return ChainRecord(
        identity=f"event:{event.get('id')}",
        message=json.dumps(summary, separators=(",", ":")),
        time=_parse_time(event.get("time")),
        job=detail,
    )


def _sns_envelope(body: str) -> dict[str, Any] | None:
    """The SNS envelope of a ChainQueue record, when it carries an id and a text message."""
    document = sns_notification(body)
    if (
        document is not None
        and isinstance(document.get("MessageId"), str)
        and isinstance(document.get("Message"), str)
    ):
        return document
    return None


def _parse_time(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ------------------------------------------------------------------ matching


def rule_matches(match: RuleMatch, record: ChainRecord) -> bool:
    """True when every condition the rule gives holds for the record (globs, case-sensitive)."""
    job = record.job or {}
    checks: list[tuple[str | Sequence[str] | None, Iterable[str | None]]] = [
        (match.topic, _name_and_arn(record.topic, ":")),
        (match.subject, [record.subject]),
        (match.jobName, [job.get("jobName")]),
        (match.jobQueue, _name_and_arn(job.get("jobQueue"), "/")),
    ]
    for name, patterns in (match.messageAttributes or {}).items():
        checks.append((patterns, [record.attributes.get(name)]))
    if match.messageFields:
        document = _json_object(record.message)
        for path, patterns in match.messageFields.items():
            found, value = _field(document, path) if document is not None else (False, None)
            checks.append((patterns, [_as_text(value) if found else None]))
    return all(
        patterns is None or _any_match(patterns, candidates) for patterns, candidates in checks
    )


def _any_match(patterns: str | Sequence[str], candidates: Iterable[str | None]) -> bool:
    return any(
        fnmatch.fnmatchcase(value, pattern)
        for value in candidates
        if value is not None
        for pattern in globs(patterns)
    )


def _name_and_arn(arn: str | None, separator: str) -> list[str | None]:
    """A topic or queue matches by ARN or by its name (the ARN's last part)."""
    return [arn, arn.rsplit(separator, 1)[-1]] if arn else [None]


# ------------------------------------------------------------------ the chain position


def upstream_position(
    record: ChainRecord, describe_job: Callable[[str], Mapping[str, Any]]
) -> ChainPosition:
    """The chain position of the job that finished, as it came back with the record.

    SNS and SQS: message attributes BATCHWIRE_CHAIN_ID / BATCHWIRE_CHAIN_HOP, which a chained
    job copies from its own environment when it publishes. Batch Job State Change: the job's
    environment in the event detail (it mirrors DescribeJobs); when the detail has no
    container environment (multi-node or EKS jobs) the job is described and its environment,
    then its tags, are read. A record without a position starts a new chain, named after
    the record's identity.
    """
    if record.job is None:
        return _position(record.attributes, "messageAttributes", record.identity)
    environment = (record.job.get("container") or {}).get("environment")
    if environment is None:
        described = describe_job(str(record.job.get("jobId")))
        environment = (described.get("container") or {}).get("environment") or []
        tags = described.get("tags") or {}
        if CHAIN_HOP_TAG in tags:
            values = {
                CHAIN_ID_VARIABLE: tags.get(CHAIN_ID_TAG),
                CHAIN_HOP_VARIABLE: tags[CHAIN_HOP_TAG],
            }
            return _position(values, "tags", record.identity)
    values = {str(item.get("name")): item.get("value") for item in environment}
    return _position(values, "detail.container.environment", record.identity)


def _position(values: Mapping[str, Any], where: str, new_chain_id: str) -> ChainPosition:
    chain_id = values.get(CHAIN_ID_VARIABLE) or new_chain_id
    hop_text = values.get(CHAIN_HOP_VARIABLE)
    if hop_text is None:
        return ChainPosition(chain_id=str(chain_id), hop=0)
    try:
        hop = int(str(hop_text))
    except ValueError:
        hop = -1
    if hop < 0:
        raise RequestError(
            "cannot read the chain position",
            [f"{where}.{CHAIN_HOP_VARIABLE}: {hop_text!r} is not a whole number >= 0"],
        )
    return ChainPosition(chain_id=str(chain_id), hop=hop)


def describe_job(batch: BatchClient, job_id: str) -> Mapping[str, Any]:
    """DescribeJobs for one job; empty when Batch no longer knows it."""
    jobs = batch.describe_jobs(jobs=[job_id])["jobs"]
    return dict(jobs[0]) if jobs else {}


# ------------------------------------------------------------------ building the jobs


def chained_request(rule: ChainRule, record: ChainRecord, position: ChainPosition) -> JobRequest:
    """The rule's jobs with the message, mapped fields and chain position added.

    Raises RequestError before any AWS call when the message lacks a mapped field or makes
    a job's container overrides exceed Batch's 8,192-character limit.
    """
    mapped_parameters, mapped_environment = _mapped_fields(rule, record)
    chain_environment = [
        {"name": CHAIN_ID_VARIABLE, "value": position.chain_id},
        {"name": CHAIN_HOP_VARIABLE, "value": str(position.hop)},
    ]
    jobs: list[dict[str, Any]] = []
    problems: list[str] = []
    for index, job in enumerate(rule.request.jobs):
        spec: dict[str, Any] = msgspec.to_builtins(job)
        overrides = spec.setdefault("containerOverrides", {})
        overrides["environment"] = [
            *overrides.get("environment", []),
            {"name": rule.message_variable, "value": record.message},
            *({"name": name, "value": value} for name, value in mapped_environment.items()),
            *chain_environment,
        ]
        if mapped_parameters:
            spec["parameters"] = {**spec.get("parameters", {}), **mapped_parameters}
        spec["tags"] = {
            **spec.get("tags", {}),
            CHAIN_ID_TAG: position.chain_id,
            CHAIN_HOP_TAG: str(position.hop),
        }
        size = len(json.dumps(overrides, separators=(",", ":"), ensure_ascii=False))
        if size > MAX_CONTAINER_OVERRIDES_CHARS:
            path = "" if rule.request.single else f"jobs[{index}]."
            problems.append(
                f"{path}containerOverrides: {size:,} characters with the "
                f"{len(record.message):,}-character message in {rule.message_variable}, over "
                f"Batch's limit of {MAX_CONTAINER_OVERRIDES_CHARS:,}; publish a smaller message, "
                "for example the S3 URI of the payload"
            )
        jobs.append(spec)
    if problems:
        raise RequestError(f"message too large for rule {rule.name!r}", problems)
    try:
        return parse_job_request({"jobs": jobs})
    except RequestError as error:
        raise RequestError(f"rule {rule.name!r} gives an invalid job", error.problems) from None


def _mapped_fields(rule: ChainRule, record: ChainRecord) -> tuple[dict[str, str], dict[str, str]]:
    mapping = rule.from_message
    if not mapping.parameters and not mapping.environment:
        return {}, {}
    document = _json_object(record.message)
    if document is None:
        raise RequestError(
            f"rule {rule.name!r} maps fields of the message, but the message is not a JSON object",
            [f"message: starts {record.message[:60]!r}"],
        )
    problems: list[str] = []
    resolved: list[dict[str, str]] = [{}, {}]
    sections = [("parameters", mapping.parameters), ("environment", mapping.environment)]
    for target, (section, fields) in zip(resolved, sections, strict=True):
        for name, path in (fields or {}).items():
            found, value = _field(document, path)
            if not found or value is None:
                problems.append(f"fromMessage.{section}.{name}: the message has no field {path!r}")
            else:
                target[name] = _as_text(value)
    if problems:
        raise RequestError(f"rule {rule.name!r} cannot map the message", problems)
    return resolved[0], resolved[1]


def _json_object(message: str) -> dict[str, Any] | None:
    try:
        document = json.loads(message)
    except (json.JSONDecodeError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def _field(document: Any, path: str) -> tuple[bool, Any]:
    """Follow a dotted path (``a.b.0.c``; digits index lists) into a JSON document."""
    value = document
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def _as_text(value: Any) -> str:
    """Batch takes strings only: numbers and booleans as JSON writes them, objects as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# ------------------------------------------------------------------ one record, one event


def chain_record(
    record: ChainRecord,
    *,
    rules: Sequence[ChainRule],
    options: ChainOptions,
    batch: BatchClient,
    once: RunOnce,
    runs: RunRecords | None = None,
    on_submitted: Callable[[SubmittedJob], None] | None = None,
) -> RecordOutcome:
    """Submit the jobs of every rule matching the record, each once per record.

    Raises UnroutedError (if configured), ChainLoopError, RequestError before any SubmitJob;
    errors from Batch or DynamoDB propagate so the trigger retries the record. With
    ``runs``, each chained job is recorded under its chain once all are submitted.
    ``on_submitted`` is called with each job submitted now as soon as its record is saved,
    before a later job or the run record may fail the record: the redelivery then replays
    that job from its record, and must not be the first to count it.
    """
    matching = [rule for rule in rules if rule_matches(rule.match, record)]
    if not matching and record.job is not None:
        # Most finished jobs start nothing: only a message published to be chained and
        # taken by no rule is Unrouted (and, if configured, an error)
        return RecordOutcome(
            record.identity,
            "ignored",
            reason=f"no chain rule names it ({_describe_record(record)})",
        )
    if not matching:
        if options.unrouted_is_error:
            raise UnroutedError("no chain rule matches the record", [_describe_record(record)])
        return RecordOutcome(record.identity, "unrouted", reason=_describe_record(record))

    # what the record alone decides (mapped fields, sizes) is checked before DescribeJobs
    for rule in matching:
        chained_request(rule, record, ChainPosition(record.identity, options.max_hops))
    upstream = upstream_position(record, lambda job_id: describe_job(batch, job_id))
    position = ChainPosition(upstream.chain_id, upstream.hop + 1)
    if position.hop > options.max_hops:
        raise ChainLoopError(
            f"chain {position.chain_id} refused at hop {position.hop}, over the maximum of "
            f"{options.max_hops} (CHAIN_MAX_HOPS); check rules "
            f"{[rule.name for rule in matching]} for a job that chains back to itself",
        )
    planned = []
    for rule in matching:
        request = chained_request(rule, record, position)
        planned.append((rule, build_submit_requests(request, record.time)))

    submitted: list[SubmittedJob] = []
    by_rule: list[tuple[str, SubmittedJob]] = []
    for rule, submissions in planned:

        def submit_one(index: int, kwargs: dict[str, Any], rule: ChainRule = rule) -> SubmittedJob:
            identity = f"{record.identity}#{rule.name}#{index}"
            return submit_once(once, batch, kwargs, identity, on_submitted)

        templates = [job.jobName for job in rule.request.jobs]
        jobs = submit_job_set(submissions, templates, submit_one)
        submitted.extend(jobs)
        by_rule.extend((rule.name, job) for job in jobs)
    if runs is not None:
        runs.record_chained(
            chain_id=position.chain_id,
            hop=position.hop,
            jobs=by_rule,
            # the job that finished, when it is one: the chained job's place in the tree
            upstream=str(record.job.get("jobId")) if record.job else record.identity,
            now=datetime.now(UTC),
        )
    return RecordOutcome(
        record.identity,
        "chained",
        rules=tuple(rule.name for rule in matching),
        jobs=tuple(submitted),
        chain=position,
    )


def _describe_record(record: ChainRecord) -> str:
    parts = [f"record {record.identity}"]
    if record.topic:
        parts.append(f"topic {record.topic}")
    if record.subject:
        parts.append(f"subject {record.subject!r}")
    if record.attributes:
        parts.append(f"attributes {sorted(record.attributes)}")
    if record.job:
        parts.append(f"job {record.job.get('jobName')!r} in {record.job.get('jobQueue')}")
    return ", ".join(parts)


def failed_outcome(identity: str, error: Exception) -> RecordOutcome:
    """The outcome of a record whose processing raised ``error``."""
    problems = tuple(error.problems) if isinstance(error, RequestError) else ()
    reason = (
        error.summary if isinstance(error, RequestError) else f"{type(error).__name__}: {error}"
    )
    return RecordOutcome(
        identity, "failed", reason=reason, problems=problems, error=type(error).__name__
    )


def chain_event(
    event: Mapping[str, Any],
    *,
    rules: Sequence[ChainRule],
    options: ChainOptions,
    batch: BatchClient,
    once: RunOnce,
    runs: RunRecords | None = None,
    on_submitted: Callable[[SubmittedJob], None] | None = None,
) -> ChainResult:
    """Handle an SNS, SQS or Batch Job State Change event; every record is handled.

    SQS: failed records are returned in ``batchItemFailures`` (the queue redelivers them,
    then moves them to its dead-letter queue). SNS: the other records are chained, then
    ChainRecordsFailed is raised so Lambda retries the event. Batch Job State Change: jobs
    that did not succeed and array children are ignored (the parent chains); errors raise.
    """

    def chain(record: ChainRecord) -> RecordOutcome:
        return chain_record(
            record,
            rules=rules,
            options=options,
            batch=batch,
            once=once,
            runs=runs,
            on_submitted=on_submitted,
        )

    if not isinstance(event, Mapping):
        raise RequestError(
            "not an SNS, SQS or Batch Job State Change event",
            [f"(event): expected an object, got {type(event).__name__}"],
        )
    records = event.get("Records")
    if isinstance(records, list) and records:
        first = records[0] if isinstance(records[0], Mapping) else {}
        source = first.get("eventSource") or first.get("EventSource")
        if source == "aws:sqs":
            check_sqs_event(event, ("SentTimestamp",))
            _check_shape(event, _SqsEvent, "not an SQS event")
            return _chain_sqs(event, chain)
        if source == "aws:sns":
            _check_shape(event, _SnsEvent, "not an SNS event")
            return _chain_sns(records, chain)
    if event.get("source") == "aws.batch" and event.get("detail-type") == "Batch Job State Change":
        _check_shape(event, _BatchEvent, "not a usable Batch Job State Change event")
        return _chain_batch_event(event, chain)
    raise RequestError(
        "not an SNS, SQS or Batch Job State Change event",
        [f"(event): keys {sorted(event)[:8]}"],
    )


def _chain_sqs(
    event: Mapping[str, Any], chain: Callable[[ChainRecord], RecordOutcome]
) -> ChainResult:
    outcomes: list[RecordOutcome] = []

    def handle(record: QueueRecord) -> None:
        try:
            outcomes.append(chain(record_from_sqs(record.raw_event)))
        except Exception as error:
            outcomes.append(failed_outcome(f"sqs:{record.message_id}", error))
            raise

    response = partial_batch_response(event, handle)
    return ChainResult(response=dict(response), outcomes=outcomes)


def _chain_sns(
    records: list[Mapping[str, Any]], chain: Callable[[ChainRecord], RecordOutcome]
) -> ChainResult:
    outcomes: list[RecordOutcome] = []
    for index, raw in enumerate(records):
        identity = f"sns:{(raw.get('Sns') or {}).get('MessageId', f'Records[{index}]')}"
        try:
            outcomes.append(chain(record_from_sns(raw)))
        except Exception as error:
            outcomes.append(failed_outcome(identity, error))
    if any(outcome.status == "failed" for outcome in outcomes):
        raise ChainRecordsFailed(outcomes)
    return ChainResult(
        response={"records": [outcome.as_dict() for outcome in outcomes]}, outcomes=outcomes
    )


def _chain_batch_event(
    event: Mapping[str, Any], chain: Callable[[ChainRecord], RecordOutcome]
) -> ChainResult:
    record = record_from_batch_event(event)
    detail = record.job or {}
    if detail.get("status") != "SUCCEEDED":
        outcome = RecordOutcome(record.identity, "ignored", reason=f"status {detail.get('status')}")
    elif "index" in (detail.get("arrayProperties") or {}):
        outcome = RecordOutcome(
            record.identity, "ignored", reason="array child job; the parent job chains"
        )
    else:
        outcome = chain(record)
    return ChainResult(response={"records": [outcome.as_dict()]}, outcomes=[outcome])
