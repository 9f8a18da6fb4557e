"""Rule documents from the environment and from SSM Parameter Store, current at every call.

A function's rules (the chainer's chain rules, the notifier's routes) are written in
environment variables in template.yaml and may continue in one SSM String parameter, which
outgrows Lambda's 4 KB of environment and changes without a deploy. The parameter is read
through Powertools' SSMProvider, which keeps its value ``max_age`` seconds; the documents are
parsed again only when the value read differs from the last one, so an invocation within the
cache time makes no call and parses nothing.

A value that changed and is invalid is not replaced by the rules read before it: every call
raises its ConfigurationError until the parameter is corrected, so the trigger retries the
records (then keeps them in its dead-letter queue or on-failure destination) and no record
is handled by rules someone meant to replace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import boto3
from botocore.exceptions import ClientError

from batchwire.errors import BatchwireError, ConfigurationError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SSMProvider

log = logging.getLogger(__name__)

RuleT = TypeVar("RuleT")

#: A rules document: (where it came from, as errors name it; its text).
Document = tuple[str, str]


class ParameterReadError(BatchwireError):
    """SSM did not give the parameter's value (throttling, a network error); retried."""


@dataclass(frozen=True)
class SsmParameter:
    """One SSM String parameter holding a rules document, read through a cache."""

    name: str
    #: The environment variable that names the parameter.
    variable: str
    max_age: int
    provider: SSMProvider

    @property
    def label(self) -> str:
        """How errors name this document: ``SSM parameter /a/b (CHAIN_RULES_PARAMETER)``."""
        return f"SSM parameter {self.name} ({self.variable})"

    def text(self) -> str:
        """The parameter's value, from the cache while it is younger than ``max_age``.

        Raises ConfigurationError when the parameter does not exist or may not be read,
        ParameterReadError when SSM could not answer.
        """
        # Imported here, like the provider: only a function given a parameter needs them
        from aws_lambda_powertools.utilities.parameters import GetParameterError

        try:
            value = self.provider.get(self.name, max_age=self.max_age, decrypt=False)
        except GetParameterError as error:
            raise self._read_error(error) from None
        if not isinstance(value, str):
            raise ConfigurationError(f"{self.label}: expected a String parameter holding JSON")
        return value

    def _read_error(self, error: Exception) -> BatchwireError:
        # Powertools wraps SSM's error in a GetParameterError raised while handling it
        cause = error.__context__
        code = cause.response.get("Error", {}).get("Code") if isinstance(cause, ClientError) else ""
        if code == "ParameterNotFound":
            return ConfigurationError(
                f"{self.label} does not exist in this account and region: create it (type "
                f"String), or leave {self.variable} empty"
            )
        if code == "AccessDeniedException":
            return ConfigurationError(
                f"{self.label} may not be read by this function: grant it ssm:GetParameter on "
                "this parameter"
            )
        return ParameterReadError(f"{self.label} could not be read: {error}")


def ssm_parameter(name: str | None, variable: str, max_age: int) -> SsmParameter | None:
    """The parameter ``name`` (named by ``variable``), cached ``max_age`` seconds; None when
    ``variable`` names no parameter."""
    if not name:
        return None
    # Imported only when a function is given a parameter: 3 ms of cold start otherwise
    from aws_lambda_powertools.utilities.parameters import SSMProvider

    # A client of the default session, as every client here: Powertools' own default builds a
    # boto3 session of its own and loads the AWS data files a second time (see notifier.py)
    provider = SSMProvider(boto3_client=boto3.client("ssm"))
    return SsmParameter(name=name, variable=variable, max_age=max_age, provider=provider)


class CurrentRules(Generic[RuleT]):
    """The rules of fixed documents and, when given, of one SSM parameter read after them.

    ``parse`` turns the documents, in order, into rules, or raises ConfigurationError naming
    the document, rule and field at fault. It runs when this object is made (at cold start:
    a bad document or a missing parameter fails the init) and again whenever the parameter's
    value differs from the one last parsed. Calling the object gives the current rules.
    """

    def __init__(
        self,
        parse: Callable[[Sequence[Document]], tuple[RuleT, ...]],
        documents: Sequence[Document],
        parameter: SsmParameter | None = None,
    ) -> None:
        self._parse = parse
        self._documents = tuple(documents)
        self.parameter = parameter
        self._text = parameter.text() if parameter is not None else None
        self._rules: tuple[RuleT, ...] | None = self._parse(self._with(self._text))
        self._problem = ""

    def __call__(self) -> tuple[RuleT, ...]:
        """The rules now; raises ConfigurationError while the parameter's value is invalid."""
        if self.parameter is not None:
            text = self.parameter.text()
            if text != self._text:
                self._read_again(self.parameter, text)
        if self._rules is None:
            raise ConfigurationError(self._problem)
        return self._rules

    def _read_again(self, parameter: SsmParameter, text: str) -> None:
        self._text = text
        try:
            self._rules = self._parse(self._with(text))
        except ConfigurationError as error:
            # the rules read before are dropped: someone meant to replace them
            self._rules = None
            self._problem = (
                f"{error} (read again after its cache expired; every invocation fails until "
                "it is valid again, and the trigger retries their events)"
            )
            return
        log.info("%s changed: %d rules in use", parameter.label, len(self._rules))

    def _with(self, text: str | None) -> list[Document]:
        if self.parameter is None or text is None:
            return list(self._documents)
        return [*self._documents, (self.parameter.label, text)]
