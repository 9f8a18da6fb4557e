"""Log notifier: log errors, ECS and Batch failures and retrier notices reach Slack."""

from __future__ import annotations

import gc

# No garbage collection during init: the imports and clients below make objects that live as
# long as the process, and each collection would rescan them all (about 35 ms of CPU at cold
# start, measured with bench/). Collection resumes at the end of init with them frozen.
gc.disable()

import re
import time
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar

import boto3
import msgspec
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchwire.config import (
    IdempotentSettings,
    RulesCacheSeconds,
    check_parameter_name,
    load_settings,
)
from batchwire.errors import ConfigurationError, RequestError
from batchwire.idempotency import OnceStore
from batchwire.notify import (
    IDEMPOTENCY_PREFIX,
    Delivery,
    FloodGate,
    Route,
    notify_slack,
    parse_routes,
)
from batchwire.redaction import build_redactor
from batchwire.rule_sources import CurrentRules, Document, ssm_parameter
from batchwire.slack import WebhookDelivery
from batchwire.tracing import powertools_tracer

#: A secret's full ARN: the name, a dash and the 6 characters Secrets Manager appends.
FULL_SECRET_ARN = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$"
)


class NotifierSettings(IdempotentSettings, frozen=True, kw_only=True):
    # regular expressions contain commas: a JSON list
    json_variables: ClassVar[frozenset[str]] = frozenset({"REDACT_PATTERNS"})
    list_variables: ClassVar[frozenset[str]] = frozenset({"ROUTE_WEBHOOK_SECRET_ARNS"})

    region: Annotated[str, msgspec.Meta(min_length=1)] = msgspec.field(name="AWS_REGION")
    webhook_secret_arn: str = msgspec.field(name="SLACK_WEBHOOK_SECRET_ARN")
    route_secret_arns: list[str] = msgspec.field(
        name="ROUTE_WEBHOOK_SECRET_ARNS", default_factory=list
    )
    # the routes in template.yaml, then those in an SSM parameter: the first match decides
    routes: str = msgspec.field(name="ROUTES", default="[]")
    routes_parameter: str | None = msgspec.field(name="ROUTES_PARAMETER", default=None)
    rules_cache_seconds: RulesCacheSeconds = msgspec.field(name="RULES_CACHE_SECONDS", default=300)
    redact_patterns: list[str] = msgspec.field(name="REDACT_PATTERNS", default_factory=list)
    alert_state_table: Annotated[str, msgspec.Meta(min_length=1)] = msgspec.field(
        name="ALERT_STATE_TABLE"
    )
    alert_window_seconds: Annotated[int, msgspec.Meta(ge=1, le=86400)] = msgspec.field(
        name="ALERT_WINDOW_SECONDS", default=300
    )
    # an alert is worth replaying for a day; a firing or a chain for two
    idempotency_ttl_seconds: Annotated[int, msgspec.Meta(ge=3600)] = msgspec.field(
        name="IDEMPOTENCY_TTL_SECONDS", default=86400
    )
    slack_timeout_seconds: Annotated[int, msgspec.Meta(ge=1, le=30)] = msgspec.field(
        name="SLACK_TIMEOUT_SECONDS", default=5
    )
    slack_max_retries: Annotated[int, msgspec.Meta(ge=0, le=5)] = msgspec.field(
        name="SLACK_MAX_RETRIES", default=2
    )
    secret_cache_seconds: Annotated[int, msgspec.Meta(ge=0)] = msgspec.field(
        name="SECRET_CACHE_SECONDS", default=300
    )

    def __post_init__(self) -> None:
        arn = self.webhook_secret_arn
        if not FULL_SECRET_ARN.match(arn):
            raise ValueError(
                f"environment variable SLACK_WEBHOOK_SECRET_ARN={arn!r}: must be the full ARN "
                "of the Secrets Manager secret holding the Slack webhook URL, ending in the 6 "
                "characters Secrets Manager appends to its name, as IAM grants exactly that ARN "
                "(template parameter SlackWebhookSecretArn)"
            )
        check_parameter_name("ROUTES_PARAMETER", self.routes_parameter)


logger = Logger()
# Trace the AWS calls and the Slack posts (slack_sdk posts with http.client); patch_all
# would also import and patch sqlite3, which this function never uses.
tracer = powertools_tracer(["botocore", "httplib"])
metrics = Metrics()
try:
    settings = load_settings(NotifierSettings)
