"""Benchmarks only the log notifier has (issue 7, items 3 and 4).

Every function takes the notifier's handler (or module) as a parameter; ``run`` is what
``bench.child extra notifier`` calls once functions/notifier.py exists and is registered.
It runs in a fresh child with the function's environment, against the moto server the
runner starts (the flood-control table is real), with Slack answered in-process: every
webhook post is counted at slack_sdk's HTTP layer and answered 200 at once.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench.child import BenchContext, trace_header
from bench.payloads import (
    adversarial_log_lines,
    decode_floor,
    log_batch_document,
    log_subscription_event,
    plain_log_line,
)
from bench.registry import HandlerSpec
from bench.stats import median

Handler = Callable[[Any, Any], Any]

#: Handler time on a maximum batch against base64 + gunzip + json.loads of it.
FLOOR_RATIO = 3.0
#: Slack posts for a flood of one error (and, by the same rule, for one batch of it).
MAX_POSTS = 2
FLOOD_BATCHES = 100
#: Redaction of the worst 256 KB line against the same redactor on a plain line of that
#: length. Linear patterns stay within 1-3x; one that retries even a few hundred
#: characters at each position is hundreds of times slower, a quadratic one never ends.
REDACTION_RATIO = 4.0


@contextmanager
def counted_slack_posts() -> Iterator[list[dict[str, Any]]]:
    """Answer every slack_sdk webhook post with 200 "ok" and keep its body."""
    from slack_sdk.webhook.client import WebhookClient
    from slack_sdk.webhook.webhook_response import WebhookResponse

    posts: list[dict[str, Any]] = []
    original = WebhookClient._perform_http_request

    def answer(self: WebhookClient, *, body: dict[str, Any], headers: dict[str, str]) -> Any:
        posts.append(body)
        return WebhookResponse(url=self.url, status_code=200, body="ok", headers={})

    WebhookClient._perform_http_request = answer  # type: ignore[method-assign]
    try:
        yield posts
    finally:
        WebhookClient._perform_http_request = original  # type: ignore[method-assign]


@contextmanager
def counted_aws_calls() -> Iterator[Counter[str]]:
    """Count every botocore API call of every client, as ``service.Operation``."""
    from botocore.client import BaseClient

    calls: Counter[str] = Counter()
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def counting(self: BaseClient, operation_name: str, api_params: Any) -> Any:
        calls[f"{self.meta.service_model.service_name}.{operation_name}"] += 1
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = counting  # type: ignore[attr-defined]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original  # type: ignore[attr-defined]


def invoke(handler: Handler, event: Any) -> Any:
    os.environ["_X_AMZN_TRACE_ID"] = trace_header()
    return handler(event, BenchContext())


_batches_made = itertools.count()


def distinct_max_batches(count: int) -> list[dict[str, Any]]:
    """``count`` maximum batches, each a different error in a different log group, never
    the same as one made before in this process, so no batch is held back by the flood
    control (or answered by the idempotency record) of an earlier one."""
    events = []
    for _ in range(count):
        index = next(_batches_made)
        rule = "".join(chr(65 + int(digit)) for digit in str(index))  # not a number: kept
        events.append(
            log_subscription_event(
                log_batch_document(
                    message=f"ERROR row rejected by rule {rule}",
                    log_group=f"/aws/batch/job-{rule}",
                )
            )
        )
    return events


@dataclass(frozen=True)
class BatchTimes:
    """Medians in ms: CPU time of this process, and wall time (which adds the round trips
    to the moto server: DynamoDB and, on the first post, Secrets Manager)."""

    handler_cpu: float
    floor_cpu: float
    handler_wall: float
    floor_wall: float


def max_batch_time(handler: Handler, repetitions: int = 7) -> BatchTimes:
    """The handler on a maximum batch against the decoding floor on the same batch,
    alternated (order swapped each repetition). Each repetition is a new error, so each
    one is decoded, claimed in flood control, formatted and posted."""
    events = distinct_max_batches(repetitions)
    cpu: dict[str, list[float]] = {"handler": [], "floor": []}
    wall: dict[str, list[float]] = {"handler": [], "floor": []}
    steps: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("floor", decode_floor),
        ("handler", lambda event: invoke(handler, event)),
    ]
    with counted_slack_posts() as posts:
        for index, event in enumerate(events):
            for name, step in steps if index % 2 == 0 else reversed(steps):
                started, cpu_started = time.perf_counter(), time.process_time()
                step(event)
                cpu[name].append((time.process_time() - cpu_started) * 1000)
                wall[name].append((time.perf_counter() - started) * 1000)
    if len(posts) != repetitions:
        raise RuntimeError(f"{repetitions} new errors made {len(posts)} Slack posts, not one each")
    return BatchTimes(
        median(cpu["handler"]), median(cpu["floor"]), median(wall["handler"]), median(wall["floor"])
    )


def posts_for_one_batch(handler: Handler, event: dict[str, Any]) -> int:
    """Slack posts the handler makes for one batch."""
    with counted_slack_posts() as posts:
        invoke(handler, event)
    return len(posts)


def flood(handler: Handler, batches: int = FLOOD_BATCHES) -> tuple[int, Counter[str]]:
    """``batches`` maximum batches of the same error in the same stream, back to back
    (well inside any flood window): Slack posts in all, and AWS calls in all."""
    document = log_batch_document(message="ERROR flood: row rejected", log_group="/aws/flood")
    with counted_slack_posts() as posts, counted_aws_calls() as calls:
        for index in range(batches):
            # new events, as CloudWatch delivers them: new ids and times (the same ids would
            # be one redelivered batch, answered by idempotency before flood control)
            for offset, log_event in enumerate(document["logEvents"]):
                log_event["id"] = str(3 * 10**55 + index * 10_000 + offset)
                log_event["timestamp"] = 1_795_399_200_000 + index * 10_000 + offset
            invoke(handler, log_subscription_event(document))
    return len(posts), calls


def cpu_ms(action: Callable[[], Any], repetitions: int = 3) -> float:
    """Median CPU ms of ``action``."""
    samples = []
    for _ in range(repetitions):
        started = time.process_time()
        action()
        samples.append((time.process_time() - started) * 1000)
    return median(samples)


def redaction_worst_case(redactor: Any) -> dict[str, Any]:
    """The deployed redactor on each adversarial 256 KB line, against the same redactor on
    a plain line of the same length, and against one pass of a trivial regex."""
    plain = plain_log_line()
    plain_ms = cpu_ms(lambda: redactor.redact(plain))
    trivial = re.compile(r"\d+")
    cases = []
    for name, (pattern, line) in adversarial_log_lines().items():
        redact_ms = cpu_ms(functools.partial(redactor.redact, line))
        trivial_ms = cpu_ms(functools.partial(trivial.sub, "", line))
        cases.append((redact_ms, trivial_ms, name, pattern))
    worst_ms, _, worst_name, worst_pattern = max(cases)
    detail = "; ".join(
        f"{pattern} ({name}) {ms:.1f} ms = {ms / trivial_ms:.0f}x one \\d+ pass"
        for ms, trivial_ms, name, pattern in cases
    )
    return {
        "measurement": "notifier: redaction of a 256 KB line, worst case vs plain line",
        "value": worst_ms,
        "baseline": plain_ms,
        "comparison": "ratio<=",
        "limit": REDACTION_RATIO,
        "unit": "ms",
        "note": (
            f"CPU, median of 3; the deployed redactor ({len(redactor.patterns)} patterns); "
            f"worst: {worst_pattern} ({worst_name}); baseline: the same redactor on a plain "
            f"256 KB line (linear reference). Every case: {detail}"
        ),
    }


def run(spec: HandlerSpec) -> list[dict[str, Any]]:
    """Rows for the table: max-batch time against the floor, posts per batch against the
    naive one-post-per-line notifier, and the flood."""
    module = importlib.import_module(spec.module)
    handler: Handler = getattr(module, spec.handler)
    naive_handler: Handler = importlib.import_module(spec.naive).handler
    invoke(handler, distinct_max_batches(1)[0])  # cold invocation, not counted

    times = max_batch_time(handler)
    one_batch = distinct_max_batches(1)[0]
    size = len(decode_floor(one_batch)["logEvents"])
    posts = posts_for_one_batch(handler, one_batch)
    naive_posts = posts_for_one_batch(naive_handler, one_batch)
    flood_posts, flood_calls = flood(handler)
    redaction = redaction_worst_case(module.redactor)
    dynamodb = sum(n for name, n in flood_calls.items() if name.startswith("dynamodb."))
    calls = ", ".join(f"{n} {name}" for name, n in sorted(flood_calls.items())) or "none"
    return [
        {
            "measurement": f"{spec.name}: max batch, CPU ms vs decode floor",
            "value": times.handler_cpu,
            "baseline": times.floor_cpu,
            "comparison": "ratio<=",
            "limit": FLOOR_RATIO,
            "unit": "ms",
            "note": (
                f"{size:,} events of one stream, 1.28 MB of JSON; floor = base64 + gunzip + "
                "json.loads of the same batch; median of 7, alternated, each a new error "
                "(decoded, claimed in flood control, formatted, posted once); wall time "
                f"{times.handler_wall:.1f} vs {times.floor_wall:.1f} ms, the difference "
                "including 3 DynamoDB round trips to the local moto server"
            ),
        },
        {
            "measurement": f"{spec.name}: Slack posts for one max batch",
            "value": posts,
            "baseline": naive_posts,
            "comparison": "value<=",
            "limit": MAX_POSTS,
            "note": "baseline: the naive notifier, one post per line",
        },
        {
            "measurement": f"{spec.name}: flood, Slack posts in {FLOOD_BATCHES} batches",
            "value": flood_posts,
            "baseline": naive_posts * FLOOD_BATCHES,
            "comparison": "value<=",
            "limit": MAX_POSTS,
            "note": "same error, same stream, back to back; baseline: one post per line",
        },
        {
            "measurement": f"{spec.name}: flood, DynamoDB calls per batch",
            "value": dynamodb / FLOOD_BATCHES,
            "baseline": None,
            "comparison": "info",
            "note": f"all AWS calls in the flood: {calls}",
        },
        redaction,
    ]
