"""The chainer handler against moto in-process: jobs chained, failures kept, loops stopped."""

from __future__ import annotations

import copy
import importlib
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batchwire.chain import ChainLoopError, ChainRecordsFailed
from batchwire.errors import ConfigurationError
from batchwire.submission import SUBMISSION_TAG, submission_token
from devtools.invoke import LocalContext
from devtools.local_aws import REGION, LocalAws, create_batch_workload
from devtools.runs_table import create_runs_table
from devtools.template import ROOT
from tests.emf import metric_totals

EVENTS = ROOT / "events"
TABLE = "chainer-idempotency"

FEED_RULE = {
    "name": "feed-updated-download",
    "match": {"messageAttributes": {"event": "feed-updated"}},
    "submit": {
        "jobName": "download",
        "jobQueue": "feeds",
        "jobDefinition": "feedstream-Broadbean",
        "containerOverrides": {"environment": [{"name": "PARALLELISM", "value": "15"}]},
    },
}


class InProcessAws(LocalAws):
    """moto's in-process mock behind the LocalAws interface the devtools helpers take."""

    def __init__(self) -> None:
        super().__init__(endpoint_url="")

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]


@pytest.fixture
def aws() -> Iterator[InProcessAws]:
    with mock_aws(config={"batch": {"use_docker": False}}):
        local = InProcessAws()
        local.client("dynamodb").create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        create_batch_workload(local.client)
        yield local


Loader = Callable[..., ModuleType]


@pytest.fixture
def load_chainer(aws: InProcessAws, monkeypatch: pytest.MonkeyPatch) -> Loader:
    """Import the handler module afresh (a cold start) with the given rules and settings."""

    def load(*rules: dict[str, Any], **environ: str) -> ModuleType:
        monkeypatch.setenv("CHAIN_RULES", json.dumps({"rules": list(rules or [FEED_RULE])}))
        monkeypatch.setenv("IDEMPOTENCY_TABLE", TABLE)
        monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "chainer")
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        sys.modules.pop("chainer", None)
        return importlib.import_module("chainer")

    return load


def invoke(module: ModuleType, event: dict[str, Any]) -> Any:
    context = LocalContext(function_name="ChainerFunction", memory_limit_in_mb=256,
                           timeout_seconds=60, region=REGION)  # fmt: skip
    return module.handler(event, context)


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


def sns_event(*messages: tuple[str, dict[str, str]]) -> dict[str, Any]:
    """An SNS event with one record per (message, attributes), shaped like the sample."""
    template = sample("sns-job-finished.json")["Records"][0]
    records = []
    for message, attributes in messages:
        record = copy.deepcopy(template)
        record["Sns"]["MessageId"] = str(uuid.uuid4())
        record["Sns"]["Message"] = message
        record["Sns"]["MessageAttributes"] = {
            name: {"Type": "String", "Value": value} for name, value in attributes.items()
        }
        records.append(record)
    return {"Records": records}


def jobs_in_queue(aws: InProcessAws, queue: str = "feeds") -> list[dict[str, Any]]:
    batch = aws.client("batch")
    ids = [
        summary["jobId"]
        for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED")
        for summary in batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]
    ]
    return batch.describe_jobs(jobs=ids)["jobs"] if ids else []


def environment_of(job: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in job["container"]["environment"]}


