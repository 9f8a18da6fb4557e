"""The benchmark's events are the largest the handlers accept, and decode as Lambda's do."""

from __future__ import annotations

import json

from batchwire.jobs import MAX_CONTAINER_OVERRIDES_CHARS, build_submit_requests, parse_job_request
from bench.payloads import (
    MAX_LOG_EVENTS,
    decode_floor,
    largest_schedule_event,
    log_batch_document,
    log_subscription_event,
)
from bench.registry import FUNCTIONS
from bench.sandbox import distribution_closure, read_requirements


def test_largest_schedule_event_is_accepted_whole_by_the_submitter() -> None:
    event = largest_schedule_event()
    request = parse_job_request(event)
    assert request.scheduled_time is not None
    submissions = build_submit_requests(request, request.scheduled_time)
    assert len(submissions) == 20
    overrides = json.dumps(submissions[0]["containerOverrides"], separators=(",", ":"))
    assert MAX_CONTAINER_OVERRIDES_CHARS - 128 < len(overrides) <= MAX_CONTAINER_OVERRIDES_CHARS


def test_max_log_batch_has_10000_events_of_about_a_megabyte() -> None:
    document = log_batch_document()
    size = len(json.dumps(document, separators=(",", ":")))
    assert len(document["logEvents"]) == MAX_LOG_EVENTS
    assert 1_000_000 <= size < 1_400_000


def test_small_log_batch_is_padded_to_the_target_size() -> None:
    document = log_batch_document(events=100, target_bytes=50_000)
    assert abs(len(json.dumps(document, separators=(",", ":"))) - 50_000) < 200


def test_subscription_event_decodes_back_to_the_document() -> None:
    document = log_batch_document(events=3)
    assert decode_floor(log_subscription_event(document)) == document


def test_lambda_package_holds_the_runtime_requirements_and_not_the_dev_tools() -> None:
    requirements = read_requirements(FUNCTIONS / "requirements.txt")
    closure = distribution_closure([*requirements, "boto3"])
    assert {"aws-lambda-powertools", "aws-xray-sdk", "pydantic", "botocore"} <= closure
    assert not {"moto", "aws-sam-cli", "requests", "awscrt"} & closure
