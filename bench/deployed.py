"""The built artifacts as Lambda runs them, for the benchmark children.

``sam build`` (``make build``) leaves each function's code and each layer in .aws-sam/build.
Each is zipped, as ``sam package`` uploads it, and unzipped under .aws-sam/bench/deployed,
as Lambda receives it (every file dated from the unzipping). A child then runs the
runtime's Python (python3.13) with Lambda's path and nothing else: the function's folder
(/var/task), its layers' python/ folder (/opt/python), and the AWS SDK the runtime provides
(boto3 as requirements-dev.txt pins it, installed once for python3.13 under .aws-sam/bench),
then this repository for the benchmark's own modules. A layer's native extension modules
are built for arm64; on a machine of another architecture, the same versions' wheels for
this machine stand in for them (and only for them: every Python module and its bytecode is
the build's). No bytecode is written
(``PYTHONDONTWRITEBYTECODE``), as on Lambda's read-only file system: a source whose
bytecode the runtime would not use is compiled at every start, and is counted.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench.registry import ROOT

if TYPE_CHECKING:
    from layer.artifacts import Artifact

BUILD_DIR = ROOT / ".aws-sam" / "build"
WORK_DIR = ROOT / ".aws-sam" / "bench"
RUNTIME_PYTHON = "python3.13"


class NotDeployable(RuntimeError):
    """No build to measure, or no runtime Python to run it with; the message says what to do."""


@dataclass
class Deployment:
    """Where each built artifact was unzipped, and the path a function's children get."""

    python: str
    build_dir: Path
    runtime_sdk: Path
    #: function logical id -> its unzipped code; layer logical id -> its unzipped python/
    functions: dict[str, Path] = field(default_factory=dict)
    layers: dict[str, Path] = field(default_factory=dict)
    #: function logical id -> its layers' logical ids, in the template's order
    function_layers: dict[str, list[str]] = field(default_factory=dict)
    #: the artifacts as layer/artifacts.py measured and checked them
    artifacts: list[Artifact] = field(default_factory=list)
    #: distributions whose native modules stand in for the layer's (``name==version``)
    native_stand_ins: list[str] = field(default_factory=list)

    def path(self, function: str) -> list[Path]:
        """Lambda's import path for ``function``, then this repository (the bench package)."""
        if function not in self.functions:
            raise NotDeployable(
                f"{function} is not in {self.build_dir}: run make build again (the template "
                "may have changed since)"
            )
        layers = [self.layers[name] for name in self.function_layers.get(function, [])]
        return [self.functions[function], *layers, self.runtime_sdk, ROOT]


