"""Envelopes other services wrap a message in, as they reach an SQS queue."""

from __future__ import annotations

import json
from typing import Any


def sns_notification(body: str) -> dict[str, Any] | None:
    """The SNS notification envelope ``body`` is (an SNS subscription without raw delivery),
    or None when it is a message of its own. Its fields are left for the caller to check."""
    if not body.lstrip().startswith("{"):
        return None
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        return None
    if isinstance(document, dict) and document.get("Type") == "Notification":
        return document
    return None
