"""`make docs`: docs/parameters.md, the parameter reference, generated from template.yaml.

    python -m devtools.parameter_reference           # (re)write docs/parameters.md
    python -m devtools.parameter_reference --check   # exit 1 with a diff when it is stale

The reference lists every parameter (type, default, allowed values, description) grouped
by the function it configures, then the stack's outputs and rules. The output depends on
the template alone, so a committed copy can be compared with a fresh rendering
(tests/unit/test_parameter_reference.py does).
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from devtools.template import ROOT, TEMPLATE, load_template

REFERENCE = ROOT / "docs" / "parameters.md"

#: A parameter's group is found by the first word of its name. Names rather than the
#: template's comment lines: YAML loaders drop comments, and those lines mark only some
#: groups. The template's order decides where each group and each parameter appears.
GROUPS: tuple[tuple[str, frozenset[str]], ...] = (
    ("Submitter", frozenset({"Submitter", "Schedule", "Cron"})),
    ("Chainer", frozenset({"Chainer", "Chain"})),
    ("Retrier", frozenset({"Retrier", "Retry"})),
    ("Notifier", frozenset({"Notifier", "Slack", "Alert"})),
    ("Dispatcher", frozenset({"Dispatcher", "Work"})),
    ("Scaler", frozenset({"Scaler"})),
    ("Example workload", frozenset({"Example"})),
)
GENERAL = "General"

_FIRST_WORD = re.compile(r"[A-Z]?[a-z0-9]*")
# Descriptions are plain text (the CloudFormation console shows them as such): characters
# Markdown would read as emphasis, code, HTML or a table cell's end are escaped.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_~<|])")


def group_of(name: str) -> str:
    """The group a parameter is listed under: by the first word of its name, else General."""
    match = _FIRST_WORD.match(name)
    first_word = match.group(0) if match else ""
    for title, words in GROUPS:
        if first_word in words:
            return title
    return GENERAL


def _scalar(value: Any) -> str:
    """A YAML scalar as text (booleans as YAML spells them: ``true`` / ``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _code(value: Any) -> str:
    """``value`` as inline code in a table cell; the empty string as ``""``."""
    text = _scalar(value)
    if text == "":
        return '`""`'
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    escaped = text.replace("|", "\\|")  # GitHub reads \| in a table cell as |, in code too
    return f"{fence}{pad}{escaped}{pad}{fence}"


def _text(value: Any) -> str:
    """A description folded to one line, Markdown characters escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(_scalar(value).split()))


def _range(low: Any, high: Any, what: str = "") -> str:
    if low is not None and high is not None:
        return f"{what}{_scalar(low)} to {_scalar(high)}"
    if low is not None:
        return f"{what}at least {_scalar(low)}"
    return f"{what}at most {_scalar(high)}"


def _allowed(spec: Mapping[str, Any]) -> str:
    constraints = []
    if "AllowedValues" in spec:
        constraints.append("one of " + ", ".join(_code(v) for v in spec["AllowedValues"]))
    if "AllowedPattern" in spec:
        constraints.append("pattern " + _code(spec["AllowedPattern"]))
    if "MinValue" in spec or "MaxValue" in spec:
        constraints.append(_range(spec.get("MinValue"), spec.get("MaxValue")))
    if "MinLength" in spec or "MaxLength" in spec:
        constraints.append(_range(spec.get("MinLength"), spec.get("MaxLength"), "length "))
    return "; ".join(constraints)


def _is_required(spec: Mapping[str, Any]) -> bool:
    return spec.get("Default") is None


def _parameter_row(name: str, spec: Mapping[str, Any]) -> str:
    kind = _scalar(spec.get("Type", "(no type)"))
    if _scalar(spec.get("NoEcho", "false")).lower() == "true":
        kind += ", NoEcho"
    default = "**required**" if _is_required(spec) else _code(spec["Default"])
    description = _text(spec.get("Description", "(no description)"))
    return f"| `{name}` | {kind} | {default} | {_allowed(spec)} | {description} |"


def _parameter_lines(parameters: Mapping[str, Mapping[str, Any]]) -> Iterator[str]:
    yield "## Parameters"
    yield ""
    if not parameters:
        yield "The template declares no parameters."
        return
    required = [name for name, spec in parameters.items() if _is_required(spec)]
    intro = (
        f"{len(parameters)} parameters, grouped by the function they configure (by the first "
        "word of their name; the rest under General), in the template's order."
    )
    if required:
        intro += " Required (no default): " + ", ".join(f"`{n}`" for n in required) + "."
    yield intro + ' A `CommaDelimitedList` takes comma-separated values; `""` is the empty string.'
    grouped: dict[str, list[str]] = {}
    for name in parameters:
        grouped.setdefault(group_of(name), []).append(name)
    for title, names in grouped.items():
        yield ""
        yield f"### {title}"
        yield ""
        yield "| parameter | type | default | allowed | description |"
        yield "|---|---|---|---|---|"
        for name in names:
            yield _parameter_row(name, parameters[name])


def _output_lines(outputs: Mapping[str, Mapping[str, Any]]) -> Iterator[str]:
    yield "## Outputs"
    yield ""
    if not outputs:
        yield "The template declares no outputs."
        return
    yield (
        "A deployed stack's values: `aws cloudformation describe-stacks --stack-name <stack> "
        "--query 'Stacks[0].Outputs'`. An output with a condition exists only when it holds."
    )
    yield ""
    yield "| output | description | condition |"
    yield "|---|---|---|"
    for name, spec in outputs.items():
        description = _text(spec.get("Description", "(no description)"))
        condition = f"`{spec['Condition']}`" if "Condition" in spec else ""
        yield f"| `{name}` | {description} | {condition} |"


def _parameters_read(node: Any, parameters: Mapping[str, Any]) -> Iterator[str]:
    """The template parameters ``node`` refers to (Ref, Fn::ValueOf), in order of appearance."""
    if isinstance(node, list):
        for item in node:
            yield from _parameters_read(item, parameters)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str) and value in parameters:
                yield value
            elif key == "Fn::ValueOf" and isinstance(value, list) and value:
                if isinstance(value[0], str) and value[0] in parameters:
                    yield value[0]
                yield from _parameters_read(value[1:], parameters)
            else:
                yield from _parameters_read(value, parameters)


def _rule_lines(rules: Mapping[str, Any], parameters: Mapping[str, Any]) -> Iterator[str]:
    yield "## Rules"
    yield ""
    if not rules:
        yield "The template declares no rules."
        return
    yield (
        "CloudFormation checks these before it creates or changes anything: when a rule's "
        "condition holds (no condition: always) and an assertion fails, the deploy stops "
        "with that assertion's description."
    )
    yield ""
    yield "| rule | parameters it reads | assertion |"
    yield "|---|---|---|"
    for name, spec in rules.items():
        read = ", ".join(f"`{p}`" for p in dict.fromkeys(_parameters_read(spec, parameters)))
        assertions = spec.get("Assertions") or [{"AssertDescription": "(no assertions)"}]
        for assertion in assertions:
            description = _text(assertion.get("AssertDescription", "(no description)"))
            yield f"| `{name}` | {read} | {description} |"


def render(template: Mapping[str, Any]) -> str:
    """docs/parameters.md for ``template`` (as devtools.template.load_template reads it)."""
    parameters = template.get("Parameters") or {}
    lines = [
        "# Parameters, outputs and rules",
        "",
        "Generated from `template.yaml` by `make docs`: do not edit by hand (a unit test fails",
        "when it is stale).",
        "",
        *_parameter_lines(parameters),
        "",
        *_output_lines(template.get("Outputs") or {}),
        "",
        *_rule_lines(template.get("Rules") or {}, parameters),
    ]
    return "\n".join(lines) + "\n"


def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def stale_diff(rendered: str, reference: Path) -> str:
    """A unified diff from ``reference`` to ``rendered``; empty when they agree."""
    current = reference.read_text() if reference.exists() else ""
    name = _shown(reference)
    return "".join(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            rendered.splitlines(keepends=True),
            fromfile=f"{name} (as it is)",
            tofile=f"{name} (from the template)",
        )
    )


def main(
    argv: Sequence[str] | None = None,
    template: Path = TEMPLATE,
    reference: Path = REFERENCE,
) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with a diff when the reference differs from the template",
    )
    args = parser.parse_args(argv)
    rendered = render(load_template(template))
    if args.check:
        diff = stale_diff(rendered, reference)
        if diff:
            sys.stdout.write(diff)
            print(f"{_shown(reference)} is stale: run `make docs`", file=sys.stderr)
            return 1
        return 0
    reference.parent.mkdir(parents=True, exist_ok=True)
    reference.write_text(rendered, newline="\n")
    print(f"wrote {_shown(reference)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
