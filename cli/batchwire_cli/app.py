"""The ``batchwire`` command line: parse, resolve the stack, run one command, report.

Exit codes: 0 done, 1 a failure (no credentials, stack or queue not found, AWS refused),
2 a usage error (unknown command, option or queue name).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from batchwire_cli import __version__
from batchwire_cli.errors import EXIT_FAILURE, EXIT_USAGE, CliError
from batchwire_cli.runs import list_runs, parse_since, print_runs
from batchwire_cli.stack import Stack, read_stack, resolve_target

DESCRIPTION = (
    "See and steer a batchwire stack from a terminal: its failure queues and its schedules, "
    "and the runs they started."
)
EPILOG = (
    "Without --stack the command reads the stack of a running `make local-stack` "
    "(.aws-sam/local-stack.json). Exit codes: 0 done, 1 failure, 2 usage."
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # one line on stderr (argparse prints the whole usage first)
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _common_options() -> _Parser:
    # SUPPRESS: an option given before the command is not reset by the command's parser
    common = _Parser(add_help=False)
    group = common.add_argument_group("stack")
    group.add_argument(
        "--stack",
        default=argparse.SUPPRESS,
        help="name of a deployed stack (default: the running make local-stack)",
    )
    group.add_argument("--region", default=argparse.SUPPRESS, help="AWS region of the stack")
    group.add_argument("--profile", default=argparse.SUPPRESS, help="AWS profile to use")
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print JSON (every field) instead of tables",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = _Parser(prog="batchwire", description=DESCRIPTION, epilog=EPILOG, parents=[common])
    parser.add_argument("--version", action="version", version=f"batchwire {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    dlq = commands.add_parser(
        "dlq",
        parents=[common],
        help="the stack's failure queues: depth and oldest message, non-empty first",
        description="Every failure queue of the stack, what lands there, how many messages "
        "it holds and how old the oldest is; non-empty queues first. Messages are peeked "
        "(VisibilityTimeout=0), never consumed.",
    )
    dlq_commands = dlq.add_subparsers(
        dest="dlq_command", metavar="{show,redrive}", parser_class=_Parser
    )
    show = dlq_commands.add_parser(
        "show",
        parents=[common],
        help="print a failure queue's messages readably, secrets redacted",
        description="Print up to --max messages of one failure queue, oldest first: sent "
        "time, receive count, attributes, and the body unwrapped (Lambda on-failure records, "
        "SNS envelopes) with secrets redacted. Nothing is deleted or consumed; each peek "
        "adds one to a message's receive count.",
    )
    show.add_argument(
        "queue",
        metavar="QUEUE",
        help="logical id or short name: failed-invocations, scheduler, chain, retrier, "
        "notifier-rules, subscriptions, work, example-work",
    )
    show.add_argument(
        "--max",
        type=_positive,
        default=10,
        help="how many messages at most (default 10)",
    )
    redrive = dlq_commands.add_parser(
        "redrive",
        parents=[common],
        help="send a failure queue's messages back where they came from",
        description="Send the messages of a failure queue back where they came from, then "
        "delete them from it (only once resent; a message that cannot be resent stays and "
        "is reported). chain -> ChainQueue, work -> WorkQueue, example-work -> "
        "ExampleWorkQueue (an SQS message move task when SQS offers one and --max is not "
        "given, else message by message with their attributes); failed-invocations -> "
        "the function of each on-failure record, invoked asynchronously with its "
        "requestPayload. The other queues are refused with what to do by hand.",
    )
    redrive.add_argument("queue", metavar="QUEUE", help="logical id or short name")
    redrive.add_argument(
        "--dry-run", action="store_true", help="list what would go where; move nothing"
    )
    redrive.add_argument(
        "--max", type=_positive, default=None, help="move at most N messages (default: all)"
    )
    for verb, state, doing in (
        ("pause", "DISABLED", "stops firing"),
        ("resume", "ENABLED", "fires again"),
    ):
        toggle = commands.add_parser(
            verb,
            parents=[common],
            help=f"set a schedule or scheduled rule {state}: it {doing}",
            description=f"Set one schedule {state}: an EventBridge Scheduler schedule of the "
            "stack's group (every other field kept) or a scheduled EventBridge rule. Prints "
            "the state before and after; a schedule already in that state is left as it is.",
        )
        toggle.add_argument(
            "schedule", metavar="SCHEDULE", help="schedule or rule name, or its logical id"
        )
    run_now = commands.add_parser(
        "run-now",
        parents=[common],
        help="fire a schedule once now, as a new firing, and print what it submitted",
        description="Invoke the Lambda target of a schedule or scheduled rule once now, with "
        "the event it would deliver: for a Scheduler schedule the target's Input with the "
        "schedule ARN and the current UTC time (to the second) as scheduled time, so the "
        "submitter sees a new firing; for a rule its constant Input (Lambda's request id "
        "makes each run a firing of its own). ECS task targets are not supported.",
    )
    run_now.add_argument(
        "schedule", metavar="SCHEDULE", help="schedule or rule name, or its logical id"
    )
    run_now.add_argument(
        "--dry-run", action="store_true", help="print the event and function; invoke nothing"
    )
    commands.add_parser(
        "schedules",
        parents=[common],
        help="every schedule of the stack, its next firings and the jobs it submits",
        description="Every EventBridge Scheduler schedule in the stack's group and every "
        "scheduled EventBridge rule of the stack: expression and its meaning, time zone, "
        "the next three firings in that zone, state, and the jobs it submits.",
    )
    runs = commands.add_parser(
        "runs",
        parents=[common],
        help="firings and the jobs they started and chained: status, duration; failures first",
        description="Every firing recorded in the stack's RunsTable within --since, the jobs "
        "it submitted (hop 0) and every job chained from them (hop 1 and up, by chain id): "
        "status, duration and Batch console link. Firings with a FAILED job come first, then "
        "the newest. A job Batch no longer knows (about 7 days after it ended) shows as "
        "'unknown (no longer in Batch)'.",
    )
    runs.add_argument(
        "--since",
        type=parse_since,
        default="24h",
        metavar="AGE",
        help="how far back to look: 30m, 24h, 7d... (default 24h, at most 366d)",
    )
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return value


def _stack_line(stack: Stack) -> str:
    return f"stack {stack.name} ({stack.target.where})"


def _dispatch(args: argparse.Namespace) -> int:
    from batchwire_cli import output

    as_json = bool(getattr(args, "json", False))
    if args.command == "dlq" and args.dlq_command in ("show", "redrive"):
        # a misspelt queue name is a usage error, found before any AWS call
        from batchwire_cli.dlq import find_failure_queue

        find_failure_queue(args.queue)
    target = resolve_target(
        getattr(args, "stack", None), getattr(args, "region", None), getattr(args, "profile", None)
    )
    stack = read_stack(target)
    if args.command in ("pause", "resume", "run-now"):
        return _schedule_action(args, stack, as_json)
    if args.command == "runs":
        with output.progress(f"reading the runs of stack {stack.name}") as report:
            runs = list_runs(stack, args.since, report=report)
        if as_json:
            output.print_json({"stack": stack.name, **runs})
        else:
            print_runs(_stack_line(stack), runs)
        return 0
    if args.command == "dlq":
        from batchwire_cli.dlq import queue_depths, show_queue

        if args.dlq_command == "redrive":
            from batchwire_cli.redrive import redrive_queue

            with output.progress(f"redriving queue {args.queue}") as report:
                moved = redrive_queue(stack, args.queue, args.dry_run, args.max, report)
            if as_json:
                output.print_json({"stack": stack.name, **moved})
            else:
                output.print_redrive(_stack_line(stack), moved)
            left = [m for m in moved["messages"] if not m["moved"] and not moved["dry_run"]]
            if left:
                print(
                    f"batchwire: {len(left)} message(s) of {moved['queue']} could not be "
                    "resent and stay there (see the reasons above)",
                    file=sys.stderr,
                )
                return EXIT_FAILURE
            return 0
        if args.dlq_command == "show":
            with output.progress(f"reading queue {args.queue}") as report:
                shown = show_queue(stack, args.queue, args.max, report=report)
            if as_json:
                output.print_json({"stack": stack.name, **shown})
            else:
                output.print_messages(_stack_line(stack), shown)
            return 0
        with output.progress(f"reading the failure queues of stack {stack.name}") as report:
            rows = queue_depths(stack, report=report)
        if as_json:
            output.print_json({"stack": stack.name, "queues": rows})
        else:
            output.print_dlq(_stack_line(stack), rows)
        return 0
    from batchwire_cli.schedules import attach_last_firings, list_schedules, scheduler_group

    with output.progress(f"reading the schedules of stack {stack.name}") as report:
        rows = list_schedules(stack, report=report)
        attach_last_firings(stack, rows, report=report)
    group = scheduler_group(stack)
    if as_json:
        output.print_json({"stack": stack.name, "schedule_group": group, "schedules": rows})
    else:
        note = None if group else "the stack has no ScheduleGroupName output: rules only"
        output.print_schedules(_stack_line(stack), rows, note)
    return 0


def _schedule_action(args: argparse.Namespace, stack: Stack, as_json: bool) -> int:
    from batchwire_cli import output
    from batchwire_cli.schedule_actions import run_now, set_schedule_state

    if args.command == "run-now":
        fired = run_now(stack, args.schedule, args.dry_run)
        if as_json:
            output.print_json({"stack": stack.name, **fired})
        else:
            output.print_run_now(_stack_line(stack), fired)
        return 0
    changed = set_schedule_state(stack, args.schedule, enabled=args.command == "resume")
    if as_json:
        output.print_json({"stack": stack.name, **changed})
    else:
        output.print_state_change(_stack_line(stack), changed)
    return 0


def run(argv: Sequence[str]) -> int:
    """Run the command line ``argv``; returns the exit code (errors: one line on stderr)."""
    try:
        args = build_parser().parse_args(list(argv))
    except SystemExit as done:  # --help, --version, usage errors (already printed)
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    try:
        return _dispatch(args)
    except CliError as error:
        print(f"batchwire: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("batchwire: interrupted", file=sys.stderr)
        return 130
