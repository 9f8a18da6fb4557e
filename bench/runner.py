"""The benchmark driver: starts one fresh interpreter per measurement, prints the table.

python -m bench                      every benchmark of every available handler
python -m bench --check              the same; exit status 1 when a target is missed
python -m bench --only submitter     one handler
python -m bench --only scaler        the scaler simulation (bench/scaler_sim.py)
python -m bench --importtime submitter   where the cold start of a handler goes

The handlers are measured as ``sam build`` built them (.aws-sam/build, ``make build``),
deployed the way Lambda receives them (bench/deployed.py), on the runtime's python3.13.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bench.deployed import BUILD_DIR, Deployment, NotDeployable, deploy
from bench.registry import REGISTRY, ROOT, HandlerSpec
from bench.stats import Row, Target, median, misses, render_table

#: Times are CPU time of the measured process: the paths measured are CPU-bound (imports
#: from the page cache, stubbed AWS), so on an idle core CPU time equals wall time, and on a
#: shared machine it leaves out the time spent waiting for a core. Wall time is in the notes.
COLD_RATIO = Target("ratio<=", 1.25)
#: A source compiled at a cold start is bytecode the runtime could not use (wrong Python,
#: timestamps lost in the zip): none is the target.
COMPILED = Target("value<=", 0)
#: Zipped artifacts, in KB of 1,000 bytes (layer/artifacts.py holds the limits in bytes).
FUNCTION_SIZE = Target("value<=", 1_000, "KB")
LAYER_SIZE = Target("value<=", 10_000, "KB")
WARM_DELTA = Target("delta<=", 2.0, "ms")
#: A 128 MB function with 2x headroom: the whole process may peak at 64 MB.
MEMORY_LIMIT = Target("value<=", 64.0, "MB")

#: What the Lambda runtime sets that the SAM CLI's local environment does not, so that
#: Powertools and the X-Ray SDK behave as deployed (Tracing: Active in template.yaml).
LAMBDA_RUNTIME_ENV = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    # Lambda's daemon listens on 169.254.79.129:2000 (UDP); nothing needs to listen here
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    "TZ": ":UTC",
}

#: Variables of the shell that would change what is measured; never passed to a child.
_SHELL_PREFIXES = ("AWS_", "POWERTOOLS_", "_X_AMZN", "LAMBDA_", "PYTHON")
#: How every child runs: no site-packages (-S) and no working directory (-P) on its path,
#: only the one the runner gives; no bytecode written (Lambda's file system is read-only).
_CHILD_FLAGS = ("-P", "-S")
_SHELL_NAMES = {"_HANDLER", "SLACK_WEBHOOK_URL"}


class BenchError(RuntimeError):
    """A benchmark child failed; the message carries the end of its stderr."""


@dataclass(frozen=True)
class Settings:
    runs: int = 15
    rounds: int = 7
    events: int = 100


def child_environment(
    spec: HandlerSpec, deployment: Deployment, parameters: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The function's environment from template.yaml, as the Lambda runtime would set it,
    deployed with the spec's template parameters (``parameters`` on top), and the deployed
    function's import path."""
    from devtools.local_aws import LOCAL_CREDENTIALS
    from devtools.template import function_setup

    setup = function_setup(
        spec.function,
        params={**spec.parameters, **(parameters or {})},
        shell_env=LOCAL_CREDENTIALS,
    )
    lambda_env = dict(setup.environment)
    # the SAM CLI marks its emulator; Lambda does not (Powertools would disable tracing)
    lambda_env.pop("AWS_SAM_LOCAL", None)
    lambda_env.update(LAMBDA_RUNTIME_ENV)
    lambda_env["_HANDLER"] = setup.handler
    lambda_env.update(spec.environment)
    shell = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_SHELL_PREFIXES) and name not in _SHELL_NAMES
    }
    shell["PYTHONPATH"] = os.pathsep.join(map(str, deployment.path(spec.function)))
    shell["PYTHONDONTWRITEBYTECODE"] = "1"
    shell["BENCH_PYTHON"] = deployment.python
    return {**shell, **lambda_env}


