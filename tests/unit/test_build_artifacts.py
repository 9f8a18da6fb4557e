"""What sam build ships: no AWS SDK, bytecode Python 3.13 uses after unzipping, small artifacts.

The checks of layer/artifacts.py run on trees made here with real compilers; the tests of a
sam build run when one exists (BATCHWIRE_BUILD_DIR, as `make build-check` sets it, or
.aws-sam/build from `make build`), and those that compile or load bytecode need python3.13.
"""

from __future__ import annotations

import json
import os
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from layer.artifacts import (
    FUNCTION_ZIP_LIMIT,
    LAYER_ZIP_LIMIT,
    check_build,
    check_tree,
)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "layer" / "artifacts.py"
PYTHON313 = shutil.which("python3.13") or "python3.13"


def _python313_runs() -> bool:
    try:
        return subprocess.run([PYTHON313, "--version"], capture_output=True).returncode == 0
    except OSError:
        return False


needs_python313 = pytest.mark.skipif(not _python313_runs(), reason="needs python3.13 on PATH")


def _build_dir() -> Path | None:
    given = os.environ.get("BATCHWIRE_BUILD_DIR")
    if given:
        return Path(given) if Path(given).is_absolute() else ROOT / given
    default = ROOT / ".aws-sam" / "build"
    return default if (default / "template.yaml").is_file() else None


needs_build = pytest.mark.skipif(_build_dir() is None, reason="no sam build (make build)")


def _sources(directory: Path) -> Path:
    """A small function package: a handler and a package it imports."""
    (directory / "pkg").mkdir(parents=True)
    (directory / "handler.py").write_text(
        "import pkg\n\ndef handler(event, context):\n    return 1\n"
    )
    (directory / "pkg" / "__init__.py").write_text("VALUE = 2\n")
    return directory


def _built_with_python313(source: Path, into: Path) -> Path:
    subprocess.run(
        [PYTHON313, str(ARTIFACTS), "function", "--source", str(source), "--into", str(into)],
        check=True,
        capture_output=True,
    )
    return into


def _probe(*roots: Path) -> dict[str, object]:
    completed = subprocess.run(
        [PYTHON313, str(ARTIFACTS), "probe", *map(str, roots)],
        check=True,
        capture_output=True,
        text=True,
    )
    answer: dict[str, object] = json.loads(completed.stdout)
    return answer


# ---------------------------------------------------------------- the checks


def test_a_copy_of_botocore_in_an_artifact_is_refused(tmp_path: Path) -> None:
    # Given an artifact that carries botocore at its top level, as the X-Ray SDK pulls it in
    artifact = _sources(tmp_path / "artifact")
    (artifact / "botocore").mkdir()
    (artifact / "botocore" / "__init__.py").write_text("")

    # When it is checked
    problems = check_tree(artifact)

    # Then the check names botocore and why it must go
    assert any(p.startswith("botocore: the AWS SDK (botocore)") for p in problems), problems


