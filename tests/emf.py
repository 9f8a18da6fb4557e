"""Reading the CloudWatch embedded metric format (EMF) lines a handler printed."""

from __future__ import annotations

import json


def metric_totals(output: str) -> dict[str, float]:
    """Metric name -> its sum over every EMF line in ``output`` (one line per flush)."""
    totals: dict[str, float] = {}
    for line in output.splitlines():
        if '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                total = sum(value) if isinstance(value, list) else value
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + total
    return totals
