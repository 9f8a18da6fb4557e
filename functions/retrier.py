"""ECS task retrier: a scheduled task STOPPED (EventBridge), or a relaunch is due (SQS)."""

from __future__ import annotations

import gc

# No garbage collection during init: the imports and clients below make objects that live as
# long as the process, and each collection would rescan them all (about 35 ms of CPU at cold
# start, measured with bench/). Collection resumes at the end of init with them frozen.
gc.disable()

import random
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchwire.config import load_settings
from batchwire.envelopes import check_sqs_event
from batchwire.errors import RequestError
from batchwire.idempotency import OnceStore
from batchwire.retrier import (
    IDEMPOTENCY_PREFIX,
    CountedContainers,
    RetrierClients,
    RetrierSettings,
    handle_task_stopped,
    relaunch_when_due,
)
from batchwire.sqs_batch import QueueRecord, partial_batch_response
from batchwire.tracing import powertools_tracer

#: Metric per outcome a person may want to alarm on, and the side effect it counts: an
#: outcome whose side effect an earlier delivery did (``replayed``) is not counted again.
OUTCOME_METRICS = {
    "relaunched": ("RetriesStarted", "run"),
    "exhausted": ("RetriesExhausted", "notify"),
    "reject": ("Rejected", "notify"),
}

logger = Logger()
# AWS calls are all this function does: trace those (patch_all would also import and patch
# sqlite3 and http.client, 1 MB and 4 ms of cold start for nothing).
tracer = powertools_tracer(["botocore"])
metrics = Metrics()
settings = load_settings(RetrierSettings)
clients = RetrierClients(ecs=boto3.client("ecs"), sqs=boto3.client("sqs"), sns=boto3.client("sns"))
counted = CountedContainers(clients.ecs, settings.containers)
once = OnceStore(settings.idempotency_table, IDEMPOTENCY_PREFIX, settings.idempotency_ttl_seconds)

# What init made lives as long as the process: frozen, later collections skip it. The few
# cycles init left as garbage (about 0.3 MB by bench/) are kept with it.
gc.freeze()
gc.enable()


@logger.inject_lambda_context(log_event=False, correlation_id_path="detail.taskArn")
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    once.register(context)
    if isinstance(event, dict) and "Records" in event:
        try:
            check_sqs_event(event)
        except RequestError as error:
            logger.error("event refused; no task was touched", extra={"problems": error.problems})
            raise
        return dict(partial_batch_response(event, relaunch_record))
    try:
        result = handle_task_stopped(
            event,
            settings=settings,
            clients=clients,
            counted=counted,
            once=once,
            now=datetime.now(UTC),
            random=random.random,
        )
    except RequestError as error:
        logger.error("event refused; no task was touched", extra={"problems": error.problems})
        raise
    except Exception:
        logger.exception("stopped task not handled; Lambda will retry the event")
        raise
    record_outcome(result)
    logger.info("stopped task handled", extra={"result": result})
    return result


def relaunch_record(record: QueueRecord) -> dict[str, Any]:
    """One delay-queue message; an error fails only this record (ReportBatchItemFailures)."""
    try:
        result = relaunch_when_due(
            record.body,
            settings=settings,
            clients=clients,
            once=once,
            now=datetime.now(UTC),
            random=random.random,
        )
    except RequestError as error:
        logger.error(
            f"relaunch message {record.message_id} refused; it stays in the queue until its "
            f"dead-letter queue: {error.summary}",
            extra={"problems": error.problems},
        )
        raise
    except Exception:
        logger.exception(
            f"relaunch message {record.message_id} not handled; SQS will deliver it again"
        )
        raise
    logger.set_correlation_id(result.get("origin"))
    record_outcome(result)
    logger.info("relaunch message handled", extra={"result": result})
    return result


def record_outcome(result: dict[str, Any]) -> None:
    replayed = result.get("replayed", [])
    name, effect = OUTCOME_METRICS.get(result.get("action", ""), ("", ""))
    if name and effect not in replayed:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    if "deadLettered" in result and "dead-letter" not in replayed:
        metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=1)
    if replayed:
        metrics.add_metric(name="DuplicatesAbsorbed", unit=MetricUnit.Count, value=len(replayed))
