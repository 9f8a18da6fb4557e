"""What ``sam build`` ships, built and checked: the dependencies layer and each function's code.

    python3.13 layer/artifacts.py layer LOGICAL_ID --requirements FILE --into DIR
    python3.13 layer/artifacts.py function --source DIR --into DIR
    python3 layer/artifacts.py check BUILD_DIR         every artifact of a sam build
    python3.13 layer/artifacts.py probe DIR [DIR ...]  zipped, unzipped: modules compiled on import

``sam build`` runs the first two through layer/Makefile (``BuildMethod: makefile``).

Both kinds of artifact carry bytecode compiled for the runtime's Python (3.13) in
unchecked-hash ``.pyc`` files. Lambda's file system is read-only, so an artifact without
bytecode has its sources compiled again at every cold start; and unzipping does not keep
the sources' modification times, so ``.pyc`` files validated by timestamp would be ignored
too. Unchecked-hash ``.pyc`` files are used as they are. The layer never holds the AWS SDK:
the runtime provides boto3 and its dependencies, and a second botocore on the path (the
X-Ray SDK asks for one) would shadow the runtime's.

Standard library only: the build runs it with the build machine's python3.13, and the
checks run with any Python 3.11 or newer.
"""

from __future__ import annotations

import _imp
import argparse
import compileall
import csv
import io
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.machinery import SourceFileLoader
from pathlib import Path
from typing import ClassVar

