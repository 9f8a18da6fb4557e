"""The stack's RunsTable for tests that run outside a deployed stack.

The keys (``pk``/``sk``) and the TTL attribute are read from template.yaml's ``RunsTable``
resource, so a table made here is the one the submitter, chainer, watch and ``batchwire
runs`` meet when deployed: a change to the template reaches every test that uses it.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from devtools.template import load_template

LOGICAL_ID = "RunsTable"


@functools.cache
def _declared() -> dict[str, Any]:
    resource: dict[str, Any] = load_template()["Resources"][LOGICAL_ID]
    return resource


def runs_table_resource() -> dict[str, Any]:
    """The RunsTable resource as template.yaml declares it (type and properties), for a
    test's own CloudFormation template."""
    resource = _declared()
    return {"Type": resource["Type"], "Properties": copy.deepcopy(resource["Properties"])}


def create_runs_table(dynamodb: Any, name: str) -> str:
    """Create table ``name`` with the RunsTable's keys and TTL through the DynamoDB client
    ``dynamodb`` (moto in-process or a moto server); returns ``name``."""
    properties = runs_table_resource()["Properties"]
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        BillingMode=properties["BillingMode"],
    )
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={
                "AttributeName": ttl["AttributeName"],
                "Enabled": bool(ttl["Enabled"]),
            },
        )
    return name