except ConfigurationError as error:
    # the error quotes the wrong value: a webhook URL put where a secret's ARN belongs must
    # not reach the logs
    raise ConfigurationError(build_redactor().redact(str(error))) from None
redactor = build_redactor(settings.redact_patterns)


def routes_from(documents: Sequence[Document]) -> tuple[Route, ...]:
    """The routes of each document in order; each may use only the allowed webhook secrets."""
    allowed = [settings.webhook_secret_arn, *settings.route_secret_arns]
    routes: list[Route] = []
    for source, text in documents:
        try:
            routes.extend(parse_routes(text, allowed))
        except ConfigurationError as error:
            # the error quotes the whole routing rule: a webhook URL put where a secret's
            # ARN belongs must not reach the logs
            message = str(error) if source == "ROUTES" else f"{source}: {error}"
            raise ConfigurationError(redactor.redact(message)) from None
    return tuple(routes)


# Read (and the parameter fetched) now, so that a bad route fails the cold start
current_routes = CurrentRules(
    routes_from,
    [("ROUTES", settings.routes)],
    ssm_parameter(settings.routes_parameter, "ROUTES_PARAMETER", settings.rules_cache_seconds),
)
gate = FloodGate(
    settings.alert_state_table, settings.alert_window_seconds, boto3.client("dynamodb")
)
once = OnceStore(settings.idempotency_table, IDEMPOTENCY_PREFIX, settings.idempotency_ttl_seconds)
webhook = WebhookDelivery(
    timeout_seconds=settings.slack_timeout_seconds, max_retries=settings.slack_max_retries
)


# A client from the default session, as every client here: Powertools' default provider
# (parameters.get_secret) builds a boto3 session of its own and loads the AWS data files a
# second time on the first post (measured with bench/: 52 ms and 9.7 MB there, 4 ms and
# 0.2 MB here; the peak on a maximum batch fell from 71.8 to 69.1 MB).
secrets = SecretsProvider(boto3_client=boto3.client("secretsmanager"))


def webhook_url(secret_arn: str) -> str:
    """The webhook URL stored in ``secret_arn`` (cached); never logged."""
    url = secrets.get(secret_arn, max_age=settings.secret_cache_seconds)
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ConfigurationError(
            f"secret {secret_arn}: its value is not a Slack webhook URL (expected https://...)"
        )
    return url


def delivery() -> Delivery:
    """How alerts leave, with the routes in use now (ROUTES_PARAMETER's value may change)."""
    return Delivery(settings.webhook_secret_arn, current_routes(), webhook_url, webhook.post)


# What init made lives as long as the process: frozen, later collections skip it. The few
# cycles init left as garbage (about 0.3 MB by bench/) are kept with it.
gc.freeze()
gc.enable()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    once.register(context)
    logger.set_correlation_id(context.aws_request_id)
    decided: list[dict[str, Any]] = []
    try:
        result = notify_slack(
            event,
            region=settings.region,
            now=time.time(),
            gate=gate,
            once=once,
            redactor=redactor,
            delivery=delivery(),
            on_decided=decided.append,
        )
    except RequestError as error:
        metrics.add_metric(name="NotifyFailed", unit=MetricUnit.Count, value=1)
        logger.error("event refused; nothing was posted", extra={"problems": error.problems})
        raise
    except Exception:
        metrics.add_metric(name="NotifyFailed", unit=MetricUnit.Count, value=1)
        logger.exception("alert not delivered; Lambda retries, then the on-failure destination")
        raise
    finally:
        # Counted when posted or held back, by a delivery that fails afterwards too: its
        # redelivery replays those outcomes from their records and counts them as duplicates
        posted = sum(1 for outcome in decided if outcome["posted"])
        metrics.add_metric(name="AlertsPosted", unit=MetricUnit.Count, value=posted)
        metrics.add_metric(
            name="AlertsSuppressed", unit=MetricUnit.Count, value=len(decided) - posted
        )
    absorbed = len(result["alerts"]) - len(decided)
    if absorbed:
        metrics.add_metric(name="DuplicatesAbsorbed", unit=MetricUnit.Count, value=absorbed)
    logger.info("alerts handled", extra={"alerts": result["alerts"]})
    return result
