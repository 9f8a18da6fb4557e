"""Run a side effect once per identity, whatever the trigger redelivers.

Built on Powertools idempotency with its DynamoDB persistence layer: the first call with an
identity runs the action and stores its JSON result; later calls return the stored result.
A call that finds the same identity in progress (a concurrent delivery) waits for it to
finish, so both deliveries answer with the same result.

An action whose side effect can be looked up (a Recoverable: SubmitJob, whose job carries
its identity; RunTask, whose task carries its message's) is looked up before it runs again
after an earlier attempt whose outcome is unknown: its answer lost, its result never saved,
or the invocation stopped. Such an attempt leaves its in-progress record behind (a failed
one marks it expired instead of deleting it, as Powertools would), and the next attempt's
PutItem, which replaces it, returns it.
"""

from __future__ import annotations

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
    """Powertools' DynamoDB layer, which knows its own in-progress record again, and tells
    whether its record replaced an earlier attempt's.

    When the answer to the PutItem that writes the record IN_PROGRESS is lost (a read
    timeout), botocore sends it again, and the condition of the second PutItem fails on the
    record the first one wrote: Powertools would take it for another delivery's record,
    wait for that delivery and fail. A record IN_PROGRESS holding exactly the expiry times
    this call wrote (to the millisecond: the invocation's deadline) is that record, and the
    call goes on.

    The PutItem returns the item it replaced (``ReturnValues=ALL_OLD``): a record IN_PROGRESS
    there was written by an attempt that never saved its result. A failed attempt leaves
    its record so (in-progress expiry 0, the next attempt may replace it at once) instead
    of deleting it, so that the next attempt knows of it too.
    """

    def __init__(self, table_name: str, boto3_client: Any) -> None:
        super().__init__(table_name=table_name, boto3_client=boto3_client)
        #: The last PutItem of a record replaced an unfinished attempt's, or may have (its
        #: answer was lost and the resent one found this call's own record).
        self.after_unknown_attempt = False
        self._putting = False
        events = self.client.meta.events
        events.register("before-parameter-build.dynamodb.PutItem", self._return_replaced)
        events.register("after-call.dynamodb.PutItem", self._note_replaced)

    def _put_record(self, data_record: DataRecord) -> None:
        self.after_unknown_attempt = False
        self._putting = True
        try:
            super()._put_record(data_record)
        except IdempotencyItemAlreadyExistsError as error:
            if not _same_write(error.old_data_record, data_record):
                raise
            self.after_unknown_attempt = True
        finally:
            self._putting = False

    def _delete_record(self, data_record: DataRecord) -> None:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._get_key(data_record.idempotency_key),
                UpdateExpression="SET #in_progress_expiry = :expired",
                ConditionExpression="#status = :in_progress",
                ExpressionAttributeNames={
                    "#in_progress_expiry": self.in_progress_expiry_attr,
                    "#status": self.status_attr,
                },
                ExpressionAttributeValues={
                    ":expired": {"N": "0"},
                    ":in_progress": {"S": STATUS_CONSTANTS["INPROGRESS"]},
                },
            )
        except ClientError as error:  # gone (expired): nothing is left to mark
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def _return_replaced(self, params: dict[str, Any], **_: Any) -> None:
        if self._putting:
            params["ReturnValues"] = "ALL_OLD"

    def _note_replaced(self, parsed: dict[str, Any], **_: Any) -> None:
        if self._putting:
            replaced = parsed.get("Attributes") or {}
            status = replaced.get(self.status_attr, {}).get("S")
            self.after_unknown_attempt = status == STATUS_CONSTANTS["INPROGRESS"]


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
        Recoverable action is looked up first after an unfinished attempt (see the
        module's docstring).
        """
        recover = getattr(action, "recover", None)
        if callable(recover):
            action = self._recovering(action, recover)
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                result: ResultT = self._run(identity={"identity": identity}, action=action)
                return result
            except IdempotencyAlreadyInProgressError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def _recovering(
        self, action: Callable[[], ResultT], recover: Callable[[], ResultT | None]
    ) -> Callable[[], ResultT]:
        def attempt() -> ResultT:
            # Only an attempt whose outcome is unknown gets here after another: a finished
            # one answers from its record first
            if self.persistence.after_unknown_attempt:
                found = recover()
                if found is not None:
                    return found
            return action()

        return attempt
