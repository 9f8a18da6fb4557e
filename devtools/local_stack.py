"""A local stack: template.yaml deployed into moto's CloudFormation, ready to invoke.

The same deploy as ``make rehearse`` (SAM transform, package upload, CreateStack), on a
moto server in this process, with what the stack's functions act on: a Batch queue and job
definitions, an ECS cluster and task definition, and a local Slack stand-in whose URL is
the webhook secret. ``make invoke`` then runs a function with exactly the environment the
local Lambda API reports for it.

    make local-stack [PARAMS="Name=Value ..."]      # serves until Ctrl-C
    make invoke FN=SubmitterFunction EVENT=events/schedule.json   # in another terminal
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from devtools.ecs_local import EcsWorkload, create_consumer_service, create_ecs_workload
from devtools.local_aws import (
    LocalAws,
    create_batch_workload,
    feed_chain_rules,
    moto_server,
    put_chain_rules,
)
from devtools.rehearse import DeployedStack, deploy, local_slack_secret, transform
from devtools.slack_receiver import SlackReceiver, slack_receiver
from devtools.template import LOCAL_STACK_STATE, load_template

DEFAULT_STACK = "batchwire-local"
#: The queue whose consumers (service batch-jobs/consumers) the local stack's scaler sizes.
CONSUMER_QUEUE = "consumers-work"
STATE_FILE = LOCAL_STACK_STATE


def deploy_local_stack(
    local: LocalAws,
    parameters: Mapping[str, str] | None = None,
    stack_name: str = DEFAULT_STACK,
    sam_template: dict[str, Any] | None = None,
) -> DeployedStack:
    """Deploy ``template.yaml`` (or ``sam_template``) into the local engine as ``stack_name``.

    ``local`` must be a moto server of this process (``moto_server()``): the deploy works
    around moto's CloudFormation gaps in-process. ``SlackWebhookSecretArn`` defaults to a
    local secret whose value answers nothing; give the ARN of one that does to post.
    """
    values = dict(parameters or {})
    if "SlackWebhookSecretArn" not in values:
        values["SlackWebhookSecretArn"] = local_slack_secret(local)
    template = sam_template if sam_template is not None else load_template()
    return deploy(local, transform(template, values), "local", values, stack_name)


@dataclass
class LocalStack:
    """A deployed local stack and what its functions act on."""

    local: LocalAws
    stack: DeployedStack
    slack: SlackReceiver
    ecs: EcsWorkload
    batch: dict[str, str]


@contextmanager
def running_local_stack(
    parameters: Mapping[str, str] | None = None, stack_name: str = DEFAULT_STACK
) -> Iterator[LocalStack]:
    """A moto server, a Slack stand-in, the workloads and the deployed stack, for a block.

    The ECS workload's cluster is the retrier's default (``batch-jobs``), its security group
    the retrier's, and its subnet and group the dispatcher's (when ``DispatcherTaskFamily``
    turns it on); the Batch queue and definitions are the defaults the sample events
    name (``feeds``, ``feedstream-Broadbean``, ``feedstream-consumer``), and their chain
    rules are kept in SSM, as ChainRulesParameterName reads them. A queue ``consumers-work``
    and the service ``batch-jobs/consumers`` (0 tasks) are the scaler's pair. With
    ``ExampleWorkload=on`` the example's tasks run in the workload's subnet and group unless
    ``ExampleSubnetIds``/``ExampleSecurityGroupIds`` say otherwise.
    """
    with moto_server() as local, slack_receiver() as slack:
        batch = create_batch_workload(local.client)
        ecs = create_ecs_workload(local.client("ec2"), local.client("ecs"))
        local.client("sqs").create_queue(QueueName=CONSUMER_QUEUE)
        service = create_consumer_service(local.client("ecs"), ecs, "consumers")
        values = {
            "ScalerQueueNames": CONSUMER_QUEUE,
            "ScalerServices": service,
            "SlackWebhookSecretArn": local_slack_secret(local, slack.url),
            "ChainRulesParameterName": put_chain_rules(local.client, feed_chain_rules()),
            "RetrierSecurityGroupIds": ecs.security_group,
            # where the dispatcher's tasks run, when DispatcherTaskFamily turns it on
            "DispatcherSubnetIds": ecs.subnet,
            "DispatcherSecurityGroupIds": ecs.security_group,
            **(parameters or {}),
        }
        if values.get("ExampleWorkload") == "on":  # its tasks run where the others do
            values.setdefault("ExampleSubnetIds", ecs.subnet)
            values.setdefault("ExampleSecurityGroupIds", ecs.security_group)
        stack = deploy_local_stack(local, values, stack_name)
        yield LocalStack(local=local, stack=stack, slack=slack, ecs=ecs, batch=batch)


def parse_params(text: str) -> dict[str, str]:
    """``"Name=Value Other='a b'"`` -> dict, as ``sam deploy --parameter-overrides``."""
    overrides = {}
    for item in shlex.split(text or ""):
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"PARAMS: {item!r} is not Name=Value")
        overrides[name] = value
    return overrides


def main(argv: list[str] | None = None) -> int:
    import logging
    import warnings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--params", default="", help='parameter overrides, "Name=Value ..."')
    parser.add_argument("--stack", default=DEFAULT_STACK, help="stack name")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Tried to parse AWS::")
    # `kill` stops it as cleanly as Ctrl-C does
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with running_local_stack(parse_params(args.params), args.stack) as running:
        state = {"endpoint": running.local.endpoint_url, "stack": running.stack.name}
        STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
        STATE_FILE.write_text(json.dumps(state))
        print(f"stack {running.stack.name} deployed at {running.local.endpoint_url}")
        for function in running.stack.functions():
            print(f"  {function}: {running.stack.function_name(function)}")
        print(f"Slack stand-in: {running.slack.url} (posts are printed here)")
        print("make invoke FN=<LogicalId> EVENT=events/<file>.json now runs against it.")
        print("Ctrl-C stops it.", flush=True)
        seen = 0
        try:
            while True:
                time.sleep(0.5)
                for post in running.slack.accepted[seen:]:
                    print(f"Slack received: {post.get('text', post)}", flush=True)
                seen = len(running.slack.accepted)
        except KeyboardInterrupt:
            pass
        finally:
            STATE_FILE.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
