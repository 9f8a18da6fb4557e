"""Run a side effect once per identity, whatever the trigger redelivers.

Built on Powertools idempotency with its DynamoDB persistence layer: the first call with an
identity runs the action and stores its JSON result; later calls return the stored result.
A call that finds the same identity in progress (a concurrent delivery) waits for it to
finish, so both deliveries answer with the same result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

ResultT = TypeVar("ResultT")


class RunOnce(Protocol):
    """Anything that runs an action at most once per identity (OnceStore, or a test's)."""

    def run_once(self, identity: str, action: Callable[[], ResultT]) -> ResultT: ...


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
    ran_now = False

    def noted() -> ResultT:
        nonlocal ran_now
        result = action()
        ran_now = True
        return result

    result = once.run_once(identity, noted)
    return Once(result=result, ran_now=ran_now)


def _call_action(identity: dict[str, str], action: Callable[[], Any]) -> Any:
    return action()


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
        self.persistence = DynamoDBPersistenceLayer(
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
        when another delivery holds the identity for longer than ``wait_seconds``.
        """
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                result: ResultT = self._run(identity={"identity": identity}, action=action)
                return result
            except IdempotencyAlreadyInProgressError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)
