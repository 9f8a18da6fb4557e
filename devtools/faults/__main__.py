"""``python -m devtools.faults [--check] [SCENARIO ...]``: run the matrix, write docs/faults.md.

Progress goes to stderr, one line per cell that is not exactly-once. ``--check`` writes
nothing and exits 1 when the page differs from the run; naming scenarios runs only those
(their sections are then compared, never written).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator

from devtools.faults.matrix import Cell, ScenarioRun, run_scenario
from devtools.faults.page import DOCS, page, section, sections_of
from devtools.faults.scenarios import SCENARIOS, SCENARIOS_BY_KEY
from devtools.faults.world import local_world


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """The functions' own log lines (JSON, on fd 1) out of the way of the report."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.faults",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--check", action="store_true", help="compare with docs/faults.md only")
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="default: every one")
    args = parser.parse_args(argv)
    unknown = [key for key in args.scenarios if key not in SCENARIOS_BY_KEY]
    if unknown:
        parser.error(f"no scenario {', '.join(unknown)}; there are: {', '.join(SCENARIOS_BY_KEY)}")
    chosen = [SCENARIOS_BY_KEY[key] for key in args.scenarios] or list(SCENARIOS)

    def report(cell: Cell) -> None:
        if not cell.exactly_once and cell.site is not None and cell.fault is not None:
            limit = cell.known_limit
            verdict = f"known limit {limit.anchor}" if limit else "; ".join(cell.problems)
            after = f" (after {cell.reached_by[0].label})" if cell.reached_by else ""
            print(f"  {cell.site.label}{after} {cell.fault.name}: {verdict}", file=sys.stderr)

    start = time.monotonic()
    runs: list[ScenarioRun] = []
    with local_world() as world, _quiet_stdout():
        for scenario in chosen:
            run = run_scenario(world, scenario, report)
            runs.append(run)
            cells = run.every_cell[1:]
            bad = sum(not cell.acceptable for cell in cells)
            print(
                f"{scenario.key}: {len(run.sites)} call sites and {len(run.second_order)} "
                f"second-order ones, {len(cells)} cells, {bad} not exactly-once and not "
                f"known, {run.seconds:.0f} s",
                file=sys.stderr,
            )
    print(f"{len(runs)} scenarios in {time.monotonic() - start:.0f} s", file=sys.stderr)
    failed = any(not cell.acceptable for run in runs for cell in run.every_cell)
    name = DOCS.relative_to(DOCS.parents[1])
    current = DOCS.read_text() if DOCS.exists() else ""
    if len(runs) == len(SCENARIOS) and not args.check:
        DOCS.write_text(page(runs))
        print(f"wrote {name}", file=sys.stderr)
        return 1 if failed else 0
    found = sections_of(current)
    stale = [run.scenario.key for run in runs if found.get(run.scenario.key) != section(run)]
    if len(runs) == len(SCENARIOS) and not stale and page(runs) != current:
        stale.append("the page around the scenarios")
    if stale:
        print(f"{name} is stale ({', '.join(stale)}): run make faults", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
