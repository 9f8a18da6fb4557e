"""Slack Incoming Webhooks: Block Kit limits, and delivery that never fails silently.

Delivery uses slack_sdk's WebhookClient with its retry handlers: 429 waits for Retry-After,
connection errors and timeouts retry, 500/503 retry with backoff. Whatever is left after
the retries (a 5xx, a 404/410 for a revoked webhook, a timeout) raises SlackDeliveryError,
so Lambda's asynchronous retries and the on-failure destination keep the alert.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
#: Slack shows about 4,000 characters of a message's ``text``; longer is cut by Slack.
MAX_FALLBACK_TEXT = 3000


class SlackDeliveryError(Exception):
    """Slack did not accept the message after every retry; the alert is not delivered."""

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def clip(text: str, limit: int, marker: str = "…") -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``marker`` when cut."""
    if len(text) <= limit:
        return text
    return text[: limit - len(marker)] + marker


def mrkdwn(text: str, limit: int = MAX_SECTION_TEXT) -> dict[str, str]:
    return {"type": "mrkdwn", "text": clip(text, limit) or " "}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": mrkdwn(text)}


def fields_section(fields: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "section",
        "fields": [mrkdwn(item, MAX_FIELD_TEXT) for item in fields[:MAX_FIELDS]],
    }


def context(*texts: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [mrkdwn(item) for item in texts[:MAX_CONTEXT_ELEMENTS]],
    }


def code_block(lines: Sequence[str], more_lines: int, limit: int = MAX_SECTION_TEXT) -> str:
    """Lines in a ``` block within ``limit`` characters; what does not fit is counted.

    The tail says "… 9,987 more lines" so nobody mistakes the excerpt for the whole log.
    Lines must already be redacted and escaped.
    """
    fence = "```"
    shown: list[str] = []
    hidden = more_lines
    for index, line in enumerate(lines):
        remaining = len(lines) - index - 1 + more_lines
        tail = _more(remaining) if remaining else ""
        candidate = "\n".join([*shown, line])
        if len(fence * 2 + "\n" + candidate + tail) > limit:
            if not shown:
                # a single line longer than the block: show its start, marked as cut
                room = limit - len(fence * 2 + "\n…") - len(_more(remaining + 1))
                shown.append(line[: max(room, 0)] + "…")
                hidden = remaining
            else:
                hidden = len(lines) - index + more_lines
            break
        shown.append(line)
        hidden = more_lines
    body = "\n".join(shown) if shown else " "
    tail = _more(hidden) if hidden else ""
    return clip(f"{fence}{body}{fence}{tail}", limit)


def _more(count: int) -> str:
    return f"\n… {count:,} more line{'s' if count != 1 else ''}"


def link(url: str, label: str) -> str:
    """A mrkdwn link; ``label`` must be escaped already, ``url`` must not contain ``|>``."""
    return f"<{url}|{label}>"


@dataclass(frozen=True)
class WebhookDelivery:
    """How to post: timeout per attempt and retries per kind of failure."""

    timeout_seconds: int = 5
    max_retries: int = 2
    backoff_seconds: float = 0.5

    def post(self, url: str, payload: dict[str, Any]) -> None:
        """Post ``payload`` to the webhook at ``url``; raise SlackDeliveryError if not accepted.

        The URL is a secret: it never appears in an error message (only its host).
        """
        from slack_sdk.http_retry.builtin_handlers import (
            ConnectionErrorRetryHandler,
            RateLimitErrorRetryHandler,
            ServerErrorRetryHandler,
        )
        from slack_sdk.http_retry.builtin_interval_calculators import (
            BackoffRetryIntervalCalculator,
        )
        from slack_sdk.webhook import WebhookClient

        # slack_sdk logs retries with the full webhook URL, a secret: keep its logger silent
        quiet = logging.getLogger("batchwire.slack.webhook_client")
        quiet.setLevel(logging.CRITICAL + 1)
        quiet.propagate = False
        backoff = BackoffRetryIntervalCalculator(backoff_factor=self.backoff_seconds)
        client = WebhookClient(
            url,
            timeout=self.timeout_seconds,
            logger=quiet,
            retry_handlers=[
                RateLimitErrorRetryHandler(max_retry_count=self.max_retries),
                ServerErrorRetryHandler(
                    max_retry_count=self.max_retries, interval_calculator=backoff
                ),
                ConnectionErrorRetryHandler(
                    max_retry_count=self.max_retries,
                    interval_calculator=backoff,
                    # a read timeout is a TimeoutError, not a URLError: retry it too
                    error_types=[OSError],
                ),
            ],
        )
        host = urlsplit(url).netloc or "(no host)"
        try:
            response = client.send_dict(payload)
        except OSError as error:
            raise SlackDeliveryError(
                f"Slack webhook at {host} unreachable after {self.max_retries} retries: "
                f"{type(error).__name__}"
            ) from None
        if response.status_code != 200:
            raise SlackDeliveryError(
                f"Slack webhook at {host} answered {response.status_code} "
                f"{clip(response.body or '', 300)!r} after retries; the message was not posted",
                status=response.status_code,
                body=response.body or "",
            )