def runtime_python() -> str:
    found = shutil.which(RUNTIME_PYTHON)
    completed = subprocess.run(
        [found or RUNTIME_PYTHON, "-c", "import sys; print(sys.executable)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found is None or completed.returncode != 0:
        raise NotDeployable(
            f"the handlers are measured as built, with the runtime's {RUNTIME_PYTHON}: put it "
            "on PATH (for example: pyenv shell 3.11.7 3.13.0), then make bench"
        )
    # the interpreter itself, not a launcher in front of it (pyenv's shims are scripts)
    return completed.stdout.strip()


def deploy(build_dir: Path = BUILD_DIR, work_dir: Path = WORK_DIR) -> Deployment:
    """Every artifact of ``build_dir`` zipped and unzipped under ``work_dir``, measured and
    checked, with the layers each function uses (read with the SAM CLI's own providers, as
    ``sam local invoke`` reads them, parameter defaults)."""
    from layer.artifacts import BuildFailed, check_build, unzipped_copy

    python = runtime_python()
    if not (build_dir / "template.yaml").is_file():
        raise NotDeployable(f"no sam build in {build_dir}: make bench builds it (make build)")
    try:
        artifacts = check_build(build_dir)
    except BuildFailed as error:
        raise NotDeployable(str(error)) from None
    deployment = Deployment(python, build_dir, runtime_sdk(python, work_dir))
    deployment.artifacts = list(artifacts)
    deployed = work_dir / "deployed"
    shutil.rmtree(deployed, ignore_errors=True)
    for artifact in artifacts:
        copy = unzipped_copy(artifact.path, deployed / artifact.name)
        if artifact.kind == "layer":
            deployment.layers[artifact.name] = copy / "python"
            deployment.native_stand_ins += native_stand_ins(python, copy / "python", work_dir)
        else:
            deployment.functions[artifact.name] = copy
    deployment.function_layers = layers_of_functions(build_dir / "template.yaml")
    compile_bench(python)
    return deployment


def layers_of_functions(template: Path) -> dict[str, list[str]]:
    """Function -> the logical ids of its layers built in this template, parameter defaults."""
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

    stacks, _ = SamLocalStackProvider.get_stacks(
        str(template), global_parameter_overrides={"AWS::Region": "us-east-1"}
    )
    return {
        function.name: [layer.name for layer in function.layers if layer.codeuri]
        for function in SamFunctionProvider(stacks).get_all()
    }


#: Lambda's arm64 is aarch64 to Python's platform module.
_LAMBDA_MACHINE = "aarch64"


def native_stand_ins(python: str, site: Path, work_dir: Path) -> list[str]:
    """On a machine that cannot run the layer's arm64 code, replace each of its native
    extension modules with the one the same distribution version's wheel has for this
    machine (installed once under ``work_dir``); the distributions replaced."""
    if platform.machine() == _LAMBDA_MACHINE:
        return []
    replaced = []
    for info in sorted(site.glob("*.dist-info")):
        listed = [line.split(",", 1)[0] for line in (info / "RECORD").read_text().splitlines()]
        natives = [name for name in listed if re.search(r"\.so(\.|$)", name)]
        if not natives:
            continue
        fields = dict(
            line.split(": ", 1)
            for line in (info / "METADATA").read_text().splitlines()[:10]
            if ": " in line
        )
        pinned = f"{fields['Name']}=={fields['Version']}"
        host = work_dir / "host-natives" / pinned.replace("==", "-")
        if not host.is_dir():
            completed = subprocess.run(
                [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--root-user-action=ignore", "--no-deps", "--only-binary=:all:",
                 "--target", str(host), pinned],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if completed.returncode != 0:
                shutil.rmtree(host, ignore_errors=True)
                raise NotDeployable(f"no {pinned} wheel for this machine: {completed.stderr}")
        for name in natives:
            (site / name).unlink()
        for library in host.rglob("*"):
            if library.is_file() and re.search(r"\.so(\.|$)", library.name):
                relative = library.relative_to(host)
                if relative.parts[0].endswith(".dist-info"):
                    continue
                (site / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(library, site / relative)
        replaced.append(pinned)
    return replaced


def runtime_sdk(python: str, work_dir: Path) -> Path:
    """boto3 and its dependencies for ``python``, as the Lambda runtime provides them, at the
    version requirements-dev.txt pins (installed once, with pip's bytecode)."""
    pinned = re.search(r"^boto3==(\S+)", (ROOT / "requirements-dev.txt").read_text(), re.M)
    if pinned is None:
        raise NotDeployable("requirements-dev.txt pins no boto3 (boto3==VERSION)")
    target = work_dir / f"runtime-sdk-{pinned.group(1)}"
    if not (target / "boto3").is_dir():
        shutil.rmtree(target, ignore_errors=True)
        completed = subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--root-user-action=ignore", "--target", str(target), f"boto3=={pinned.group(1)}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if completed.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            raise NotDeployable(f"pip could not install boto3 for {python}: {completed.stderr}")
    return target


def compile_bench(python: str) -> None:
    """Bytecode of the benchmark's own modules and naive handlers for ``python``, so that
    neither side of a measurement compiles anything (children write no bytecode)."""
    subprocess.run(
        [python, "-m", "compileall", "-q", str(ROOT / "bench")], check=True, capture_output=True
    )
