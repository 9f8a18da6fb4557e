"""Schedule submitter: EventBridge Scheduler or a cron rule fires, AWS Batch jobs start."""

from __future__ import annotations

import gc

# No garbage collection during init: the imports and clients below make objects that live as
# long as the process, and each collection would rescan them all (about 35 ms of CPU at cold
# start, measured with bench/). Collection resumes at the end of init with them frozen.
gc.disable()

from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchwire.config import IdempotentSettings, load_settings
from batchwire.errors import RequestError
from batchwire.idempotency import OnceStore
from batchwire.jobs import SubmittedJob
from batchwire.runs import RunSettings, run_records
from batchwire.schedule import IDEMPOTENCY_PREFIX, submit_scheduled_jobs
from batchwire.tracing import powertools_tracer

logger = Logger()
# AWS calls are all this function does: trace those (patch_all would also import and patch
# sqlite3 and http.client, 1 MB and 4 ms of cold start for nothing).
tracer = powertools_tracer(["botocore"])
metrics = Metrics()
settings = load_settings(IdempotentSettings)
batch = boto3.client("batch")
once = OnceStore(settings.idempotency_table, IDEMPOTENCY_PREFIX, settings.idempotency_ttl_seconds)
runs = run_records(load_settings(RunSettings), boto3.client("dynamodb"))

# What init made lives as long as the process: frozen, later collections skip it. The few
# cycles init left as garbage (about 0.3 MB by bench/) are kept with it.
gc.freeze()
gc.enable()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    once.register(context)
    submitted: list[SubmittedJob] = []
    try:
        result = submit_scheduled_jobs(
            event,
            request_id=context.aws_request_id,
            now=datetime.now(UTC),
            batch=batch,
            once=once,
            runs=runs,
            on_submitted=submitted.append,
        )
    except RequestError as error:
        metrics.add_metric(name="SubmitFailed", unit=MetricUnit.Count, value=1)
        logger.error(
            "job request refused; nothing was submitted", extra={"problems": error.problems}
        )
        raise
    except Exception:
        metrics.add_metric(name="SubmitFailed", unit=MetricUnit.Count, value=1)
        logger.exception("submission failed; the trigger will retry the firing")
        raise
    finally:
        # Counted when submitted, by a delivery that fails afterwards too: its redelivery
        # finds the jobs recorded and counts them as duplicates
        if submitted:
            metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=len(submitted))
    logger.set_correlation_id(result["firing"])
    absorbed = len(result["jobs"]) - result["submittedNow"]
    if absorbed:
        metrics.add_metric(name="DuplicatesAbsorbed", unit=MetricUnit.Count, value=absorbed)
    logger.info(
        "jobs submitted" if submitted else "firing delivered again; its jobs were submitted before",
        extra={
            "jobs": result["jobs"],
            "firing": result["firing"],
            "submittedNow": result["submittedNow"],
        },
    )
    return result
