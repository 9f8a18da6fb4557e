"""Chainer: a finished job publishes (SNS, SQS) or succeeds (EventBridge); the next jobs start."""

from __future__ import annotations

import gc

# No garbage collection during init: the imports and clients below make objects that live as
# long as the process, and each collection would rescan them all (about 35 ms of CPU at cold
# start, measured with bench/). Collection resumes at the end of init with them frozen.
gc.disable()

from typing import Annotated, Any, Literal

import boto3
import msgspec
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchwire.chain import (
    IDEMPOTENCY_PREFIX,
    ChainOptions,
    ChainRecordsFailed,
    RecordOutcome,
    UnroutedError,
    chain_event,
)
from batchwire.chain_rules import chain_rules_from
from batchwire.config import (
    IdempotentSettings,
    RulesCacheSeconds,
    check_parameter_name,
    load_settings,
)
from batchwire.errors import ConfigurationError, RequestError
from batchwire.idempotency import OnceStore
from batchwire.jobs import SubmittedJob
from batchwire.rule_sources import CurrentRules, ssm_parameter
from batchwire.runs import RunSettings, run_records
from batchwire.tracing import powertools_tracer


class ChainerSettings(IdempotentSettings, frozen=True, kw_only=True):
    # the rules in template.yaml, the example workload's, then those in an SSM parameter
    chain_rules: str = msgspec.field(name="CHAIN_RULES", default="")
    example_chain_rules: str = msgspec.field(name="EXAMPLE_CHAIN_RULES", default="")
    chain_rules_parameter: str | None = msgspec.field(name="CHAIN_RULES_PARAMETER", default=None)
    rules_cache_seconds: RulesCacheSeconds = msgspec.field(name="RULES_CACHE_SECONDS", default=300)
    max_hops: Annotated[int, msgspec.Meta(ge=1, le=100)] = msgspec.field(
        name="CHAIN_MAX_HOPS", default=10
    )
    unrouted_action: Literal["warn", "error"] = msgspec.field(
        name="UNROUTED_ACTION", default="warn"
    )

    def __post_init__(self) -> None:
        check_parameter_name("CHAIN_RULES_PARAMETER", self.chain_rules_parameter)


logger = Logger()
# AWS calls are all this function does: trace those (patch_all would also import and patch
# sqlite3 and http.client, 1 MB and 4 ms of cold start for nothing).
tracer = powertools_tracer(["botocore"])
metrics = Metrics()
settings = load_settings(ChainerSettings)
# Read (and the parameter fetched) now, so that a bad rule fails the cold start
current_rules = CurrentRules(
    chain_rules_from,
    [("CHAIN_RULES", settings.chain_rules), ("EXAMPLE_CHAIN_RULES", settings.example_chain_rules)],
    ssm_parameter(
        settings.chain_rules_parameter, "CHAIN_RULES_PARAMETER", settings.rules_cache_seconds
    ),
)
options = ChainOptions(
    max_hops=settings.max_hops, unrouted_is_error=settings.unrouted_action == "error"
)
batch = boto3.client("batch")
once = OnceStore(settings.idempotency_table, IDEMPOTENCY_PREFIX, settings.idempotency_ttl_seconds)
runs = run_records(load_settings(RunSettings), boto3.client("dynamodb"))

# What init made lives as long as the process: frozen, later collections skip it. The few
# cycles init left as garbage (about 0.3 MB by bench/) are kept with it.
gc.freeze()
gc.enable()

#: The trigger's identity of the first record: EventBridge id, SNS MessageId, SQS messageId.
CORRELATION_ID_PATH = "id || Records[0].Sns.MessageId || Records[0].messageId"


@logger.inject_lambda_context(log_event=False, correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    once.register(context)
    submitted: list[SubmittedJob] = []
    try:
        rules = current_rules()
        result = chain_event(
            event,
            rules=rules,
            options=options,
            batch=batch,
            once=once,
            runs=runs,
            on_submitted=submitted.append,
        )
    except ChainRecordsFailed as failure:
        report(failure.outcomes)
        raise
    except ConfigurationError as error:  # the rules parameter changed and is invalid, or gone
        metrics.add_metric(name="ChainFailed", unit=MetricUnit.Count, value=1)
        logger.error(f"chain rules unusable; nothing was submitted, the event is retried: {error}")
        raise
    except RequestError as error:
        metrics.add_metric(name="ChainFailed", unit=MetricUnit.Count, value=1)
        if isinstance(error, UnroutedError):
            metrics.add_metric(name="Unrouted", unit=MetricUnit.Count, value=1)
        logger.error(
            f"event refused; nothing was submitted: {error.summary}",
            extra={"problems": error.problems},
        )
        raise
    except Exception:
        metrics.add_metric(name="ChainFailed", unit=MetricUnit.Count, value=1)
        logger.exception("chaining failed; the trigger will retry the event")
        raise
    finally:
        # Counted when submitted, by a delivery that fails afterwards too: its redelivery
        # finds the jobs recorded and counts them as duplicates
        if submitted:
            metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=len(submitted))
    report(result.outcomes)
    return result.response


def report(outcomes: list[RecordOutcome]) -> None:
    """One log line and the metrics for each record's outcome."""
    for outcome in outcomes:
        fields = outcome.as_dict()
        if outcome.status == "chained":
            # JobsSubmitted is counted as each job is submitted (the handler)
            absorbed = len(outcome.jobs) - outcome.submitted_now
            if absorbed:
                metrics.add_metric(name="DuplicatesAbsorbed", unit=MetricUnit.Count, value=absorbed)
            if outcome.submitted_now:
                logger.info("jobs chained", extra=fields)
            else:
                logger.info("record delivered again; its jobs were submitted before", extra=fields)
        elif outcome.status == "unrouted":
            metrics.add_metric(name="Unrouted", unit=MetricUnit.Count, value=1)
            logger.warning("no chain rule matches the record; nothing submitted", extra=fields)
        elif outcome.status == "failed":
            metrics.add_metric(name="ChainFailed", unit=MetricUnit.Count, value=1)
            if outcome.error == UnroutedError.__name__:
                metrics.add_metric(name="Unrouted", unit=MetricUnit.Count, value=1)
            logger.error("record failed; the trigger will deliver it again", extra=fields)
        else:
            logger.info("record ignored", extra=fields)
