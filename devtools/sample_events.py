"""CloudWatch Logs subscription payloads, built the way CloudWatch Logs builds them.

A subscription delivers ``{"awslogs": {"data": base64(gzip(json))}}`` holding the events of
one log stream that passed the filter pattern. ``subscription_event`` builds one from log
messages, keeping only those the template's default filter pattern passes, so tests and
the demo see what Lambda would receive. Run as a script, it (re)writes the committed
sample ``events/cloudwatch-logs-batch-traceback.json``:

    python -m devtools.sample_events
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from devtools.filter_pattern import matches
from devtools.template import ROOT, load_template

ACCOUNT_ID = "123456789012"
#: Default time of a payload's first event: 2026-11-23 02:00:03 UTC.
SAMPLE_START_MS = 1795399203000

BATCH_STREAM = "feedstream-Broadbean/default/7c1f0e3a9d2b4c6e8f1a2b3c4d5e6f70"

#: One Batch job's log, one record per event (awslogs-datetime-format keeps a traceback
#: together with the record that logged it, as docs/notifier.md recommends).
BATCH_JOB_LOG = (
    "2026-11-23 02:00:03,118 INFO feedstream.import: fetching feed broadbean since 24h",
    "2026-11-23 02:00:09,551 WARNING feedstream.http: slow answer (4.2 s), retrying",
    "2026-11-23 02:00:13,402 ERROR feedstream.http: GET "
    "https://feedbot:Xk29pQ7w@feeds.broadbean.example/export?since=24h answered 502",
    "2026-11-23 02:00:13,412 ERROR feedstream.import: import failed\n"
    "Traceback (most recent call last):\n"
    '  File "/app/feedstream/importer.py", line 88, in run\n'
    "    rows = parse(feed)\n"
    '  File "/app/feedstream/parse.py", line 41, in parse\n'
    '    raise ValueError(f"row {number}: unexpected column {name!r}")\n'
    "ValueError: row 4120: unexpected column 'salary_band'",
    "2026-11-23 02:00:13,415 CRITICAL feedstream: giving up after 1 failed feed; exit code 1",
    "2026-11-23 02:00:13,420 INFO feedstream: shutting down",
)


def default_filter_pattern() -> str:
    """The subscription filter pattern template.yaml deploys by default."""
    template = load_template()
    pattern: str = template["Parameters"]["NotifierFilterPattern"]["Default"]
    return pattern


def subscription_payload(
    group: str,
    stream: str,
    messages: Sequence[str],
    start_ms: int = SAMPLE_START_MS,
    step_ms: int = 1,
    pattern: str | None = None,
    timestamps_ms: Sequence[int] = (),
) -> dict[str, Any]:
    """The decoded payload: ``messages`` that pass ``pattern`` (default: the template's).

    Event times are ``timestamps_ms`` when given, else ``start_ms`` + ``step_ms`` apart.
    """
    pattern = default_filter_pattern() if pattern is None else pattern
    times = list(timestamps_ms) or [start_ms + index * step_ms for index in range(len(messages))]
    events = [
        {
            # real ids are 56-digit strings derived from time and position
            "id": f"{times[index]:020d}{index:036d}",
            "timestamp": times[index],
            "message": message,
        }
        for index, message in enumerate(messages)
        if not pattern or matches(pattern, message)
    ]
    return {
        "messageType": "DATA_MESSAGE",
        "owner": ACCOUNT_ID,
        "logGroup": group,
        "logStream": stream,
        "subscriptionFilters": ["batchwire-NotifierSubscription0"],
        "logEvents": events,
    }


def encode(payload: dict[str, Any]) -> dict[str, Any]:
    """Wrap a decoded payload as Lambda receives it."""
    raw = gzip.compress(json.dumps(payload).encode(), mtime=0)
    return {"awslogs": {"data": base64.b64encode(raw).decode()}}


def subscription_event(
    group: str,
    stream: str,
    messages: Sequence[str],
    start_ms: int = SAMPLE_START_MS,
    step_ms: int = 1,
    pattern: str | None = None,
    timestamps_ms: Sequence[int] = (),
) -> dict[str, Any]:
    """The Lambda event for ``messages`` of one stream, filtered and encoded."""
    return encode(
        subscription_payload(group, stream, messages, start_ms, step_ms, pattern, timestamps_ms)
    )


def _logged_at(message: str) -> int:
    """Epoch milliseconds of a ``2026-11-23 02:00:13,412 ...`` log record (UTC)."""
    stamp = datetime.strptime(message[:23], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1000)


def main() -> None:
    times = [_logged_at(message) for message in BATCH_JOB_LOG]
    event = subscription_event("/aws/batch/job", BATCH_STREAM, BATCH_JOB_LOG, timestamps_ms=times)
    path = ROOT / "events" / "cloudwatch-logs-batch-traceback.json"
    path.write_text(json.dumps(event, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