#: The runtime's Python (python3.13 in template.yaml).
RUNTIME_PYTHON = (3, 13)
#: importlib.util.MAGIC_NUMBER of Python 3.13 (3571): a .pyc with any other is ignored.
PYC_MAGIC = (3571).to_bytes(2, "little") + b"\r\n"
CACHE_TAG = "cpython-313"
#: .pyc flags word: hash-based (bit 0), not checked against the source (bit 1 clear).
UNCHECKED_HASH = 0b01
#: The AWS SDK for Python and its dependencies: the python3.13 runtime provides them.
RUNTIME_PROVIDED = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
)
#: Never in an artifact: a copy would shadow the runtime's SDK.
SDK_PACKAGES = ("boto3", "botocore", "s3transfer")
#: Lambda architecture -> ELF machine of its native code, and pip's platform tags for it
#: (Amazon Linux 2023, glibc 2.34).
ARCHITECTURES = {
    "arm64": (183, ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64")),
    "x86_64": (62, ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64")),
}
#: The layers of template.yaml, by logical id, and the requirements each leaves out.
LAYERS: dict[str, tuple[str, ...]] = {
    "DependenciesLayer": (),
    # beside the AWS-managed Powertools layer, which brings Powertools and the X-Ray SDK
    "ExtraDependenciesLayer": ("aws-lambda-powertools",),
}
#: Zipped size limits, in bytes (1 MB = 1,000,000 bytes).
FUNCTION_ZIP_LIMIT = 1_000_000
LAYER_ZIP_LIMIT = 10_000_000


class BuildFailed(SystemExit):
    """A build or check found a problem; the message says which and where."""


def canonical(name: str) -> str:
    """A distribution name as pip compares them (``Python_Dateutil`` -> ``python-dateutil``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str | None:
    """The distribution a requirements line names; None for comments, blanks and options."""
    text = line.split("#", 1)[0].strip()
    if not text or text.startswith("-"):
        return None
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", text)
    return canonical(match.group(0)) if match else None


def require_runtime_python() -> None:
    if sys.version_info[:2] != RUNTIME_PYTHON:
        version = ".".join(map(str, RUNTIME_PYTHON))
        raise BuildFailed(
            f"layer/artifacts.py builds with Python {version}, the runtime's, so that its "
            f"bytecode is the one Lambda loads; this is {sys.version.split()[0]} "
            f"({sys.executable}). Put python{version} on PATH (sam build looks for it there)."
        )


# ---------------------------------------------------------------- build


def layer_requirements(requirements: Path, logical_id: str) -> list[str]:
    """The lines of ``requirements`` that the layer ``logical_id`` installs."""
    if logical_id not in LAYERS:
        raise BuildFailed(
            f"{logical_id}: no such layer in layer/artifacts.py LAYERS (have: {', '.join(LAYERS)})"
        )
    left_out = {canonical(name) for name in LAYERS[logical_id]}
    return [
        line
        for line in requirements.read_text().splitlines()
        if requirement_name(line) not in left_out
    ]


def build_layer(
    logical_id: str, requirements: Path, into: Path, architecture: str = "arm64"
) -> None:
    """Install the layer's requirements for the runtime into ``into``, drop what the
    runtime provides, compile, and check the result."""
    require_runtime_python()
    kept = layer_requirements(requirements, logical_id)
    _empty(into)
    with tempfile.TemporaryDirectory() as scratch:
        listed = Path(scratch) / "requirements.txt"
        listed.write_text("\n".join(kept) + "\n")
        platforms = [f"--platform={tag}" for tag in ARCHITECTURES[architecture][1]]
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--root-user-action=ignore", "--no-compile", "--target", str(into),
            "--implementation=cp", f"--python-version={RUNTIME_PYTHON[0]}.{RUNTIME_PYTHON[1]}",
            "--only-binary=:all:", *platforms, "--requirement", str(listed),
        ]  # fmt: skip
        if subprocess.run(command, check=False).returncode != 0:
            raise BuildFailed(f"pip could not install {requirements} for {architecture}")
    remove_distributions(into, RUNTIME_PROVIDED)
    shutil.rmtree(into / "bin", ignore_errors=True)  # console scripts: nothing runs them
    compile_tree(into)
    _raise_problems(into, check_tree(into, architecture))


def build_function(source: Path, into: Path) -> None:
    """Copy a function's own code (no bytecode of another Python, no dot files), compile it,
    and check the result."""
    require_runtime_python()
    _empty(into)
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
            continue
        if path.is_file() and path.suffix != ".pyc":
            target = into / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    compile_tree(into)
    _raise_problems(into, check_tree(into))


def _empty(directory: Path) -> None:
    """``directory`` exists and holds nothing (sam build may hand over a used one)."""
    directory.mkdir(parents=True, exist_ok=True)
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def remove_distributions(site: Path, names: Iterable[str]) -> list[str]:
    """Uninstall the named distributions from a ``pip install --target`` directory, by the
    files their RECORD lists; returns the names removed."""
    wanted = {canonical(name) for name in names}
    removed = []
    root = site.resolve()
    for info in sorted(site.glob("*.dist-info")):
        name = _metadata_name(info)
        if name not in wanted:
            continue
        record = info / "RECORD"
        files = [row[0] for row in csv.reader(record.read_text().splitlines()) if row]
        for listed in files:
            path = (site / listed).resolve()
            if path.is_relative_to(root) and path.is_file():
                path.unlink()
        shutil.rmtree(info, ignore_errors=True)
        removed.append(name)
    for directory, _, _ in sorted(os.walk(site), key=lambda entry: -len(entry[0])):
        path = Path(directory)
        if path != site and not any(path.iterdir()):
            path.rmdir()
    return removed


def _metadata_name(info: Path) -> str:
    for line in (info / "METADATA").read_text(errors="replace").splitlines():
        if line.startswith("Name:"):
            return canonical(line.split(":", 1)[1].strip())
    return canonical(info.name.split("-", 1)[0])


def compile_tree(root: Path) -> None:
    """Unchecked-hash bytecode for every source under ``root``, for this Python."""
    ok = compileall.compile_dir(
        str(root),
        quiet=1,
        force=True,
        optimize=0,  # Lambda runs python without -O
        workers=0,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if not ok:
        raise BuildFailed(f"some sources under {root} do not compile (listed above)")


# ---------------------------------------------------------------- check


def check_tree(root: Path, architecture: str = "arm64") -> list[str]:
    """What is wrong with one artifact's files: the AWS SDK, sources without bytecode for
    the runtime, bytecode of another Python or another validation mode, native code for
    another architecture or Python. Paths are relative to ``root``."""
    problems = [*_sdk_copies(root), *_bytecode_problems(root)]
    problems += _native_problems(root, architecture)
    return problems


def _sdk_copies(root: Path) -> Iterator[str]:
    for path in sorted(root.iterdir()):  # what import finds first: the top level
        name = path.name
        stem = name.split("-", 1)[0] if name.endswith(".dist-info") else name.removesuffix(".py")
        if stem in SDK_PACKAGES and (path.is_dir() or name.endswith(".py")):
            yield (
                f"{path.relative_to(root)}: the AWS SDK ({stem}) comes with the runtime; a copy "
                "here would shadow it"
            )


def _bytecode_problems(root: Path) -> Iterator[str]:
    key = int.from_bytes(PYC_MAGIC, "little")
    for source in sorted(root.rglob("*.py")):
        where = source.relative_to(root)
        compiled = source.parent / "__pycache__" / f"{source.stem}.{CACHE_TAG}.pyc"
        if not compiled.is_file():
            yield f"{where}: no {CACHE_TAG} bytecode: Lambda would compile it at every cold start"
            continue
        header = compiled.read_bytes()[:16]
        if header[:4] != PYC_MAGIC:
            yield (
                f"{compiled.relative_to(root)}: magic number {header[:4]!r} is not Python "
                f"{RUNTIME_PYTHON[0]}.{RUNTIME_PYTHON[1]}'s {PYC_MAGIC!r}: ignored by the runtime"
            )
            continue
        flags = int.from_bytes(header[4:8], "little")
        if flags != UNCHECKED_HASH:
            mode = {0: "timestamp", 3: "checked-hash"}.get(flags, f"flags {flags}")
            yield (
                f"{compiled.relative_to(root)}: {mode} bytecode, not unchecked-hash: "
                "validated against the source at every import (timestamps do not survive unzip)"
            )
            continue
        if header[8:16] != _imp.source_hash(key, source.read_bytes()):
            yield f"{compiled.relative_to(root)}: compiled from another version of {where}"
    for compiled in sorted(root.rglob("*.pyc")):
        if not compiled.name.endswith(f".{CACHE_TAG}.pyc"):
            yield f"{compiled.relative_to(root)}: bytecode of another Python"


def _native_problems(root: Path, architecture: str) -> Iterator[str]:
    machine = ARCHITECTURES[architecture][0]
    for library in sorted(root.rglob("*")):
        if not library.is_file() or not re.search(r"\.so(\.|$)", library.name):
            continue
        where = library.relative_to(root)
        header = library.read_bytes()[:20]
        if header[:4] != b"\x7fELF":
            yield f"{where}: not an ELF shared object"
        elif int.from_bytes(header[18:20], "little") != machine:
            yield f"{where}: native code for another architecture than {architecture}"
        tag = re.search(r"\.cpython-(\d+)", library.name)
        if tag and tag.group(1) != f"{RUNTIME_PYTHON[0]}{RUNTIME_PYTHON[1]}":
            yield f"{where}: extension module of another Python"


def _raise_problems(root: Path, problems: Sequence[str]) -> None:
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise BuildFailed(f"{root}: {len(problems)} problem(s):\n  {shown}{more}")


def zipped(root: Path) -> bytes:
    """The artifact as ``sam package`` uploads it: every file under ``root``, deflated."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()


@dataclass
class Artifact:
    """One directory of a sam build: a function's code or a layer, with its figures."""

    name: str
    path: Path
    kind: str  # "function" or "layer"
    files: int = 0
    sources: int = 0
    unzipped_bytes: int = 0
    zipped_bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def limit(self) -> int:
        return LAYER_ZIP_LIMIT if self.kind == "layer" else FUNCTION_ZIP_LIMIT

    @property
    def importable(self) -> Path:
        """The directory Lambda puts on sys.path: /var/task, or /opt/python for a layer."""
        return self.path / "python" if self.kind == "layer" else self.path


def artifacts(build_dir: Path) -> list[Artifact]:
    """Every artifact of a sam build directory: a layer has a top-level python/ folder."""
    found = []
    for path in sorted(build_dir.iterdir()):
        if path.is_dir():
            kind = "layer" if (path / "python").is_dir() else "function"
            found.append(Artifact(path.name, path, kind))
    return found


def measure(artifact: Artifact, architecture: str = "arm64") -> Artifact:
    """Fill in an artifact's sizes and problems (the limits included)."""
    files = [path for path in artifact.path.rglob("*") if path.is_file()]
    artifact.files = len(files)
    artifact.sources = sum(1 for path in files if path.suffix == ".py")
    artifact.unzipped_bytes = sum(path.stat().st_size for path in files)
    artifact.zipped_bytes = len(zipped(artifact.path))
    if artifact.kind == "layer" and set(os.listdir(artifact.path)) != {"python"}:
        artifact.problems.append("a layer holds python/ only (Lambda adds /opt/python to sys.path)")
    artifact.problems += check_tree(artifact.importable, architecture)
    if artifact.zipped_bytes > artifact.limit:
        artifact.problems.append(
            f"{artifact.zipped_bytes:,} bytes zipped, over the {artifact.limit:,} a "
            f"{artifact.kind} may take"
        )
    return artifact


def check_build(build_dir: Path, architecture: str = "arm64") -> list[Artifact]:
    """Every artifact of a sam build, measured and checked; a build with no function or no
    layer is a problem of its own."""
    if not (build_dir / "template.yaml").is_file():
        raise BuildFailed(f"{build_dir} is not a sam build directory (no template.yaml)")
    found = [measure(artifact, architecture) for artifact in artifacts(build_dir)]
    for kind in ("function", "layer"):
        if not any(artifact.kind == kind for artifact in found):
            raise BuildFailed(f"{build_dir} holds no {kind}: was template.yaml built with sam?")
    return found


def report(found: Sequence[Artifact]) -> str:
    lines = [
        f"{'artifact':<28} {'kind':<8} {'files':>6} {'sources':>7} {'unzipped':>12} "
        f"{'zipped':>12} {'limit':>12}  result"
    ]
    for artifact in found:
        lines.append(
            f"{artifact.name:<28} {artifact.kind:<8} {artifact.files:>6} {artifact.sources:>7} "
            f"{artifact.unzipped_bytes:>12,} {artifact.zipped_bytes:>12,} {artifact.limit:>12,}  "
            + ("ok" if not artifact.problems else f"{len(artifact.problems)} problem(s)")
        )
        lines += [f"    {problem}" for problem in artifact.problems[:20]]
    return "\n".join(lines)


# ---------------------------------------------------------------- probe


class _CountingLoader(SourceFileLoader):
    """The import system's own source loader, noting each source it has to compile."""

    compiled: ClassVar[list[str]] = []

    def source_to_code(self, data, path, *, _optimize=-1):  # type: ignore[no-untyped-def,override]
        self.compiled.append(str(path))
        return super().source_to_code(data, path, _optimize=_optimize)


def compiled_on_import(roots: Sequence[Path]) -> tuple[int, list[str]]:
    """Load the code object of every source under ``roots`` as ``import`` would, writing no
    bytecode; the number of sources, and those that had to be compiled (their .pyc missing,
    of another Python, or invalid)."""
    sys.dont_write_bytecode = True
    _CountingLoader.compiled = []
    sources = [source for root in roots for source in sorted(root.rglob("*.py"))]
    for number, source in enumerate(sources):
        name = f"probe_{number}"
        _CountingLoader(name, str(source)).get_code(name)
    return len(sources), list(_CountingLoader.compiled)


def unzipped_copy(source: Path, into: Path) -> Path:
    """``source`` zipped and unzipped into ``into``, as Lambda receives an artifact: every
    file's modification time is the time of unzipping."""
    with zipfile.ZipFile(io.BytesIO(zipped(source))) as archive:
        archive.extractall(into)
    return into


# ---------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="layer/artifacts.py", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    layer = commands.add_parser("layer", help="build a dependencies layer")
    layer.add_argument("logical_id", choices=sorted(LAYERS))
    layer.add_argument("--requirements", type=Path, required=True)
    layer.add_argument("--into", type=Path, required=True, help="the layer's python/ folder")
    layer.add_argument("--architecture", choices=sorted(ARCHITECTURES), default="arm64")
    function = commands.add_parser("function", help="build a function's own code")
    function.add_argument("--source", type=Path, required=True)
    function.add_argument("--into", type=Path, required=True)
    check = commands.add_parser("check", help="check every artifact of a sam build")
    check.add_argument("build_dir", type=Path)
    check.add_argument("--architecture", choices=sorted(ARCHITECTURES), default="arm64")
    probe = commands.add_parser("probe", help="zip, unzip, and count compiles on import")
    probe.add_argument("roots", type=Path, nargs="+")
    args = parser.parse_args(argv)

    if args.command == "layer":
        build_layer(args.logical_id, args.requirements, args.into, args.architecture)
        return 0
    if args.command == "function":
        build_function(args.source, args.into)
        return 0
    if args.command == "check":
        found = check_build(args.build_dir, args.architecture)
        print(report(found))
        failed = [artifact.name for artifact in found if artifact.problems]
        if failed:
            print(f"FAILED: {', '.join(failed)}")
            return 1
        return 0
    require_runtime_python()
    with tempfile.TemporaryDirectory() as scratch:
        copies = [
            unzipped_copy(root, Path(scratch) / str(number))
            for number, root in enumerate(args.roots)
        ]
        sources, compiled = compiled_on_import(copies)
    print(json.dumps({"sources": sources, "compiled": compiled}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
