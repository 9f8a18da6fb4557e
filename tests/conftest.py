"""Fixtures shared by every test: safe AWS credentials, moto in-process and as a server."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from devtools.local_aws import LOCAL_CREDENTIALS, LocalAws, create_batch_workload, moto_server

if TYPE_CHECKING:
    from tests.integration.invoke import LocalStack


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    """A handler whose init fails leaves the collector paused (Lambda discards that process);
    the tests after it run on in this one, with the collector on."""
    yield
    gc.enable()


@pytest.fixture(autouse=True)
def _local_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test can reach a real AWS account: fake credentials, no endpoint from the shell."""
    for name, value in LOCAL_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "batchwire")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[LocalAws]:
    """moto in server mode on 127.0.0.1, shared by the integration tests of one worker."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with moto_server() as local:
        yield local


@pytest.fixture(scope="session")
def local_stack(moto_endpoint: LocalAws) -> LocalStack:
    """template.yaml deployed with its defaults into the moto server, and a Batch workload
    (queue ``feeds``, the job definitions the samples name) for its functions to submit to."""
    from tests.integration.invoke import LocalStack, deploy_stack

    batch = create_batch_workload(moto_endpoint.client)
    return LocalStack(moto_endpoint, deploy_stack(moto_endpoint), batch)