def succeeded_event(job: dict[str, Any]) -> dict[str, Any]:
    """The Batch Job State Change EventBridge delivers when ``job`` succeeds."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Batch Job State Change",
        "source": "aws.batch",
        "account": "123456789012",
        "time": "2026-11-23T03:00:00Z",
        "region": REGION,
        "resources": [job["jobArn"]],
        "detail": {**job, "status": "SUCCEEDED"},
    }


def test_sns_record_becomes_job_with_message_and_chain_position(
    aws: InProcessAws, load_chainer: Loader
) -> None:
    # Given the chainer with the feed rule, and the SNS sample
    chainer = load_chainer()
    event = sample("sns-job-finished.json")

    # When it is invoked
    invoke(chainer, event)

    # Then one job carries the message, PARALLELISM and the start of a chain (env and tags)
    [job] = jobs_in_queue(aws)
    environment = environment_of(job)
    message_id = event["Records"][0]["Sns"]["MessageId"]
    assert environment["DOWNLOAD_MESSAGE"] == event["Records"][0]["Sns"]["Message"]
    assert environment["PARALLELISM"] == "15"
    assert (environment["BATCHWIRE_CHAIN_ID"], environment["BATCHWIRE_CHAIN_HOP"]) == (
        f"sns:{message_id}",
        "1",
    )
    assert job["tags"] == {
        "batchwire:chain-id": f"sns:{message_id}",
        "batchwire:chain-hop": "1",
        # the record's job can be found again by its submission (batchwire.submission)
        SUBMISSION_TAG: submission_token(f"sns:{message_id}#feed-updated-download#0"),
    }


def test_published_chain_position_advances_one_hop(aws: InProcessAws, load_chainer: Loader) -> None:
    # Given a message published by a chained job at hop 4, with its position as attributes
    chainer = load_chainer()
    attributes = {
        "event": "feed-updated",
        "BATCHWIRE_CHAIN_ID": "sns:root",
        "BATCHWIRE_CHAIN_HOP": "4",
    }

    # When it is chained
    invoke(chainer, sns_event(("{}", attributes)))

    # Then the next job is hop 5 of the same chain
    [job] = jobs_in_queue(aws)
    environment = environment_of(job)
    assert (environment["BATCHWIRE_CHAIN_ID"], environment["BATCHWIRE_CHAIN_HOP"]) == (
        "sns:root",
        "5",
    )


def test_failed_sns_record_raises_after_the_others_are_chained(
    aws: InProcessAws, load_chainer: Loader
) -> None:
    # Given an SNS event whose first record is oversize and second is fine
    chainer = load_chainer()
    event = sns_event(("x" * 9000, {"event": "feed-updated"}), ("ok", {"event": "feed-updated"}))

    # When it is invoked
    with pytest.raises(ChainRecordsFailed) as raised:
        invoke(chainer, event)

    # Then the second record's job was submitted, and the error names the first record
    [job] = jobs_in_queue(aws)
    assert environment_of(job)["DOWNLOAD_MESSAGE"] == "ok"
    failed_id = event["Records"][0]["Sns"]["MessageId"]
    assert f"1 of 2 records failed: sns:{failed_id}" in str(raised.value)


def test_lambda_retry_of_partly_failed_sns_event_adds_no_job(
    aws: InProcessAws, load_chainer: Loader
) -> None:
    # Given an SNS event that failed on one record after chaining the other
    chainer = load_chainer()
    event = sns_event(("x" * 9000, {"event": "feed-updated"}), ("ok", {"event": "feed-updated"}))
    with pytest.raises(ChainRecordsFailed):
        invoke(chainer, event)

    # When Lambda retries the whole event
    with pytest.raises(ChainRecordsFailed):
        invoke(chainer, event)

    # Then the good record still has exactly one job
    assert len(jobs_in_queue(aws)) == 1


def test_duplicate_sns_delivery_counts_its_job_once(
    aws: InProcessAws, load_chainer: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the chainer with the feed rule, and one SNS message
    chainer = load_chainer()
    event = sample("sns-job-finished.json")

    # When SNS delivers the same message twice
    invoke(chainer, event)
    second = invoke(chainer, event)

    # Then JobsSubmitted is 1 in total, and the second delivery is counted as a duplicate
    totals = metric_totals(capsys.readouterr().out)
    assert totals["JobsSubmitted"] == 1
    assert totals["DuplicatesAbsorbed"] == 1
    assert second["records"][0]["submittedNow"] == 0
    assert len(jobs_in_queue(aws)) == 1


def test_a_job_chained_by_a_delivery_that_fails_afterwards_is_counted_once(
    aws: InProcessAws, load_chainer: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two rules for one message, the second submitting to a queue not made yet
    reports = named(FEED_RULE, "report", "report")
    reports["submit"]["jobQueue"] = "reports"
    chainer = load_chainer(FEED_RULE, reports)
    event = sample("sns-job-finished.json")

    # When the first delivery submits the first job, then fails on the second
    with pytest.raises(ChainRecordsFailed):
        invoke(chainer, event)
    failed = metric_totals(capsys.readouterr().out)
    # and, the queue made, SNS delivers the message again, then once more
    create_batch_workload(aws.client, queue="reports", definitions=())
    invoke(chainer, event)
    invoke(chainer, event)
    later = metric_totals(capsys.readouterr().out)

    # Then the failed delivery counted the job it submitted, and the two jobs count once
    assert failed["JobsSubmitted"] == 1
    assert failed["JobsSubmitted"] + later["JobsSubmitted"] == 2
    assert later["DuplicatesAbsorbed"] == 1 + 2
    assert len(jobs_in_queue(aws)) == len(jobs_in_queue(aws, "reports")) == 1


def test_sqs_poison_record_is_reported_alone(aws: InProcessAws, load_chainer: Loader) -> None:
    # Given a rule mapping a field of a JSON message, and the SQS sample (third body not JSON)
    chainer = load_chainer({**FEED_RULE, "fromMessage": {"parameters": {"feed": "feed"}}})
    event = sample("sqs-chain-batch.json")

    # When the batch is handled
    response = invoke(chainer, event)

    # Then the two good records have jobs and only the poison record is reported failed
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][2]["messageId"]}]}
    feeds = sorted(job["parameters"]["feed"] for job in jobs_in_queue(aws))
    assert feeds == ["reed", "totaljobs"]


def test_job_chaining_back_to_itself_stops_at_the_hop_cap(
    aws: InProcessAws, load_chainer: Loader
) -> None:
    # Given a rule that chains any finished "loop-" job to a new "loop-" job (default cap)
    job = {"jobName": "loop-step", "jobQueue": "feeds", "jobDefinition": "feedstream-Broadbean"}
    loop_rule = {"name": "self-loop", "match": {"jobName": "loop-*"}, "submit": job}
    chainer = load_chainer(loop_rule)
    batch = aws.client("batch")
    root = batch.submit_job(
        jobName="loop-root", jobQueue="feeds", jobDefinition="feedstream-Broadbean"
    )
    event = succeeded_event(batch.describe_jobs(jobs=[root["jobId"]])["jobs"][0])

    # When every chained job succeeds in turn and its state change reaches the chainer
    hops: list[int] = []

    def chain_until_refused() -> None:
        nonlocal event
        for _ in range(20):
            [record] = invoke(chainer, event)["records"]
            hops.append(record["hop"])
            chained = batch.describe_jobs(jobs=[record["jobs"][0]["jobId"]])["jobs"][0]
            event = succeeded_event(chained)

    with pytest.raises(ChainLoopError) as raised:
        chain_until_refused()

    # Then ten hops were chained and the eleventh was refused with a clear error
    assert hops == list(range(1, 11))
    assert "refused at hop 11, over the maximum of 10 (CHAIN_MAX_HOPS)" in str(raised.value)
    assert len(jobs_in_queue(aws)) == 11


def test_hop_count_is_read_from_described_job_when_event_lacks_environment(
    aws: InProcessAws, load_chainer: Loader
) -> None:
    # Given a finished job at hop 2 whose event detail carries no container environment
    chainer = load_chainer({**FEED_RULE, "match": {"jobName": "step-*"}})
    batch = aws.client("batch")
    submitted = batch.submit_job(
        jobName="step-two",
        jobQueue="feeds",
        jobDefinition="feedstream-Broadbean",
        containerOverrides={
            "environment": [
                {"name": "BATCHWIRE_CHAIN_ID", "value": "sns:root"},
                {"name": "BATCHWIRE_CHAIN_HOP", "value": "2"},
            ]
        },
        tags={"batchwire:chain-id": "sns:root", "batchwire:chain-hop": "2"},
    )
    detail = batch.describe_jobs(jobs=[submitted["jobId"]])["jobs"][0]
    detail.pop("container")

    # When its state change is chained
    [record] = invoke(chainer, succeeded_event(detail))["records"]

    # Then the next job continues the chain at hop 3
    assert (record["chainId"], record["hop"]) == ("sns:root", 3)


def test_array_child_is_ignored(aws: InProcessAws, load_chainer: Loader) -> None:
    # Given the Batch sample as the state change of one child of an array job
    chainer = load_chainer({**FEED_RULE, "match": {"jobName": "nightly-*"}})
    event = sample("batch-job-succeeded.json")
    event["detail"]["arrayProperties"] = {"index": 7}

    # When it reaches the chainer
    [record] = invoke(chainer, event)["records"]

    # Then nothing is submitted: the parent's own state change chains
    assert record["status"] == "ignored"
    assert jobs_in_queue(aws) == []


def test_failed_job_is_ignored(aws: InProcessAws, load_chainer: Loader) -> None:
    # Given the Batch sample turned into a FAILED state change of a job a rule matches
    chainer = load_chainer({**FEED_RULE, "match": {"jobName": "nightly-*"}})
    event = sample("batch-job-succeeded.json")
    event["detail"]["status"] = "FAILED"

    # When it reaches the chainer
    [record] = invoke(chainer, event)["records"]

    # Then nothing is submitted: only success chains
    assert (record["status"], record["reason"]) == ("ignored", "status FAILED")
    assert jobs_in_queue(aws) == []


def test_unrouted_record_is_logged_and_counted(
    aws: InProcessAws,
    load_chainer: Loader,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a message no rule matches
    chainer = load_chainer()
    event = sns_event(("{}", {"event": "report-ready"}))

    # When it is handled
    invoke(chainer, event)

    # Then a WARNING names the record, the metric Unrouted is 1, and nothing is submitted
    warnings = [entry for entry in caplog.records if entry.levelname == "WARNING"]
    message_id = event["Records"][0]["Sns"]["MessageId"]
    assert [getattr(entry, "record", None) for entry in warnings] == [f"sns:{message_id}"]
    assert metric_totals(capsys.readouterr().out)["Unrouted"] == 1
    assert jobs_in_queue(aws) == []


def test_unrouted_record_can_be_an_error(aws: InProcessAws, load_chainer: Loader) -> None:
    # Given unrouted records configured as errors, and an SQS batch with one unmatched record
    chainer = load_chainer(UNROUTED_ACTION="error")
    event = sample("sqs-chain-batch.json")
    event["Records"][1]["messageAttributes"]["event"]["stringValue"] = "report-ready"

    # When the batch is handled
    response = invoke(chainer, event)

    # Then that record is reported failed, so the queue keeps it for the dead-letter queue
    unmatched = {"itemIdentifier": event["Records"][1]["messageId"]}
    assert unmatched in response["batchItemFailures"]


def test_a_finished_job_no_rule_names_starts_nothing_and_is_not_unrouted(
    aws: InProcessAws, load_chainer: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given unrouted records configured as errors, and a job success no rule names (most
    # finished jobs start nothing)
    chainer = load_chainer(UNROUTED_ACTION="error")
    event = sample("batch-job-succeeded.json")
    event["detail"]["jobName"] = "adhoc-backfill"

    # When it reaches the chainer
    [record] = invoke(chainer, event)["records"]

    # Then it is ignored: no failure, no Unrouted count (ChainUnroutedAlarm stays quiet)
    assert record["status"] == "ignored"
    assert "no chain rule names it" in record["reason"]
    assert "Unrouted" not in metric_totals(capsys.readouterr().out)
    assert jobs_in_queue(aws) == []


def test_invalid_rules_stop_the_cold_start(load_chainer: Loader) -> None:
    # Given a rule whose job has no definition
    broken = {**FEED_RULE, "submit": {"jobName": "download", "jobQueue": "feeds"}}

    # When the function starts
    with pytest.raises(ConfigurationError) as raised:
        load_chainer(broken)

    # Then the error names the rule and the missing field
    assert "rules[0] ('feed-updated-download').submit.jobDefinition: required, not given" in str(
        raised.value
    )


def test_invalid_hop_cap_names_the_variable(load_chainer: Loader) -> None:
    # Given a hop cap of zero
    # When the function starts
    with pytest.raises(ConfigurationError) as raised:
        load_chainer(CHAIN_MAX_HOPS="0")

    # Then the variable is named
    assert "environment variable CHAIN_MAX_HOPS='0'" in str(raised.value)


# --------------------------------------------------------------------- rules in Parameter Store


def rules_parameter(aws: InProcessAws, *rules: dict[str, Any], **top: Any) -> str:
    """A new SSM String parameter holding a chain rules document; its name is unique."""
    name = f"/batchwire/test-{uuid.uuid4().hex[:12]}/chain-rules"
    update_parameter(aws, name, *rules, **top)
    return name


def update_parameter(aws: InProcessAws, name: str, *rules: dict[str, Any], **top: Any) -> None:
    document = json.dumps({**top, "rules": list(rules)})
    aws.client("ssm").put_parameter(Name=name, Value=document, Type="String", Overwrite=True)


def named(rule: dict[str, Any], name: str, job_name: str = "download") -> dict[str, Any]:
    """FEED_RULE under another name, submitting a job called ``job_name``."""
    return {**rule, "name": name, "submit": {**rule["submit"], "jobName": job_name}}


def test_rules_from_the_parameter_alone_submit_jobs(
    aws: InProcessAws, load_chainer: Loader
) -> None:
    # Given no rules in the environment and the feed rule in an SSM parameter
    name = rules_parameter(aws, FEED_RULE)
    chainer = load_chainer(CHAIN_RULES="", CHAIN_RULES_PARAMETER=name)

    # When the SNS sample arrives
    [record] = invoke(chainer, sample("sns-job-finished.json"))["records"]

    # Then the parameter's rule submitted its job
    assert record["rules"] == ["feed-updated-download"]
    [job] = jobs_in_queue(aws)
    assert job["jobName"] == "download"


def test_rules_of_each_source_fire_in_order_environment_first(
    aws: InProcessAws, load_chainer: Loader
) -> None:
    # Given a matching rule in CHAIN_RULES, EXAMPLE_CHAIN_RULES and the SSM parameter, the
    # parameter's document with a message variable of its own
    name = rules_parameter(
        aws, named(FEED_RULE, "from-ssm", "ssm-job"), messageVariable="FEED_EVENT"
    )
    chainer = load_chainer(
        named(FEED_RULE, "from-template", "template-job"),
        EXAMPLE_CHAIN_RULES=json.dumps(
            {"rules": [named(FEED_RULE, "from-example", "example-job")]}
        ),
        CHAIN_RULES_PARAMETER=name,
    )

    # When the SNS sample arrives
    [record] = invoke(chainer, sample("sns-job-finished.json"))["records"]

    # Then all three fired, the template's first, and each kept its document's variable
    assert record["rules"] == ["from-template", "from-example", "from-ssm"]
    environments = {job["jobName"]: environment_of(job) for job in jobs_in_queue(aws)}
    assert "DOWNLOAD_MESSAGE" in environments["template-job"]
    assert "DOWNLOAD_MESSAGE" in environments["example-job"]
    assert "FEED_EVENT" in environments["ssm-job"]
    assert "DOWNLOAD_MESSAGE" not in environments["ssm-job"]


def test_no_rules_anywhere_leaves_every_record_unrouted(
    aws: InProcessAws, load_chainer: Loader
) -> None:
    # Given a chainer whose only document is empty
    chainer = load_chainer(CHAIN_RULES='{"rules": []}')

    # When the SNS sample arrives
    [record] = invoke(chainer, sample("sns-job-finished.json"))["records"]

    # Then it is unrouted and nothing is submitted
    assert record["status"] == "unrouted"
    assert jobs_in_queue(aws) == []


def test_a_rule_name_in_the_environment_and_the_parameter_is_refused(
    aws: InProcessAws, load_chainer: Loader
) -> None:
    # Given the feed rule in CHAIN_RULES and a rule of the same name in the parameter
    name = rules_parameter(aws, named(FEED_RULE, "feed-updated-download", "other"))

    # When the function starts
    with pytest.raises(ConfigurationError) as raised:
        load_chainer(FEED_RULE, CHAIN_RULES_PARAMETER=name)

    # Then the error names the rule and both places it is in
    assert (
        f"'feed-updated-download' is in CHAIN_RULES and in SSM parameter {name} "
        "(CHAIN_RULES_PARAMETER)"
    ) in str(raised.value)


def test_invalid_parameter_document_stops_the_cold_start(
    aws: InProcessAws, load_chainer: Loader
) -> None:
    # Given a parameter whose rule's job has no definition
    broken = {**FEED_RULE, "submit": {"jobName": "download", "jobQueue": "feeds"}}
    name = rules_parameter(aws, broken)

    # When the function starts
    with pytest.raises(ConfigurationError) as raised:
        load_chainer(CHAIN_RULES="", CHAIN_RULES_PARAMETER=name)

    # Then the error names the parameter, the rule and the field
    assert str(raised.value) == (
        f"SSM parameter {name} (CHAIN_RULES_PARAMETER) is not a valid chain rules document: "
        "rules[0] ('feed-updated-download').submit.jobDefinition: required, not given"
    )


def test_missing_parameter_stops_the_cold_start_naming_it(load_chainer: Loader) -> None:
    # Given a parameter name nobody created
    name = f"/batchwire/test-{uuid.uuid4().hex[:12]}/absent"

    # When the function starts
    with pytest.raises(ConfigurationError) as raised:
        load_chainer(CHAIN_RULES_PARAMETER=name)

    # Then the error names the parameter and what to do
    assert f"SSM parameter {name} (CHAIN_RULES_PARAMETER) does not exist" in str(raised.value)
    assert "leave CHAIN_RULES_PARAMETER empty" in str(raised.value)


def test_parameter_name_without_its_path_is_refused(load_chainer: Loader) -> None:
    # When the function starts with a bare name where the full name belongs
    with pytest.raises(ConfigurationError) as raised:
        load_chainer(CHAIN_RULES_PARAMETER="chain-rules")

    # Then the variable is named, with the form expected
    assert "CHAIN_RULES_PARAMETER='chain-rules': must be the full name of an SSM parameter" in (
        str(raised.value)
    )


def test_updated_parameter_takes_effect_once_the_cache_expired(
    aws: InProcessAws, load_chainer: Loader
) -> None:
    # Given rules read from the parameter at every invocation (cache of 0 s)
    name = rules_parameter(aws, FEED_RULE)
    chainer = load_chainer(CHAIN_RULES="", CHAIN_RULES_PARAMETER=name, RULES_CACHE_SECONDS="0")
    invoke(chainer, sns_event(("first", {"event": "feed-updated"})))

    # When the rule is changed to submit another job, and a message arrives
    update_parameter(aws, name, named(FEED_RULE, "feed-updated-refresh", "refresh"))
    [record] = invoke(chainer, sns_event(("second", {"event": "feed-updated"})))["records"]

    # Then the new rule submitted it
    assert record["rules"] == ["feed-updated-refresh"]
    assert sorted(job["jobName"] for job in jobs_in_queue(aws)) == ["download", "refresh"]


def test_within_the_cache_time_the_rules_read_at_start_stay(
    aws: InProcessAws, load_chainer: Loader
) -> None:
    # Given rules read from the parameter, cached for the default 300 s
    name = rules_parameter(aws, FEED_RULE)
    chainer = load_chainer(CHAIN_RULES="", CHAIN_RULES_PARAMETER=name)

    # When the parameter changes and a message arrives at once
    update_parameter(aws, name, named(FEED_RULE, "feed-updated-refresh", "refresh"))
    [record] = invoke(chainer, sample("sns-job-finished.json"))["records"]

    # Then the rules read at cold start handled it: SSM was not asked again
    assert record["rules"] == ["feed-updated-download"]


def test_invalid_update_fails_the_invocation_and_submits_nothing(
    aws: InProcessAws, load_chainer: Loader, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a chainer that read a valid parameter, read again at every invocation
    name = rules_parameter(aws, FEED_RULE)
    chainer = load_chainer(CHAIN_RULES="", CHAIN_RULES_PARAMETER=name, RULES_CACHE_SECONDS="0")

    # When the parameter is changed to a rule without a queue, and a message arrives
    update_parameter(aws, name, {**FEED_RULE, "submit": {"jobName": "d", "jobDefinition": "x"}})
    with pytest.raises(ConfigurationError) as raised:
        invoke(chainer, sample("sns-job-finished.json"))

    # Then the invocation fails naming the parameter, the rule and the field, an ERROR says
    # so, and no job was submitted (the earlier rules were not used instead)
    problem = (
        f"SSM parameter {name} (CHAIN_RULES_PARAMETER) is not a valid chain rules document: "
        "rules[0] ('feed-updated-download').submit.jobQueue: required, not given"
    )
    assert str(raised.value).startswith(problem)
    errors = [entry.getMessage() for entry in caplog.records if entry.levelname == "ERROR"]
    assert any(problem in message for message in errors)
    assert jobs_in_queue(aws) == []


def test_corrected_parameter_resumes_chaining(aws: InProcessAws, load_chainer: Loader) -> None:
    # Given a parameter that turned invalid after the cold start, failing an SQS batch whole
    name = rules_parameter(aws, FEED_RULE)
    chainer = load_chainer(CHAIN_RULES="", CHAIN_RULES_PARAMETER=name, RULES_CACHE_SECONDS="0")
    update_parameter(aws, name, {"name": "broken"})
    event = sample("sqs-chain-batch.json")
    with pytest.raises(ConfigurationError):
        invoke(chainer, event)

    # When it is corrected and the queue delivers the batch again
    update_parameter(aws, name, FEED_RULE)
    response = invoke(chainer, event)

    # Then the records are chained as if nothing had happened in between
    assert response == {"batchItemFailures": []}
    assert len(jobs_in_queue(aws)) == 3


def test_a_chained_job_is_recorded_under_the_chain_of_the_firing_that_started_it(
    aws: InProcessAws, load_chainer: Loader
) -> None:
    # Given a run records table, and a job a firing submitted at the head of its chain
    create_runs_table(aws.client("dynamodb"), "runs")
    rule = {
        "name": "import-done-publish",
        "match": {"jobName": "import-*"},
        "submit": {
            "jobName": "publish",
            "jobQueue": "feeds",
            "jobDefinition": "feedstream-Broadbean",
        },
    }
    chainer = load_chainer(rule, RUNS_TABLE="runs")
    head = aws.client("batch").submit_job(
        jobName="import-20261123",
        jobQueue="feeds",
        jobDefinition="feedstream-Broadbean",
        containerOverrides={
            "environment": [
                {"name": "BATCHWIRE_CHAIN_ID", "value": "firing-chain"},
                {"name": "BATCHWIRE_CHAIN_HOP", "value": "0"},
            ]
        },
    )
    job = aws.client("batch").describe_jobs(jobs=[head["jobId"]])["jobs"][0]

    # When the job succeeds, and EventBridge delivers that twice
    event = succeeded_event(job)
    first, again = invoke(chainer, event), invoke(chainer, event)

    # Then the publish job is recorded once under the firing's chain, at hop 1, from the import
    items = aws.client("dynamodb").query(
        TableName="runs",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "chain#firing-chain"}},
    )["Items"]
    published = [job for job in jobs_in_queue(aws) if job["jobName"] == "publish"]
    assert len(published) == 1
    assert [
        (i["hop"]["N"], i["jobId"]["S"], i["upstream"]["S"], i["rule"]["S"]) for i in items
    ] == [("1", published[0]["jobId"], head["jobId"], "import-done-publish")]
    assert again["records"][0]["jobs"] == first["records"][0]["jobs"]
