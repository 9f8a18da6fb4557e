"""Matching records to rules and building the chained jobs: plain functions, no AWS."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from batchwire.chain import (
    ChainPosition,
    ChainRecord,
    chained_request,
    record_from_sqs,
    rule_matches,
    upstream_position,
)
from batchwire.chain_rules import ChainRule, RuleMatch, parse_chain_rules
from batchwire.errors import RequestError
from devtools.template import ROOT

EVENTS = ROOT / "events"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:feeds-ChainTopic-1X2Y3Z"
NOW = datetime(2026, 11, 23, 2, 41, tzinfo=UTC)


def one_rule(**fields: Any) -> ChainRule:
    rule = {
        "name": "r",
        "match": {"subject": "feed-updated"},
        "submit": {"jobName": "download", "jobQueue": "feeds", "jobDefinition": "dl"},
        **fields,
    }
    [parsed] = parse_chain_rules(json.dumps({"rules": [rule]}))
    return parsed


def conditions(**given: Any) -> RuleMatch:
    """A rule's match as written in the document (a glob or a list of globs)."""
    return msgspec.convert(given, RuleMatch)


def record(message: str = "{}", **fields: Any) -> ChainRecord:
    return ChainRecord(identity="sns:m-1", message=message, time=NOW, **fields)


def no_describe(job_id: str) -> dict[str, Any]:
    raise AssertionError(f"DescribeJobs was called for {job_id}")


def test_topic_matches_by_name_or_arn() -> None:
    # Given a record from a topic whose ARN CloudFormation generated
    incoming = record(topic=TOPIC_ARN)

    # When rules name the topic by ARN, by name glob, or another topic
    by_arn = conditions(topic=TOPIC_ARN)
    by_name = conditions(topic="feeds-ChainTopic-*")
    other = conditions(topic="reports-*")

    # Then the first two match and the third does not
    assert [rule_matches(m, incoming) for m in (by_arn, by_name, other)] == [True, True, False]


def test_all_conditions_must_hold() -> None:
    # Given a rule on subject and a message attribute
    match = conditions(subject="feed-*", messageAttributes={"feed": ["broadbean", "reed"]})

    # When records agree on one condition or on both
    only_subject = record(subject="feed-updated", attributes={"feed": "totaljobs"})
    both = record(subject="feed-updated", attributes={"feed": "reed"})

    # Then only the record meeting both matches
    assert (rule_matches(match, only_subject), rule_matches(match, both)) == (False, True)


def test_json_message_field_matches_as_text() -> None:
    # Given a rule on nested fields of a JSON message, one of them a number
    match = conditions(messageFields={"feed.name": "broadbean", "feed.items": "1*"})

    # When the message holds those values, or is not JSON at all
    json_message = record(json.dumps({"feed": {"name": "broadbean", "items": 1842}}))
    text_message = record("feed=broadbean")

    # Then the JSON message matches and the text message does not
    assert (rule_matches(match, json_message), rule_matches(match, text_message)) == (True, False)


def test_finished_job_matches_on_name_and_queue_name() -> None:
    # Given a Batch job that finished in the queue "feeds" (the event carries the queue ARN)
    detail = {
        "jobName": "nightly-20261123",
        "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/feeds",
    }
    incoming = record(job=detail)

    # When rules match its name and queue, or another queue
    feeds = conditions(jobName="nightly-[0-9]*", jobQueue="feeds")
    reports = conditions(jobName="nightly-[0-9]*", jobQueue="reports")

    # Then only the rule on its own queue matches
    assert (rule_matches(feeds, incoming), rule_matches(reports, incoming)) == (True, False)


def test_mapped_json_fields_become_strings() -> None:
    # Given a rule mapping a number, a string and an object of the message
    rule = one_rule(
        fromMessage={
            "parameters": {"feed": "feed"},
            "environment": {"PARALLELISM": "parallelism", "WINDOW": "window"},
        }
    )
    message = json.dumps({"feed": "broadbean", "parallelism": 15, "window": {"hours": 24}})

    # When the chained job is built
    request = chained_request(rule, record(message), ChainPosition("sns:m-1", 1))

    # Then Batch gets strings only
    job = request.jobs[0]
    environment = {v.name: v.value for v in job.containerOverrides.environment or []}  # type: ignore[union-attr]
    assert job.parameters == {"feed": "broadbean"}
    assert environment["PARALLELISM"] == "15"
    assert environment["WINDOW"] == '{"hours":24}'


def test_missing_mapped_field_names_rule_and_field() -> None:
    # Given a rule mapping a field the message lacks
    rule = one_rule(fromMessage={"parameters": {"feed": "feed.name"}})

    # When the chained job is built
    with pytest.raises(RequestError) as raised:
        chained_request(rule, record('{"feed": "broadbean"}'), ChainPosition("c", 1))

    # Then the rule and the mapping are named
    assert "rule 'r' cannot map the message" in str(raised.value)
    assert "fromMessage.parameters.feed: the message has no field 'feed.name'" in str(raised.value)


def test_oversize_message_is_refused_with_its_size() -> None:
    # Given a message that cannot fit Batch's 8,192-character container overrides
    message = "x" * 9000

    # When the chained job is built
    with pytest.raises(RequestError) as raised:
        chained_request(one_rule(), record(message), ChainPosition("c", 1))

    # Then the error gives the size of the message and of the overrides, and the limit
    text = str(raised.value)
    assert "9,000-character message in DOWNLOAD_MESSAGE" in text
    assert "over Batch's limit of 8,192" in text


def test_hop_comes_back_in_message_attributes() -> None:
    # Given a message published by a job at hop 3 of a chain
    incoming = record(attributes={"BATCHWIRE_CHAIN_ID": "sns:first", "BATCHWIRE_CHAIN_HOP": "3"})

    # When its position is read
    position = upstream_position(incoming, no_describe)

    # Then the chain continues from hop 3
    assert position == ChainPosition("sns:first", 3)


def test_message_without_position_starts_a_chain_named_after_it() -> None:
    # Given a message from a job that was not chained
    incoming = record(attributes={"event": "feed-updated"})

    # When its position is read
    position = upstream_position(incoming, no_describe)

    # Then it is the root of a new chain named after the record
    assert position == ChainPosition("sns:m-1", 0)


def test_unreadable_hop_names_the_attribute() -> None:
    # Given a hop attribute that is not a number
    incoming = record(attributes={"BATCHWIRE_CHAIN_HOP": "three"})

    # When its position is read
    with pytest.raises(RequestError) as raised:
        upstream_position(incoming, no_describe)

    # Then the attribute is named
    assert "messageAttributes.BATCHWIRE_CHAIN_HOP: 'three'" in str(raised.value)


def test_sns_notification_in_sqs_keeps_sns_identity() -> None:
    # Given the first record of the SQS sample: an SNS notification delivered to the queue
    raw = json.loads((EVENTS / "sqs-chain-batch.json").read_text())["Records"][0]

    # When it is read
    incoming = record_from_sqs(raw)

    # Then it is read as the notification: its MessageId, topic, subject, message, attributes
    envelope = json.loads(raw["body"])
    assert incoming.identity == f"sns:{envelope['MessageId']}"
    assert incoming.message == envelope["Message"]
    assert (incoming.topic, incoming.subject) == (envelope["TopicArn"], "feed-updated")
    assert incoming.attributes == {"event": "feed-updated"}
