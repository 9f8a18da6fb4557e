"""OnceStore: an action runs once per identity; a lookup first after an unfinished attempt."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from moto import mock_aws

from batchwire.idempotency import OnceStore
from devtools.invoke import LocalContext

REGION = "us-east-1"
TABLE = "idempotency"


class Submission:
    """A Recoverable action: its side effect is a list entry, found again by ``recover``."""

    def __init__(self, made: list[str], name: str, fail: bool = False) -> None:
        self.made, self.name, self.fail = made, name, fail
        self.looked_up = 0

    def __call__(self) -> dict[str, str]:
        self.made.append(self.name)
        if self.fail:  # made, then the answer lost
            raise TimeoutError("read timeout")
        return {"made": self.name}

    def recover(self) -> dict[str, str] | None:
        self.looked_up += 1
        return {"made": self.name} if self.name in self.made else None


@pytest.fixture
def store() -> Iterator[OnceStore]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", REGION)
        dynamodb.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        once = OnceStore(TABLE, "test", 3600, wait_seconds=0, boto3_client=dynamodb)
        context = LocalContext(
            function_name="SubmitterFunction",
            memory_limit_in_mb=256,
            timeout_seconds=60,
            region=REGION,
        )
        once.register(cast(LambdaContext, context))
        yield once


def items(store: OnceStore) -> list[dict[str, Any]]:
    return list(store.persistence.client.scan(TableName=TABLE)["Items"])


def test_a_first_attempt_acts_without_a_lookup_and_writes_one_record(store: OnceStore) -> None:
    # Given a submission never attempted
    made: list[str] = []
    first = Submission(made, "job-1")

    # When it runs, and runs again
    assert store.run_once("firing#0", first) == {"made": "job-1"}
    again = Submission(made, "job-1")
    assert store.run_once("firing#0", again) == {"made": "job-1"}

    # Then it acted once, looked nothing up, and one record holds its result
    assert made == ["job-1"]
    assert (first.looked_up, again.looked_up) == (0, 0)
    assert [item["status"]["S"] for item in items(store)] == ["COMPLETED"]


def test_after_an_attempt_whose_answer_was_lost_the_next_finds_its_side_effect(
    store: OnceStore,
) -> None:
    # Given an attempt that made its side effect, then failed before saving its result
    made: list[str] = []
    with pytest.raises(TimeoutError):
        store.run_once("firing#0", Submission(made, "job-1", fail=True))
    [left] = items(store)

    # When the trigger delivers it again
    retry = Submission(made, "job-1")
    result = store.run_once("firing#0", retry)

    # Then the failed attempt left its record marked expired (not deleted), and the retry
    # looked first, found the side effect and did not make it again
    assert (left["status"]["S"], left["in_progress_expiration"]["N"]) == ("INPROGRESS", "0")
    assert retry.looked_up == 1
    assert result == {"made": "job-1"}
    assert made == ["job-1"]


def test_after_an_attempt_that_failed_before_acting_the_next_acts(store: OnceStore) -> None:
    # Given an attempt that failed before its side effect (the lookup finds nothing)
    made: list[str] = []

    def refused() -> dict[str, str]:
        raise ConnectionError("never reached the service")

    with pytest.raises(ConnectionError):
        store.run_once("firing#0", refused)

    # When the trigger delivers it again
    retry = Submission(made, "job-1")

    # Then the retry looks first, finds nothing, and acts, once
    assert store.run_once("firing#0", retry) == {"made": "job-1"}
    assert retry.looked_up == 1
    assert made == ["job-1"]