def child_command(env: Mapping[str, str], *args: str) -> list[str]:
    """``python -m bench.child ARGS`` with the runtime's Python of ``env``."""
    return [env["BENCH_PYTHON"], *_CHILD_FLAGS, "-m", "bench.child", *args]


def run_child(args: Sequence[str], env: Mapping[str, str]) -> Any:
    """Run ``python -m bench.child ARGS`` in a fresh interpreter; its last JSON answer."""
    completed = subprocess.run(
        child_command(env, *args),
        env=dict(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise BenchError(f"bench.child {' '.join(args)} failed:\n{_tail(completed.stderr)}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


class Worker:
    """A long-lived warm child (``bench.child serve``) answering ``{"events": N}`` requests."""

    def __init__(self, spec: HandlerSpec, role: str, env: Mapping[str, str]) -> None:
        self.label = f"{spec.name} {role}"
        self.stderr: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in close())
        self.process = subprocess.Popen(
            child_command(env, "serve", spec.name, role),
            env=dict(env),
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        self.ready = self._read()

    def time_events(self, count: int) -> tuple[float, float]:
        """Wall and CPU seconds per event over ``count`` warm invocations."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"events": count}) + "\n")
        self.process.stdin.flush()
        answer = self._read()
        events = int(answer["events"])
        return float(answer["seconds"]) / events, float(answer["cpu_seconds"]) / events

    def _read(self) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            self.stderr.seek(0)
            raise BenchError(f"{self.label} worker stopped:\n{_tail(self.stderr.read())}")
        return json.loads(line)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a worker that died has no reader left
            if self.process.stdin is not None:
                self.process.stdin.close()
        self.process.wait(timeout=30)
        self.stderr.close()


def measure_cold(
    spec: HandlerSpec, env: Mapping[str, str], traced_env: Mapping[str, str], runs: int
) -> list[Row]:
    """Median import-and-init time, handler and naive alternated (order reversed each run),
    the handler deployed as the template's defaults have it and with PowertoolsTracer=on;
    and the sources each had to compile (bytecode the runtime did not use)."""
    sides = {"handler": (spec.module, env), "naive": (spec.naive, env)}
    sides["traced"] = (spec.module, traced_env)
    times: dict[str, list[float]] = {side: [] for side in sides}
    cpu: dict[str, list[float]] = {side: [] for side in sides}
    for run in range(runs):
        order = list(sides) if run % 2 == 0 else list(reversed(sides))
        for side in order:
            module, side_env = sides[side]
            answer = run_child(["cold", module], side_env)
            times[side].append(answer["seconds"] * 1000)
            cpu[side].append(answer["cpu_seconds"] * 1000)
    mine_wall, naive_wall = median(times["handler"]), median(times["naive"])
    compiled = run_child(["compiled", spec.module], env)["compiled"]
    naive_compiled = run_child(["compiled", spec.naive], env)["compiled"]
    return [
        Row(
            f"{spec.name}: cold init, CPU ms (import + init)",
            median(cpu["handler"]),
            median(cpu["naive"]),
            COLD_RATIO,
            unit="ms",
            note=(
                f"median of {runs} fresh interpreters each, alternated, the deployed artifact "
                f"and layer on python3.13; wall time {mine_wall:.0f} vs {naive_wall:.0f} ms "
                f"({mine_wall / naive_wall:.2f}x)"
            ),
        ),
        Row(
            f"{spec.name}: cold init with PowertoolsTracer=on",
            median(cpu["traced"]),
            median(cpu["naive"]),
            Target("info"),
            unit="ms",
            note=(
                f"the same runs, alternated with the two above; the X-Ray SDK's import: "
                f"{median(cpu['traced']) - median(cpu['handler']):+.1f} ms CPU"
            ),
        ),
        Row(
            f"{spec.name}: sources compiled at cold start",
            len(compiled),
            len(naive_compiled),
            COMPILED,
            note=(
                "imports whose bytecode the runtime could not use; "
                + (", ".join(compiled[:3]) + (" ..." if len(compiled) > 3 else "") or "none")
            ),
        ),
    ]


def artifact_rows(deployment: Deployment) -> list[Row]:
    """Each built artifact's zipped size against its limit, what it holds in the note; an
    artifact the build check faults fails its row, naming the first problems."""
    rows = []
    for artifact in deployment.artifacts:
        target = LAYER_SIZE if artifact.kind == "layer" else FUNCTION_SIZE
        note = (
            f"{artifact.kind}; unzipped {artifact.unzipped_bytes / 1000:,.0f} KB, "
            f"{artifact.files} files, {artifact.sources} sources each with python3.13 "
            "unchecked-hash bytecode"
        )
        if artifact.problems:
            rows.append(
                _failed(f"{artifact.name}: zipped", RuntimeError("; ".join(artifact.problems[:3])))
            )
            continue
        rows.append(
            Row(
                f"{artifact.name}: zipped",
                artifact.zipped_bytes / 1000,
                None,
                target,
                unit="KB",
                note=note,
            )
        )
    return rows


def measure_warm(spec: HandlerSpec, env: Mapping[str, str], settings: Settings) -> list[Row]:
    """Per-event time of warm invocations, both sides on botocore Stubbers, rounds alternated."""
    workers: list[Worker] = []
    try:
        handler = Worker(spec, "handler", env)
        workers.append(handler)
        naive = Worker(spec, "naive", env)
        workers.append(naive)
        for worker in (handler, naive):
            worker.time_events(max(1, settings.events // 4))  # warm-up round, not counted
        per_event: dict[str, list[float]] = {"handler": [], "naive": []}
        cpu: dict[str, list[float]] = {"handler": [], "naive": []}
        for index in range(settings.rounds):
            pair = [("handler", handler), ("naive", naive)]
            for role, worker in pair if index % 2 == 0 else reversed(pair):
                wall_s, cpu_s = worker.time_events(settings.events)
                per_event[role].append(wall_s * 1000)
                cpu[role].append(cpu_s * 1000)
    finally:
        for worker in workers:
            worker.close()
    calls = _describe_calls(handler.ready["calls_per_event"])
    cold_calls = handler.ready.get("cold_calls", {})
    if cold_calls != handler.ready["calls_per_event"]:
        calls += f" (first invocation: {_describe_calls(cold_calls)})"
    naive_calls = _describe_calls(naive.ready["calls_per_event"])
    mine_cpu, naive_cpu = median(cpu["handler"]), median(cpu["naive"])
    unit, per_unit = "event", 1
    if spec.per_record:
        unit, per_unit = "message", len(spec.load_event()["Records"])
    return [
        Row(
            f"{spec.name}: warm, CPU ms per {unit} (stubbed AWS)",
            mine_cpu / per_unit,
            naive_cpu / per_unit,
            WARM_DELTA,
            unit="ms",
            note=(
                f"median of {settings.rounds} rounds of {settings.events} events on "
                f"{spec.event}"
                + (
                    f", {per_unit} messages each: per event {mine_cpu:.2f} vs {naive_cpu:.2f} "
                    "ms CPU"
                    if spec.per_record
                    else ""
                )
                + f"; wall time per event {median(per_event['handler']):.2f} vs "
                f"{median(per_event['naive']):.2f} ms; AWS calls per event: handler {calls}, "
                f"naive {naive_calls} (stubbed: no network time in either); first invocation "
                f"{handler.ready['first_cpu_seconds'] * 1000:.1f} vs "
                f"{naive.ready['first_cpu_seconds'] * 1000:.1f} ms CPU"
            ),
        )
    ]


@contextmanager
def aws_for(
    spec: HandlerSpec, env: Mapping[str, str], deployment: Deployment
) -> Iterator[dict[str, str]]:
    """``env``, pointed at a moto server holding the template's resources if the spec asks,
    and the spec's secrets, their ARNs passed as the template parameters that name them."""
    if not spec.local_aws:
        yield dict(env)
        return
    from devtools.local_aws import moto_server, provision_template_resources
    from devtools.template import TEMPLATE

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    with moto_server() as local:
        # moto's state lives in this process, not in the server: a second server (the next
        # step) would find the first one's tables, and its flood-control items. Start clean.
        urllib.request.urlopen(
            urllib.request.Request(f"{local.endpoint_url}/moto-api/reset", method="POST"),
            timeout=10,
        ).close()
        provision_template_resources(local, TEMPLATE)
        if spec.secrets:
            secretsmanager = local.client("secretsmanager")
            arns = {
                parameter: secretsmanager.create_secret(
                    Name=f"batchwire/bench-{parameter}", SecretString=value
                )["ARN"]
                for parameter, value in spec.secrets.items()
            }
            env = child_environment(spec, deployment, arns)
        yield {**env, **local.environ}


def measure_memory(spec: HandlerSpec, env: Mapping[str, str], deployment: Deployment) -> list[Row]:
    """Peak RSS of the whole process on the largest event, handler and naive."""
    with aws_for(spec, env, deployment) as aws_env:
        mine = run_child(["memory", spec.name, "handler"], aws_env)
        naive = run_child(["memory", spec.name, "naive"], aws_env)
    size = f"{mine['event_bytes']:,}-byte event"
    return [
        Row(
            f"{spec.name}: peak RSS, largest event",
            mine["peak_rss_mb"],
            naive["peak_rss_mb"],
            MEMORY_LIMIT,
            unit="MB",
            note=f"whole process incl. interpreter and imports, {size}",
        ),
        Row(
            f"{spec.name}: invocation's own allocations",
            mine["invocation_peak_mb"],
            naive["invocation_peak_mb"],
            Target("info"),
            unit="MB",
            note=(
                f"tracemalloc peak of one invocation on the {size}; "
                f"RSS after import: {mine['after_import_mb']:.1f} MB "
                f"(naive {naive['after_import_mb']:.1f} MB)"
            ),
        ),
    ]


def measure_extra(spec: HandlerSpec, env: Mapping[str, str], deployment: Deployment) -> list[Row]:
    """Rows of the handler's own benchmarks (``spec.extra``), run in a fresh child."""
    with aws_for(spec, env, deployment) as aws_env:
        answer = run_child(["extra", spec.name], aws_env)
    return [
        Row(
            row["measurement"],
            row["value"],
            row.get("baseline"),
            Target(row["comparison"], row.get("limit", 0.0), row.get("unit", "")),
            unit=row.get("unit", ""),
            note=row.get("note", ""),
        )
        for row in answer["rows"]
    ]


def benchmark(spec: HandlerSpec, settings: Settings, deployment: Deployment) -> list[Row]:
    """Every row of one handler; a failure becomes a MISS row naming what went wrong."""
    info = Target("info")
    if not spec.available:
        return [
            Row(f"{spec.name}: all", None, None, info, note="functions/ has no such module yet")
        ]
    steps: list[tuple[str, Callable[[Mapping[str, str]], list[Row]]]] = []
    if spec.cold:
        steps.append(
            (
                "cold init",
                lambda env: measure_cold(
                    spec,
                    env,
                    child_environment(spec, deployment, {"PowertoolsTracer": "on"}),
                    settings.runs,
                ),
            )
        )
    if spec.warm:
        steps.append(("warm time per event", lambda env: measure_warm(spec, env, settings)))
    if spec.memory:
        steps.append(("peak memory", lambda env: measure_memory(spec, env, deployment)))
    if spec.extra:
        steps.append((spec.extra, lambda env: measure_extra(spec, env, deployment)))
    try:
        env = child_environment(spec, deployment)
    except (Exception, SystemExit) as error:
        return [_failed(f"{spec.name}: environment", error)]
    rows: list[Row] = []
    for label, step in steps:
        try:
            rows.extend(step(env))
        except Exception as error:
            rows.append(_failed(f"{spec.name}: {label}", error))
    return rows


def import_profile(spec: HandlerSpec, deployment: Deployment, top: int = 25) -> str:
    """``python -X importtime`` of the handler module, sorted by cumulative time."""
    env = child_environment(spec, deployment)
    completed = subprocess.run(
        [env["BENCH_PYTHON"], "-X", "importtime", *child_command(env, "cold", spec.module)[1:]],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    total = json.loads(completed.stdout.strip().splitlines()[-1])["seconds"] * 1000
    entries = []
    for line in completed.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            self_us, cumulative_us, indent, name = match.groups()
            entries.append((int(cumulative_us), int(self_us), len(indent) // 2, name))
    by_cumulative = sorted(entries, reverse=True)[:top]
    by_self = sorted(entries, key=lambda entry: entry[1], reverse=True)[:15]
    lines = [f"{spec.module}: import and init {total:.0f} ms (with -X importtime overhead)", ""]
    lines.append("top by cumulative time (ms; depth in the import tree):")
    lines.extend(f"  {c / 1000:8.1f}  {'  ' * d}{n}" for c, _, d, n in by_cumulative)
    lines.append("top by self time (ms):")
    lines.extend(f"  {s / 1000:8.1f}  {n}" for _, s, _, n in by_self)
    compiled = run_child(["compiled", spec.module], env)["compiled"]
    lines.append(f"sources compiled at import (no usable bytecode): {len(compiled)}")
    lines.extend(f"  {path}" for path in compiled)
    return "\n".join(lines)


def _describe_calls(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{count} {name}" for name, count in sorted(counts.items())) or "none"


def _failed(measurement: str, error: BaseException) -> Row:
    message = " ".join(str(error).split())[-400:]
    return Row(measurement, float("nan"), None, Target("value<=", 0.0), note=f"failed: {message}")


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


#: ``--only`` name of the scaler simulation, printed after the handlers' table.
SCALER_SIMULATION = "scaler"


def simulate_scaler(separate: bool) -> list[Row]:
    """Print the scaler simulation's section; its rows (for ``--check``)."""
    print("simulating scaler...", file=sys.stderr, flush=True)
    try:
        from bench.scaler_sim import section

        text, rows = section()
    except Exception as error:
        row = _failed("scaler sim", error)
        text, rows = render_table([row]), [row]
    print(("\n" if separate else "") + text)
    return rows


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{os.uname().machine}, {cpu}, {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}, load average {load}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--only",
        metavar="NAME",
        help=f"benchmark one handler of the registry, or {SCALER_SIMULATION!r}: the simulation",
    )
    parser.add_argument("--runs", type=int, default=Settings.runs, help="cold runs per side")
    parser.add_argument("--rounds", type=int, default=Settings.rounds, help="warm rounds")
    parser.add_argument("--events", type=int, default=Settings.events, help="events per round")
    parser.add_argument("--importtime", metavar="NAME", help="profile the imports of a handler")
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=BUILD_DIR,
        help=f"the sam build to measure (default: {BUILD_DIR.relative_to(ROOT)})",
    )
    args = parser.parse_args(argv)

    settings = Settings(args.runs, args.rounds, args.events)
    specs = [spec for spec in REGISTRY if args.only in (None, spec.name)]
    simulate = args.only in (None, SCALER_SIMULATION) and not args.importtime
    if not specs and not simulate:
        parser.error(
            f"--only {args.only}: no such handler in bench/registry.py "
            f"(nor {SCALER_SIMULATION!r}, the scaler simulation)"
        )
    started = time.perf_counter()
    deployment = None
    if specs or args.importtime:
        print(f"deploying {args.build_dir}...", file=sys.stderr, flush=True)
        try:
            deployment = deploy(args.build_dir.resolve())
        except NotDeployable as error:
            print(f"python -m bench: {error}", file=sys.stderr)
            return 2
    if args.importtime:
        from bench.registry import find

        assert deployment is not None
        print(import_profile(find(args.importtime), deployment))
        return 0
    rows: list[Row] = []
    for spec in specs:
        assert deployment is not None
        print(f"benchmarking {spec.name}...", file=sys.stderr, flush=True)
        rows.extend(benchmark(spec, settings, deployment))
    if deployment is not None and args.only is None:
        rows.extend(artifact_rows(deployment))
    if specs:
        print(render_table(rows))
    if simulate:
        rows.extend(simulate_scaler(separate=bool(specs)))
    measured = (
        f"; measured: {args.build_dir} on {deployment.python}" if deployment is not None else ""
    )
    print(f"\nmachine: {machine()}{measured}; took {time.perf_counter() - started:.0f} s")
    missed = misses(rows)
    if args.check and missed:
        print(f"\n{len(missed)} target(s) missed: " + "; ".join(r.measurement for r in missed))
        return 1
    return 0
