"""Scaler: every minute, each queue's ECS consumer service sized to the queue's backlog."""

from __future__ import annotations

import gc

# No garbage collection during init: the imports and clients below make objects that live as
# long as the process, and each collection would rescan them all (about 35 ms of CPU at cold
# start, measured with bench/). Collection resumes at the end of init with them frozen.
gc.disable()

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchwire.config import load_settings
from batchwire.errors import ConfigurationError, RequestError
from batchwire.scaler import Cycle, Scaler, ScalerClients, ScalerSettings, ScalingFailed
from batchwire.tracing import powertools_tracer

logger = Logger()
# AWS calls are all this function does: trace those (patch_all would also import and patch
# sqlite3 and http.client, 1 MB and 4 ms of cold start for nothing).
tracer = powertools_tracer(["botocore"])
metrics = Metrics()
settings = load_settings(ScalerSettings)
clients = ScalerClients(
    sqs=boto3.client("sqs"), ecs=boto3.client("ecs"), dynamodb=boto3.client("dynamodb")
)
scaler = Scaler.from_settings(settings, clients)

# What init made lives as long as the process: frozen, later collections skip it. The few
# cycles init left as garbage (about 0.3 MB by bench/) are kept with it.
gc.freeze()
gc.enable()


@logger.inject_lambda_context(log_event=False, correlation_id_path="scheduledTime")
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    cycles: list[Cycle] = []
    try:
        for cycle in scaler.run(event, context):
            report(cycle)
            cycles.append(cycle)
    except ScalingFailed as failure:
        report(failure.cycle)
        metrics.add_metric(name="ScalingFailed", unit=MetricUnit.Count, value=1)
        logger.error(f"{failure}; the next run decides again")
        raise
    except RequestError as error:
        metrics.add_metric(name="ScalingFailed", unit=MetricUnit.Count, value=1)
        logger.error(f"event refused: {error.summary}", extra={"problems": error.problems})
        raise
    except ConfigurationError as error:
        metrics.add_metric(name="ScalingFailed", unit=MetricUnit.Count, value=1)
        logger.error(str(error))
        raise
    except Exception:
        metrics.add_metric(name="ScalingFailed", unit=MetricUnit.Count, value=1)
        logger.exception("scaling failed; no service was changed, the next run decides again")
        raise
    if not scaler.targets:
        logger.info("no targets: SCALER_QUEUES is empty, nothing to scale")
    return summary(cycles)


def report(cycle: Cycle) -> None:
    """Per target: its backlog per task (a metric of its own), a count and a log line for a
    change, a DEBUG line otherwise."""
    for outcome in cycle.outcomes:
        target = outcome.target.service_path
        # single_metric: each target's datapoint carries its own dimension, no other's
        with single_metric(
            name="BacklogPerTask", unit=MetricUnit.Count, value=outcome.decision.backlog_per_task
        ) as metric:
            metric.add_dimension(name="target", value=target)
        fields = {**outcome.as_dict(), "cycle": cycle.number}
        if outcome.status == "scaled_out":
            metrics.add_metric(name="ScaledOut", unit=MetricUnit.Count, value=1)
            logger.info(f"{target}: {outcome.decision.reason}", extra=fields)
        elif outcome.status == "scaled_in":
            metrics.add_metric(name="ScaledIn", unit=MetricUnit.Count, value=1)
            logger.info(f"{target}: {outcome.decision.reason}", extra=fields)
        elif outcome.status == "lost":
            logger.info(
                f"{target}: not applied, another scaler run changed its memory first; the next "
                f"run decides again: {outcome.decision.reason}",
                extra=fields,
            )
        elif outcome.status == "failed":
            logger.error(f"{target}: desiredCount not set: {outcome.error}", extra=fields)
        else:
            logger.debug(f"{target}: {outcome.decision.reason}", extra=fields)


def summary(cycles: list[Cycle]) -> dict[str, Any]:
    """What the invocation returns: cycles run, changes, and each target after the last."""
    return {
        "cycles": len(cycles),
        "planned": settings.polls_per_minute if scaler.targets else 0,
        "scaledOut": sum(cycle.count("scaled_out") for cycle in cycles),
        "scaledIn": sum(cycle.count("scaled_in") for cycle in cycles),
        "targets": [outcome.as_dict() for outcome in cycles[-1].outcomes] if cycles else [],
    }
