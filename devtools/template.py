"""Reading template.yaml the way the SAM CLI does (its own loader, its own providers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from samcli.yamlhelper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as a dict, CloudFormation short-form tags (!Ref, !Sub...) included."""
    parsed: dict[str, Any] = yaml_parse(path.read_text())
    return parsed
