"""Watch: each schedule's expectations against its runs; a missed firing or an overdue run
becomes one notice for the notifier."""

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

from batchwire.config import load_settings
from batchwire.errors import RequestError
from batchwire.idempotency import OnceStore
from batchwire.tracing import powertools_tracer
from batchwire.watch import WatchClients, WatchRun, WatchSettings, run_watch

logger = Logger()
# AWS calls are all this function does: trace those (patch_all would also import and patch
# sqlite3 and http.client, 1 MB and 4 ms of cold start for nothing).
tracer = powertools_tracer(["botocore"])
metrics = Metrics()
settings = load_settings(WatchSettings)
clients = WatchClients(
    scheduler=boto3.client("scheduler"),
    batch=boto3.client("batch"),
    dynamodb=boto3.client("dynamodb"),
    sns=boto3.client("sns"),
)
once = OnceStore(settings.idempotency_table, "batchwire.watch", settings.idempotency_ttl_seconds)

# What init made lives as long as the process: frozen, later collections skip it. The few
# cycles init left as garbage (about 0.3 MB by bench/) are kept with it.
gc.freeze()
gc.enable()

_METRICS = {"missed": "FiringsMissed", "overdue": "RunsOverdue", "ok": "RunsOnTime"}


@logger.inject_lambda_context(log_event=False, correlation_id_path="scheduledTime")
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    once.register(context)
    _, _, _, region, account, *_ = context.invoked_function_arn.split(":")
    try:
        run = run_watch(
            event,
            now=datetime.now(UTC),
            settings=settings,
            clients=clients,
            once=once,
            region=region,
            account=account,
        )
    except RequestError as error:
        metrics.add_metric(name="WatchFailed", unit=MetricUnit.Count, value=1)
        logger.error(f"event refused: {error.summary}", extra={"problems": error.problems})
        raise
    except Exception:
        metrics.add_metric(name="WatchFailed", unit=MetricUnit.Count, value=1)
        logger.exception("watch failed; the verdicts not recorded are given by the next run")
        raise
    report(run)
    return run.as_dict()


def report(run: WatchRun) -> None:
    """A metric per kind of verdict given now, a log line per notice, one per unreadable
    expectation (counted as WatchFailed: the schedule is not watched until it is fixed)."""
    for verdict, name in _METRICS.items():
        if count := run.count(verdict):  # type: ignore[arg-type]
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
    for item in run.reported:
        finding = item.finding
        if finding.verdict != "ok":
            logger.warning(
                f"{finding.verdict}: {finding.schedule.name} at {finding.scheduled_time}",
                extra={"lines": list(finding.lines), "publishedNow": item.published_now},
            )
    for problem in run.unreadable:
        metrics.add_metric(name="WatchFailed", unit=MetricUnit.Count, value=1)
        logger.error(f"expectation unreadable, schedule not watched: {problem}")
    if not run.watched:
        logger.info("no schedule of the group declares an expectation; nothing to watch")
