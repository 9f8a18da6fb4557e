"""Which installed packages a deployed function could import, and which it could not.

The development virtualenv holds far more than the Lambda package: SAM CLI, moto, pytest
and their dependencies (awscrt, pyOpenSSL, cryptography, requests...). Some of them change
what the handlers import: botocore uses awscrt and pyOpenSSL when present, and the X-Ray
SDK's ``patch_all`` imports and patches requests when present. In Lambda they are absent:
the package holds functions/requirements.txt and its dependencies (what ``sam build``
installs), and the python3.13 runtime adds boto3 and its dependencies.

So the benchmark children refuse every other installed top-level package, and both the
handlers and the naive baselines import what they would import in Lambda.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

#: What the Lambda Python runtime provides besides the function's package.
RUNTIME_PROVIDED = ("boto3",)


def read_requirements(path: Path) -> list[str]:
    """Requirement lines of a requirements file (comments, blanks and options dropped)."""
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            lines.append(line)
    return lines


def distribution_closure(requirements: Iterable[str]) -> set[str]:
    """Canonical names of the installed distributions ``requirements`` pull in, extras and
    environment markers honoured. Requirements not installed here are skipped."""
    seen: set[tuple[str, str]] = set()
    names: set[str] = set()
    pending = [Requirement(text) for text in requirements]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        extras = set(requirement.extras) | {""}
        if all((name, extra) in seen for extra in extras):
            continue
        seen.update((name, extra) for extra in extras)
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        names.add(name)
        for text in distribution.requires or []:
            dependency = Requirement(text)
            marker = dependency.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(dependency)
    return names


def blocked_modules(requirements_file: Path) -> set[str]:
    """Top-level import names of installed distributions outside the Lambda package."""
    allowed = distribution_closure([*read_requirements(requirements_file), *RUNTIME_PROVIDED])
    blocked = set()
    for top_level, distributions in metadata.packages_distributions().items():
        if not any(canonicalize_name(name) in allowed for name in distributions):
            blocked.add(top_level)
    # first-party code and the benchmark itself are never blocked
    return blocked - {"batchwire", "bench", "devtools", "tests"}