def test_bytecode_of_another_python_is_refused_naming_the_magic_number(tmp_path: Path) -> None:
    # Given sources compiled by this interpreter (not 3.13), unchecked-hash
    artifact = _sources(tmp_path / "artifact")
    for source in artifact.rglob("*.py"):
        py_compile.compile(
            str(source),
            cfile=str(source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"),
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )

    # When it is checked
    problems = check_tree(artifact)

    # Then every file is refused for its magic number
    if sys.version_info[:2] == (3, 13):
        pytest.skip("this interpreter is 3.13: its magic number is the runtime's")
    assert len(problems) == 2, problems
    assert all("is not Python 3.13's" in problem for problem in problems)


def test_sources_without_bytecode_are_named(tmp_path: Path) -> None:
    artifact = _sources(tmp_path / "artifact")

    problems = check_tree(artifact)

    assert sorted(problems) == [
        "handler.py: no cpython-313 bytecode: Lambda would compile it at every cold start",
        "pkg/__init__.py: no cpython-313 bytecode: Lambda would compile it at every cold start",
    ]


@needs_python313
def test_a_function_built_with_python313_passes_the_check(tmp_path: Path) -> None:
    # Given a package built as sam build builds a function (layer/Makefile)
    built = _built_with_python313(_sources(tmp_path / "src"), tmp_path / "built")

    # Then it holds the sources, each with its bytecode, and nothing to object to
    assert sorted(p.relative_to(built).as_posix() for p in built.rglob("*.py")) == [
        "handler.py",
        "pkg/__init__.py",
    ]
    assert check_tree(built) == []


@needs_python313
def test_timestamp_bytecode_is_refused(tmp_path: Path) -> None:
    # Given sources compiled by python3.13 the default way (validated by timestamp)
    artifact = _sources(tmp_path / "artifact")
    subprocess.run([PYTHON313, "-m", "compileall", "-q", str(artifact)], check=True)

    # Then the check refuses each .pyc: unzipping loses the timestamps it relies on
    problems = check_tree(artifact)
    assert len(problems) == 2, problems
    assert all("timestamp bytecode, not unchecked-hash" in problem for problem in problems)


# ---------------------------------------------------------------- bytecode used after unzip


@needs_python313
def test_unchecked_hash_bytecode_is_used_after_unzipping(tmp_path: Path) -> None:
    # Given a package built as sam build builds a function
    built = _built_with_python313(_sources(tmp_path / "src"), tmp_path / "built")

    # When it is zipped and unzipped (every file dated anew) and each source loaded as
    # import loads it, writing no bytecode
    answer = _probe(built)

    # Then every source comes from its bytecode: none is compiled
    assert answer == {"sources": 2, "compiled": []}


@needs_python313
def test_timestamp_bytecode_is_compiled_again_after_unzipping(tmp_path: Path) -> None:
    # Given the same package, written a day before it is built, compiled the default way
    # (its bytecode records each source's modification time)
    artifact = _sources(tmp_path / "artifact")
    for source in artifact.rglob("*.py"):
        os.utime(source, (source.stat().st_atime - 86400, source.stat().st_mtime - 86400))
    subprocess.run([PYTHON313, "-m", "compileall", "-q", str(artifact)], check=True)

    # When it is zipped and unzipped (dated anew) and loaded
    answer = _probe(artifact)

    # Then Python ignores that bytecode and compiles every source
    assert answer["sources"] == 2
    assert len(answer["compiled"]) == 2  # type: ignore[arg-type]


# ---------------------------------------------------------------- a sam build of template.yaml


@needs_build
def test_the_build_passes_every_check() -> None:
    build = _build_dir()
    assert build is not None
    found = check_build(build)

    assert {a.name: a.problems for a in found if a.problems} == {}
    functions = [a for a in found if a.kind == "function"]
    layers = [a for a in found if a.kind == "layer"]
    assert len(functions) >= 6
    assert {"DependenciesLayer", "ExtraDependenciesLayer"} <= {a.name for a in layers}
    assert all(a.zipped_bytes < FUNCTION_ZIP_LIMIT for a in functions)
    assert all(a.zipped_bytes < LAYER_ZIP_LIMIT for a in layers)


@needs_build
def test_each_function_artifact_holds_only_our_code() -> None:
    build = _build_dir()
    assert build is not None
    ours = {
        path.name
        for path in (ROOT / "functions").iterdir()
        if path.name != "__pycache__" and not path.name.startswith(".")
    }
    for artifact in check_build(build):
        if artifact.kind == "function":
            shipped = {path.name for path in artifact.path.iterdir()} - {"__pycache__"}
            assert shipped <= ours, f"{artifact.name} ships {sorted(shipped - ours)}"


@needs_build
def test_the_dependencies_layer_holds_the_requirements_and_not_the_sdk() -> None:
    build = _build_dir()
    assert build is not None
    top = {path.name for path in (build / "DependenciesLayer" / "python").iterdir()}

    assert {"aws_lambda_powertools", "aws_xray_sdk", "msgspec", "slack_sdk"} <= top
    assert not {"boto3", "botocore", "s3transfer", "urllib3", "moto", "pydantic"} & top
    extra = {path.name for path in (build / "ExtraDependenciesLayer" / "python").iterdir()}
    assert {"msgspec", "slack_sdk"} <= extra
    assert not {"aws_lambda_powertools", "aws_xray_sdk", "botocore"} & extra


@needs_build
@needs_python313
def test_the_built_artifacts_import_without_compiling_after_unzipping() -> None:
    build = _build_dir()
    assert build is not None

    answer = _probe(build / "SubmitterFunction", build / "DependenciesLayer" / "python")

    assert answer["compiled"] == []
    assert answer["sources"] > 500  # type: ignore[operator]
