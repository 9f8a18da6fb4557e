"""What runs inside each fresh interpreter the runner starts: one handler module, measured.

    python -m bench.child cold MODULE            import-and-init time of MODULE
    python -m bench.child serve NAME ROLE        warm worker: per-event time, driven on stdin
    python -m bench.child memory NAME ROLE       peak memory on the largest event
    python -m bench.child extra NAME             the handler's own benchmarks (spec.extra)
    python -m bench.child compiled MODULE        the sources compiled while importing MODULE

ROLE is ``handler`` (functions/<module>.py) or ``naive`` (its bench/naive/ baseline).
Answers are one JSON line each on the original stdout; whatever the handler prints (logs,
EMF metrics) goes to /dev/null, as cheap a sink as Lambda's log capture.

Only the standard library is imported before the module under test, so that module pays
for everything it needs. The runner starts children with the runtime's Python and Lambda's
path only (bench/deployed.py): what the deployed function could not import, they cannot.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TextIO

from bench.registry import ClientStub, HandlerSpec, find


@dataclass
class BenchContext:
    """The Lambda context object as the runtime hands it over (a new request id each time)."""

    function_name: str = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "bench")
    memory_limit_in_mb: int = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/bench"
    log_stream_name: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:bench"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def trace_header() -> str:
    """A sampled X-Ray trace header, as the Lambda runtime sets per invocation."""
    root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    return f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=1"


def resolve(module: ModuleType, path: str) -> Any:
    target: Any = module
    for part in path.split("."):
        target = getattr(target, part)
    return target


class Responder:
    """Answers every call of the given clients from canned responses, recording each call."""

    def __init__(self, clients: Sequence[tuple[ClientStub, Any]]) -> None:
        self.clients = clients
        self.calls: list[tuple[int, str]] = []
        self._ids: list[str] = []

    def __enter__(self) -> Responder:
        from botocore.awsrequest import AWSResponse, HTTPHeaders

        for index, (stub, client) in enumerate(self.clients):
            to_method = {api: method for method, api in client.meta.method_to_api_mapping.items()}

            def answer(
                model: Any,
                index: int = index,
                stub: ClientStub = stub,
                to_method: dict[str, str] = to_method,
                **_: Any,
            ) -> Any:
                method = to_method[model.name]
                if method not in stub.responses:
                    raise KeyError(
                        f"{stub.path} called {method}: add a canned response for {method!r} "
                        "to its ClientStub in bench/registry.py"
                    )
                self.calls.append((index, method))
                return AWSResponse("", 200, HTTPHeaders(), None), dict(stub.responses[method])

            unique_id = f"bench-responder-{index}"
            client.meta.events.register_first("before-call.*.*", answer, unique_id=unique_id)
            self._ids.append(unique_id)
        return self

    def __exit__(self, *exc: object) -> None:
        for (_, client), unique_id in zip(self.clients, self._ids, strict=True):
            client.meta.events.unregister("before-call.*.*", unique_id=unique_id)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for index, method in self.calls:
            key = f"{self.clients[index][0].path}.{method}"
            out[key] = out.get(key, 0) + 1
        return out


@dataclass
class Loaded:
    spec: HandlerSpec
    module: ModuleType
    handler: Callable[[Any, Any], Any]
    clients: list[tuple[ClientStub, Any]]


_KEPT: list[Any] = []


def answer_slack_here(spec: HandlerSpec) -> None:
    """For the life of this child, Slack posts are answered in-process: nothing leaves."""
    if spec.slack:
        from bench.notifier import counted_slack_posts

        guard = counted_slack_posts()
        guard.__enter__()
        _KEPT.append(guard)  # a dropped generator context would close, undoing the patch


def load(spec: HandlerSpec, role: str) -> Loaded:
    answer_slack_here(spec)
    module = importlib.import_module(spec.module if role == "handler" else spec.naive)
    stubs = spec.stubs if role == "handler" else spec.naive_stubs
    clients = [(stub, resolve(module, stub.path)) for stub in stubs]
    return Loaded(spec, module, getattr(module, spec.handler), clients)


def invoke(loaded: Loaded, event: Any) -> Any:
    os.environ["_X_AMZN_TRACE_ID"] = trace_header()
    return loaded.handler(event, BenchContext())


def serve(loaded: Loaded, answer: Callable[[dict[str, Any]], None]) -> None:
    """Warm worker: for each ``{"events": N}`` line on stdin, time N invocations."""
    from botocore.stub import Stubber

    event = loaded.spec.load_event()
    with Responder(loaded.clients) as cold:
        # the first invocation: not in the per-event figure, but work a module leaves for
        # its first event (lazy imports, caches) shows here
        cpu_started = time.process_time()
        invoke(loaded, event)
        first_cpu = time.process_time() - cpu_started
    with Responder(loaded.clients) as discovery:
        # a warm invocation shows the calls of each timed event: caches filled by the cold
        # one (the retrier's DescribeTaskDefinition per revision) are not called again
        invoke(loaded, event)
    sequence = discovery.calls
    stubbers = [Stubber(client) for _, client in loaded.clients]
    for stubber in stubbers:
        stubber.activate()
    answer(
        {
            "ready": True,
            "calls_per_event": discovery.counts(),
            "cold_calls": cold.counts(),
            "first_cpu_seconds": first_cpu,
        }
    )
    for line in sys.stdin:
        count = int(json.loads(line)["events"])
        for _ in range(count):
            for index, method in sequence:
                stub = loaded.clients[index][0]
                stubbers[index].add_response(method, dict(stub.responses[method]))
        contexts = [BenchContext() for _ in range(count)]
        headers = [trace_header() for _ in range(count)]
        started, cpu_started = time.perf_counter(), time.process_time()
        for context, header in zip(contexts, headers, strict=True):
            os.environ["_X_AMZN_TRACE_ID"] = header
            loaded.handler(event, context)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        for stubber in stubbers:
            stubber.assert_no_pending_responses()
        answer({"seconds": elapsed, "cpu_seconds": cpu, "events": count})


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB.

    VmHWM from /proc: ru_maxrss would report the parent's peak when that is higher, since
    Linux keeps it across fork and exec (the driver, with the SAM CLI loaded, is bigger).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_memory(loaded: Loaded) -> dict[str, Any]:
    """Peak RSS of the whole process (what Lambda reports as Max Memory Used) after one
    invocation on the largest event, and the invocation's own Python allocations."""
    import tracemalloc

    after_import = peak_rss_mb()
    spec = loaded.spec
    event = spec.largest_event() if spec.largest_event else spec.load_event()
    with Responder(loaded.clients):
        invoke(loaded, event)
        peak_rss = peak_rss_mb()
        tracemalloc.start()
        invoke(loaded, event)
        _, invocation_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {
        "after_import_mb": after_import,
        "peak_rss_mb": peak_rss,
        "invocation_peak_mb": invocation_peak / 2**20,
        "event_bytes": len(json.dumps(event)),
    }


