"""Naive log notifier: decode the subscription payload, post every line to Slack."""

import base64
import gzip
import json
import os

from slack_sdk.webhook import WebhookClient

slack = WebhookClient(os.environ.get("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T/B/X"))


def handler(event, context):
    document = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    for log_event in document.get("logEvents", []):
        slack.send(text=f"{document['logGroup']}: {log_event['message']}")
    return {"posted": len(document.get("logEvents", []))}
