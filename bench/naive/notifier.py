"""Naive log notifier: decode the subscription payload, post every line to Slack.

Written as a team writes it by hand when the webhook URL may not sit in the environment:
``import json, boto3``, a Secrets Manager client, the URL read once on the first post.
"""

import base64
import gzip
import json
import os

import boto3
from slack_sdk.webhook import WebhookClient

secrets = boto3.client("secretsmanager")
slack = None


def handler(event, context):
    global slack
    if slack is None:
        secret = secrets.get_secret_value(SecretId=os.environ["SLACK_WEBHOOK_SECRET_ARN"])
        slack = WebhookClient(secret["SecretString"])
    document = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    for log_event in document.get("logEvents", []):
        slack.send(text=f"{document['logGroup']}: {log_event['message']}")
    return {"posted": len(document.get("logEvents", []))}
