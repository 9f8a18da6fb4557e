"""Drive a function the way `make invoke` does: a subprocess against a moto server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.local_aws import LocalAws

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Invocation:
    returncode: int
    stdout: str
    stderr: str

    @property
    def result(self) -> Any:
        return json.loads(self.stdout)


def invoke(
    local: LocalAws,
    function: str,
    event: Path | str,
    params: str = "",
    environ: dict[str, str] | None = None,
) -> Invocation:
    """Run ``python -m devtools.invoke`` (what ``make invoke`` runs) against ``local``."""
    env = {**os.environ, **local.environ, **(environ or {})}
    env["PYTHONPATH"] = f"{ROOT / 'functions'}{os.pathsep}{ROOT}"
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    completed = subprocess.run(
        [sys.executable, "-m", "devtools.invoke", function, str(event), "--params", params],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return Invocation(completed.returncode, completed.stdout, completed.stderr)
