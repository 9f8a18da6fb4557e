"""Queue dispatcher: one ECS task per message of the work queue (SQS, partial batch failures)."""

from __future__ import annotations

import gc

# No garbage collection during init: the imports and clients below make objects that live as
# long as the process, and each collection would rescan them all (about 35 ms of CPU at cold
# start, measured with bench/). Collection resumes at the end of init with them frozen.
gc.disable()

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchwire.config import load_settings
from batchwire.dispatch import (
    IDEMPOTENCY_PREFIX,
    DispatcherClients,
    DispatcherSettings,
    DispatchResult,
    dispatch_messages,
)
from batchwire.idempotency import OnceStore
from batchwire.tracing import powertools_tracer

#: Metric per outcome a person may want to see or alarm on.
OUTCOME_METRICS = {
    "started": "TasksStarted",
    "deferred": "DispatchDeferred",
    "refused": "MessagesRefused",
    "failed": "DispatchFailed",
}

logger = Logger()
# AWS calls are all this function does: trace those (patch_all would also import and patch
# sqlite3 and http.client, 1 MB and 4 ms of cold start for nothing).
tracer = powertools_tracer(["botocore"])
metrics = Metrics()
settings = load_settings(DispatcherSettings)
clients = DispatcherClients(
    ecs=boto3.client("ecs"), sqs=boto3.client("sqs"), s3_factory=lambda: boto3.client("s3")
)
once = OnceStore(settings.idempotency_table, IDEMPOTENCY_PREFIX, settings.idempotency_ttl_seconds)

# What init made lives as long as the process: frozen, later collections skip it. The few
# cycles init left as garbage (about 0.3 MB by bench/) are kept with it.
gc.freeze()
gc.enable()


@logger.inject_lambda_context(log_event=False, correlation_id_path="Records[0].messageId")
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    once.register(context)
    try:
        result = dispatch_messages(event, settings=settings, clients=clients, once=once)
    except Exception:
        logger.exception("batch not dispatched; SQS will deliver every message again")
        raise
    report(result)
    return result.response


def report(result: DispatchResult) -> None:
    """The metrics, one log line per message, and one for the batch."""
    for outcome in result.outcomes:
        fields = outcome.as_dict()
        name = OUTCOME_METRICS.get(outcome.status)
        if name:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        if outcome.status == "started":
            if outcome.message_s3_uri:  # its task reads the message from S3 (MessageS3Uri)
                metrics.add_metric(name="MessagesViaS3", unit=MetricUnit.Count, value=1)
            logger.info("task started for the message", extra=fields)
        elif outcome.status == "duplicate":
            logger.info("message delivered again; its task was started before", extra=fields)
        elif outcome.status == "deferred":
            logger.info("message deferred; it comes back after the backoff", extra=fields)
        elif outcome.status == "refused":
            logger.error(f"message refused; no task started: {outcome.reason}", extra=fields)
        else:
            logger.error("message not dispatched; SQS will deliver it again", extra=fields)
    logger.info("batch dispatched", extra=result.summary())