def compiled_sources(module: str) -> list[str]:
    """Import ``module``, noting every source the import system had to compile because no
    usable bytecode was there (not timed: the note itself costs a little)."""
    from importlib import _bootstrap_external

    compiled: list[str] = []
    loader_class: Any = _bootstrap_external.SourceLoader
    source_to_code = loader_class.source_to_code

    def noting(loader: Any, data: Any, path: Any, *args: Any, **kwargs: Any) -> Any:
        compiled.append(str(path))
        return source_to_code(loader, data, path, *args, **kwargs)

    loader_class.source_to_code = noting
    __import__(module)
    return compiled


def main(argv: Sequence[str]) -> int:
    out: TextIO = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)

    def answer(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    mode, *rest = argv
    if mode == "cold":
        started, cpu_started = time.perf_counter(), time.process_time()
        __import__(rest[0])  # the import statement's path: -X importtime sees this module too
        answer(
            {
                "seconds": time.perf_counter() - started,
                "cpu_seconds": time.process_time() - cpu_started,
            }
        )
    elif mode == "compiled":
        answer({"compiled": compiled_sources(rest[0])})
    elif mode == "serve":
        serve(load(find(rest[0]), rest[1]), answer)
    elif mode == "memory":
        answer(measure_memory(load(find(rest[0]), rest[1])))
    elif mode == "extra":
        spec = find(rest[0])
        if spec.extra is None:
            raise SystemExit(f"{spec.name} has no extra benchmarks")
        answer_slack_here(spec)
        extra = importlib.import_module(spec.extra)
        answer({"rows": extra.run(spec)})
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
