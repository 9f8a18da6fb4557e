"""How template.yaml builds the functions and gives them their dependencies."""

from __future__ import annotations

import re
from typing import Any

import pytest

from devtools.template import ROOT, TEMPLATE, load_template
from layer.artifacts import LAYERS


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def _layers_as_sam_local_reads_them(params: dict[str, str]) -> dict[str, list[str]]:
    """Function -> its layers (local logical id, or the ARN), as sam local invoke resolves."""
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

    stacks, _ = SamLocalStackProvider.get_stacks(
        str(TEMPLATE),
        parameter_overrides=params,
        global_parameter_overrides={"AWS::Region": "eu-west-1"},
    )
    return {
        function.name: [layer.name if layer.codeuri else layer.arn for layer in function.layers]
        for function in SamFunctionProvider(stacks).get_all()
    }


def test_every_function_is_built_by_the_layer_makefile(template: dict[str, Any]) -> None:
    functions = {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert len(functions) >= 6
    for name, resource in functions.items():
        metadata = resource.get("Metadata", {})
        assert metadata.get("BuildMethod") == "makefile", name
        assert metadata.get("ContextPath") == "layer", name
        assert name.endswith("Function"), f"{name}: layer/Makefile builds build-%Function"


def test_every_layer_of_the_template_has_its_build(template: dict[str, Any]) -> None:
    layers = {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::LayerVersion"
    }
    assert set(layers) == set(LAYERS)
    for name, resource in layers.items():
        assert resource["Metadata"]["BuildMethod"] == "makefile", name
        assert resource["Properties"]["Content"] == "layer/", name
        assert resource["Properties"]["CompatibleRuntimes"] == ["python3.13"], name
        assert resource["Properties"]["CompatibleArchitectures"] == ["arm64"], name


def test_by_default_each_function_gets_the_built_layer_only() -> None:
    layers = _layers_as_sam_local_reads_them({})

    assert layers
    assert all(found == ["DependenciesLayer"] for found in layers.values()), layers


def test_aws_managed_powertools_is_the_pinned_version_for_arm64_and_python313() -> None:
    # Given the Powertools version the layer and the tests use
    requirements = (ROOT / "layer" / "requirements.txt").read_text()
    pinned = re.search(r"^aws-lambda-powertools\[[^]]*\]==(\S+)", requirements, re.M)
    assert pinned is not None

    # When the stack takes the AWS-managed Powertools layer
    layers = _layers_as_sam_local_reads_them({"PowertoolsLayer": "aws-managed"})

    # Then each function gets that version's public layer, then the other dependencies
    managed = (
        f"{{{{resolve:ssm:/aws/service/powertools/python/arm64/python3.13/{pinned.group(1)}}}}}"
    )
    assert all(found == [managed, "ExtraDependenciesLayer"] for found in layers.values()), layers


def test_the_rehearsal_lints_the_layers_local_content_as_cloudformation_receives_it() -> None:
    # Given the template as it is, and a copy whose layers lost their lint note
    import copy

    from devtools.rehearse import lint, stack_parameters, transform

    template = load_template()
    bare = copy.deepcopy(template)
    for name in ("DependenciesLayer", "ExtraDependenciesLayer"):
        bare["Resources"][name]["Metadata"].pop("cfn-lint")

    # When each is transformed and linted as the rehearsal does (both layer choices)
    def findings(source: dict[str, Any], layer: str) -> list[str]:
        secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:batchwire/slack-AbCdEf"
        overrides = {"PowertoolsLayer": layer, "SlackWebhookSecretArn": secret}
        return lint(transform(source, stack_parameters(source, overrides)))

    # Then the template is clean, and the layer's local folder is what cfn-lint saw
    assert findings(template, "built") == []
    assert findings(template, "aws-managed") == []
    assert any(" W3002 " in finding for finding in findings(bare, "built"))
