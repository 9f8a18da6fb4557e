"""Run a side effect once per identity, whatever the trigger redelivers.

Built on Powertools idempotency with its DynamoDB persistence layer: the first call with an
identity runs the action and stores its JSON result; later calls return the stored result.
A call that finds the same identity in progress (a concurrent delivery) waits for it to
finish, so both deliveries answer with the same result.

An action whose side effect can be looked up (a Recoverable: SubmitJob, whose job carries
its identity) is also run after an attempt marker: when a delivery finds the marker of an
earlier attempt whose outcome is unknown (its answer lost, or its result never saved), it
looks for that attempt's side effect before acting again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyItemAlreadyExistsError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import (
    STATUS_CONSTANTS,
    DataRecord,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

ResultT = TypeVar("ResultT")
ResultT_co = TypeVar("ResultT_co", covariant=True)


class RunOnce(Protocol):
    """Anything that runs an action at most once per identity (OnceStore, or a test's)."""

    def run_once(self, identity: str, action: Callable[[], ResultT]) -> ResultT: ...


class Recoverable(Protocol[ResultT_co]):
    """An action whose side effect an earlier attempt may have made unbeknownst: ``recover``
    finds that side effect's result (None: there is none, act)."""

    def __call__(self) -> ResultT_co: ...

    def recover(self) -> ResultT_co | None: ...


@dataclass(frozen=True)
class Once(Generic[ResultT]):
    """An action's result, and whether the action ran in this call or was replayed."""

    result: ResultT
    #: False when an earlier delivery ran the action and its stored result was returned.
    ran_now: bool


def run_once_noting(once: RunOnce, identity: str, action: Callable[[], ResultT]) -> Once[ResultT]:
    """``once.run_once``, telling an action done in this call from a stored result replayed.

    Metrics count a side effect when it happens: a redelivery that replays the first outcome
    did nothing, and must not be counted again. Works with any RunOnce (a test's too).
    """
    noted = _Noted(action)
    result = once.run_once(identity, noted)
    return Once(result=result, ran_now=noted.ran_now)


class _Noted(Generic[ResultT]):
    """``action``, noting whether it ran. A Recoverable action stays one: a side effect
    ``recover`` finds was made by an attempt no delivery reported, and counts as made now."""

    #: Only when ``action`` has one (OnceStore looks for it).
    recover: Callable[[], ResultT | None]

    def __init__(self, action: Callable[[], ResultT]) -> None:
        self.action = action
        self.ran_now = False
        if callable(getattr(action, "recover", None)):
            self.recover = self._recover

    def __call__(self) -> ResultT:
        result = self.action()
        self.ran_now = True
        return result

    def _recover(self) -> ResultT | None:
        found = cast(Recoverable[ResultT], self.action).recover()
        self.ran_now = found is not None
        return found


def _call_action(identity: dict[str, str], action: Callable[[], Any]) -> Any:
    return action()


class _Persistence(DynamoDBPersistenceLayer):
    """Powertools' DynamoDB layer, which knows its own in-progress record again.

    When the answer to the PutItem that writes the record IN_PROGRESS is lost (a read
    timeout), botocore sends it again, and the condition of the second PutItem fails on the
    record the first one wrote: Powertools would take it for another delivery's record,
    wait for that delivery and fail. A record IN_PROGRESS holding exactly the expiry times
    this call wrote (to the millisecond: the invocation's deadline) is that record, and the
    call goes on.
    """

    def _put_record(self, data_record: DataRecord) -> None:
        try:
            super()._put_record(data_record)
        except IdempotencyItemAlreadyExistsError as error:
            if not _same_write(error.old_data_record, data_record):
                raise


def _same_write(stored: DataRecord | None, written: DataRecord) -> bool:
    return (
        stored is not None
        and written.in_progress_expiry_timestamp is not None
        and stored.status == STATUS_CONSTANTS["INPROGRESS"]
        and stored.idempotency_key == written.idempotency_key
        and stored.in_progress_expiry_timestamp == written.in_progress_expiry_timestamp
        and stored.expiry_timestamp == written.expiry_timestamp
    )


class OnceStore:
    """Idempotent execution keyed on an identity string, stored in a DynamoDB table."""

    def __init__(
        self,
        table_name: str,
        key_prefix: str,
        expires_after_seconds: int,
        wait_seconds: float = 10.0,
        boto3_client: Any = None,
    ) -> None:
        self.config = IdempotencyConfig(
            event_key_jmespath="identity", expires_after_seconds=expires_after_seconds
        )
        # A client from the default session: Powertools would otherwise build a second
        # boto3 session and load the AWS data files again (about 35 ms and 7 MB at cold start).
        self.persistence = _Persistence(
            table_name=table_name, boto3_client=boto3_client or boto3.client("dynamodb")
        )
        self.table_name = table_name
        self.key_prefix = key_prefix
        self.expires_after_seconds = expires_after_seconds
        self.wait_seconds = wait_seconds
        self._run = idempotent_function(
            _call_action,
            data_keyword_argument="identity",
            persistence_store=self.persistence,
            config=self.config,
            key_prefix=key_prefix,
        )

    def register(self, context: LambdaContext) -> None:
        """Let in-progress records expire with the invocation that wrote them."""
        self.config.register_lambda_context(context)

    def run_once(self, identity: str, action: Callable[[], ResultT]) -> ResultT:
        """Run ``action`` unless ``identity`` already ran; return the (stored) result.

        The result must be JSON-serialisable. Raises IdempotencyAlreadyInProgressError
        when another delivery holds the identity for longer than ``wait_seconds``. A
        Recoverable action runs after an attempt marker (see the module's docstring).
        """
        recover = getattr(action, "recover", None)
        if callable(recover):
            action = self._after_marker(identity, action, recover)
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                result: ResultT = self._run(identity={"identity": identity}, action=action)
                return result
            except IdempotencyAlreadyInProgressError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def _after_marker(
        self,
        identity: str,
        action: Callable[[], ResultT],
        recover: Callable[[], ResultT | None],
    ) -> Callable[[], ResultT]:
        def attempt() -> ResultT:
            if not self._first_attempt(identity):
                found = recover()
                if found is not None:
                    return found
            return action()

        return attempt

    def _first_attempt(self, identity: str) -> bool:
        """Mark an attempt at ``identity``; False when an earlier attempt left its mark.

        Only an attempt whose outcome is unknown gets this far after another: a finished
        one answers from its record first. (A marker written by this very attempt, whose
        answer was lost and which botocore sent again, reads as an earlier one: the lookup
        then finds nothing, and the action runs.)
        """
        digest = hashlib.sha256(identity.encode()).hexdigest()
        now = int(time.time())
        key, expiry = self.persistence.key_attr, self.persistence.expiry_attr
        try:
            self.persistence.client.put_item(
                TableName=self.table_name,
                Item={
                    key: {"S": f"{self.key_prefix}.attempt#{digest}"},
                    expiry: {"N": str(now + self.expires_after_seconds)},
                },
                ConditionExpression="attribute_not_exists(#key) OR #expiry < :now",
                ExpressionAttributeNames={"#key": key, "#expiry": expiry},
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
