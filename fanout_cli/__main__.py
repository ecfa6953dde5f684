"""``fanout``: operate the pipeline: backfill a range, see its state, redrive, report.

    fanout backfill --start 2026-11-01 --end 2026-11-02 --all
    fanout status
    fanout redrive
    fanout report --start 2026-11-01 --end 2026-11-02 --html report.html
    fanout plan --docs-per-hour 1M --values-per-doc 1000

Every command but ``plan`` (arithmetic, no AWS) reaches the stack through the standard AWS
configuration (profile, region, credentials) and ``AWS_ENDPOINT_URL`` for an emulator;
``--stack`` names the stack's prefix (see :mod:`fanout_cli.target`). A problem the
operator can fix (no credentials, an endpoint that does not answer, a stack that is not
there) ends in one line saying so, never a traceback: exit status 2. A command that ran
but could not finish its work exits 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from fanout_cli import backfill, page, plan, redrive, report, status
from fanout_cli.target import CliError, PartlyDoneError, Stack, Target
from fanout_core.descriptor import parse_instant
from fanout_core.settings import parse_duration

EXIT_FAILED = 1
EXIT_UNUSABLE = 2
EXIT_INTERRUPTED = 130
_STACK_GONE = {
    "AWS.SimpleQueueService.NonExistentQueue": "the queue does not exist",
    "QueueDoesNotExist": "the queue does not exist",
    "NoSuchBucket": "the bucket does not exist",
    "ResourceNotFoundException": "the resource does not exist",
}
_NOT_ALLOWED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
}


def _instant(text: str) -> datetime:
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 date or time (2026-11-27, 2026-11-27T08:00Z)"
        ) from exc


def _duration(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _threads(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError("between 1 and 256")
    return value


def _count(text: str) -> float:
    """``5000``, ``10k``, ``1M``, ``2.5G``: a positive count."""
    scale = {"k": 1e3, "m": 1e6, "g": 1e9}.get(text[-1:].lower(), 1.0)
    try:
        value = float(text[:-1] if scale != 1.0 else text) * scale
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count like 5000, 10k or 1M") from exc
    if not 1 <= value <= 1e12:
        raise argparse.ArgumentTypeError(f"{text!r}: between 1 and 10^12")
    return value


def _bounded(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"between {low:,} and {high:,}")
        return value

    return parse


def _show(text: str) -> int:
    return -1 if text == "all" else max(0, int(text))


def _doc(module: Any) -> str:
    """A module's docstring as command help (no reStructuredText quoting)."""
    return str(module.__doc__).replace("``", "")


def _common() -> argparse.ArgumentParser:
    """Where the stack is: flags every command takes."""
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("where the stack is")
    where.add_argument(
        "--stack",
        help="the stack's name prefix, as infra/ names resources (FANOUT_STACK; default fanout)",
    )
    where.add_argument("--region", help="AWS region (default: the standard AWS configuration)")
    where.add_argument("--profile", help="AWS profile (default: the standard AWS configuration)")
    where.add_argument(
        "--endpoint-url", help="an emulator's URL (default: AWS_ENDPOINT_URL, else AWS itself)"
    )
    where.add_argument("--queue-url", help="the request queue (FANOUT_QUEUE_URL)")
    where.add_argument(
        "--dead-letter-queue-url",
        help="its dead-letter queue (FANOUT_DEAD_LETTER_QUEUE_URL; default: its redrive policy)",
    )
    where.add_argument("--bucket", help="the data bucket (FANOUT_BUCKET)")
    where.add_argument("--parquet-prefix", help="root of the parquet lake (FANOUT_PARQUET_PREFIX)")
    where.add_argument(
        "--quarantine-prefix", help="root of the quarantine (FANOUT_QUARANTINE_PREFIX)"
    )
    return common


def _range(parser: argparse.ArgumentParser) -> None:
    what = parser.add_argument_group("which descriptors")
    what.add_argument("--start", type=_instant, required=True, help="first instant (ISO-8601, UTC)")
    what.add_argument(
        "--end", type=_instant, required=True, help="end of the range, excluded (ISO-8601, UTC)"
    )
    what.add_argument(
        "--window",
        type=_duration,
        default=os.environ.get("FANOUT_WINDOW", "1h"),
        help="window length, as the producer's FANOUT_WINDOW (default: that variable, else 1h)",
    )
    devices = what.add_mutually_exclusive_group()
    devices.add_argument(
        "--devices",
        action="append",
        metavar="ID[,ID...]",
        help="device ids (comma-separated, repeatable)",
    )
    devices.add_argument(
        "--all", action="store_true", help="every device the API lists (GET /devices)"
    )
    what.add_argument(
        "--api-base-url",
        help="the API, for --all (FANOUT_API_BASE_URL; default: the producer's configuration)",
    )


def parser() -> argparse.ArgumentParser:
    """The ``fanout`` command line."""
    top = argparse.ArgumentParser(
        prog="fanout",
        description=__doc__.split("\n\n")[0].removeprefix("``fanout``: "),
        epilog="Run `fanout COMMAND --help` for each command's options.",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common()

    fill = commands.add_parser(
        "backfill",
        parents=[common],
        help="enqueue a range's descriptors straight to the request queue",
        description=_doc(backfill),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _range(fill)
    fill.add_argument(
        "--threads", type=_threads, default=16, help="threads sending batches (default 16)"
    )
    fill.add_argument(
        "--dry-run", action="store_true", help="print what would be enqueued; send nothing"
    )
    fill.add_argument(
        "--show",
        type=_show,
        default=5,
        metavar="N|all",
        help="with --dry-run: message bodies to print (default 5)",
    )
    fill.add_argument("--json", action="store_true", help="print the result as JSON")
    fill.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    state = commands.add_parser(
        "status",
        parents=[common],
        help="queue depths, dead letters, quarantine and parquet, now",
        description=_doc(status),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    state.add_argument(
        "--since",
        type=_instant,
        metavar="DATE",
        help="only quarantine and partitions from this date on",
    )
    state.add_argument("--json", action="store_true", help="print as JSON")

    move = commands.add_parser(
        "redrive",
        parents=[common],
        help="move dead-lettered descriptors back to the request queue",
        description=_doc(redrive),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    move.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    move.add_argument("--max", type=int, metavar="N", help="move at most N messages")
    move.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    account = commands.add_parser(
        "report",
        parents=[common],
        help="reconcile a range: written, quarantined, dead-lettered, missing; --html page",
        description=_doc(report),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _range(account)
    account.add_argument(
        "--logs",
        type=Path,
        metavar="PATH",
        help="the consumer's JSON log lines, a file or a folder (the local runner's "
        "build/run/logs); default: its CloudWatch Logs group",
    )
    account.add_argument(
        "--html", type=Path, metavar="FILE", help="also write the report as an HTML page"
    )
    account.add_argument("--json", action="store_true", help="print as JSON")

    model = commands.add_parser(
        "plan",
        help="Lambda concurrency, batching, Firehose streams, cost and the binding limit",
        description=_doc(plan),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model.add_argument(
        "--docs-per-hour",
        type=_count,
        action="append",
        metavar="N",
        help="documents per hour, like 5000, 10k or 1M (repeatable; default: "
        + ", ".join(f"{rate:,}" for rate in plan.DEFAULT_RATES)
        + ")",
    )
    model.add_argument(
        "--values-per-doc",
        type=_bounded(1, 10_000_000),
        default=1000,
        metavar="M",
        help="integers in each document's values (default 1000)",
    )
    model.add_argument(
        "--region", default="us-east-1", help="AWS region (default us-east-1; costs only there)"
    )
    model.add_argument(
        "--architecture", choices=("x86_64", "arm64"), default="x86_64", help="(default x86_64)"
    )
    model.add_argument(
        "--consumer-memory-mb",
        type=_bounded(128, 10240),
        default=1024,
        metavar="MB",
        help="the consumer's memory, hence its share of a vCPU (default 1024)",
    )
    model.add_argument(
        "--fetch-concurrency",
        type=_bounded(1, 1024),
        metavar="N",
        help="fetches in flight per invocation (default: enough to keep its CPU busy)",
    )
    model.add_argument(
        "--firehose-streams",
        type=_bounded(1, 10_000),
        metavar="N",
        help="Firehose streams (default: as many as the per-stream quota needs)",
    )
    model.add_argument(
        "--api-latency-ms",
        type=_bounded(1, 60_000),
        metavar="MS",
        help="the API's time per document (default: the data file's assumption, 100)",
    )
    model.add_argument(
        "--producer-shards",
        type=_bounded(1, 100),
        metavar="N",
        help="producer invocations per tick (default: as many as a tick needs)",
    )
    model.add_argument(
        "--buffer-interval",
        type=_bounded(0, 900),
        default=300,
        metavar="S",
        help="Firehose's buffering interval, seconds (0 to 900; default 300)",
    )
    model.add_argument(
        "--bench",
        type=Path,
        default=plan.BENCH,
        metavar="FILE",
        help="make bench's results (default build/bench.json; the data file's figures "
        "when missing)",
    )
    model.add_argument("--json", action="store_true", help="print as JSON")
    model.add_argument(
        "--tfvars", action="store_true", help="print the plan as infra/ variables (one rate)"
    )
    model.add_argument(
        "--ceilings",
        action="store_true",
        help="the rate at which each limit binds, earliest first, with the way past it",
    )
    return top


def _devices(args: argparse.Namespace, stack: Stack) -> tuple[list[str] | None, str]:
    if args.devices:
        return list(backfill.checked_devices(args.devices)), "given"
    if args.all:
        return list(backfill.all_devices(stack)), "listed by the API"
    return None, "found in the data"


def run(args: argparse.Namespace) -> int:
    """Run one parsed command; return its exit status."""
    if args.command == "plan":
        return _plan(args)
    flags: dict[str, Any] = vars(args)
    if args.command == "backfill":
        flags["connections"] = args.threads + 4
    stack = Stack(Target.from_sources(flags))
    out = sys.stdout
    if args.command == "backfill":
        if not args.devices and not args.all:
            raise CliError("say which devices: --devices ID[,ID...] or --all")
        devices, _ = _devices(args, stack)
        assert devices is not None
        plan = backfill.plan(tuple(devices), args.start, args.end, args.window)
        if args.dry_run:
            backfill.print_dry_run(plan, args.show, out)
            return 0
        result = backfill.run(plan, stack, threads=args.threads, progress=not args.no_progress)
        backfill.print_result(result, out, args.json)
        return 0
    if args.command == "status":
        status.print_status(status.collect(stack, args.since and args.since.date()), out, args.json)
        return 0
    if args.command == "redrive":
        moved = redrive.redrive(
            stack, limit=args.max, assume_yes=args.yes, progress=not args.no_progress
        )
        redrive.print_moved(moved, out)
        return EXIT_FAILED if moved.refused else 0
    if args.end <= args.start:
        raise CliError("--end must be after --start")
    devices, source = _devices(args, stack)
    found = report.build(
        stack,
        start=args.start,
        end=args.end,
        window_seconds=args.window,
        devices=devices,
        devices_source=source,
        logs=args.logs,
    )
    if args.html:
        args.html.write_text(page.render(found))
    report.print_report(found, out, args.json)
    if args.html and not args.json:
        out.write(f"page: {args.html}\n")
    return 0


def _plan(args: argparse.Namespace) -> int:
    rates = args.docs_per_hour or plan.DEFAULT_RATES
    if args.tfvars and len(rates) != 1:
        raise CliError("--tfvars plans one rate: give one --docs-per-hour")
    reference = plan.Reference.load(bench=args.bench)
    workload = plan.Workload(
        docs_per_hour=rates[0],
        values_per_doc=args.values_per_doc,
        region=args.region,
        architecture=args.architecture,
        consumer_memory_mb=args.consumer_memory_mb,
        fetch_concurrency=args.fetch_concurrency,
        firehose_streams=args.firehose_streams,
        api_latency_ms=args.api_latency_ms,
        buffer_interval_s=args.buffer_interval,
        producer_shards=args.producer_shards,
    )
    plans = plan.plans_for(rates, workload, reference)
    if args.ceilings:
        plan.print_ceilings(workload, reference, sys.stdout, args.json)
    elif args.tfvars:
        plan.print_tfvars(plans[0], sys.stdout)
    else:
        plan.print_plans(plans, reference, sys.stdout, args.json)
    return 0


def _client_error(exc: ClientError, stack_hint: str) -> str:
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), error.get("Message", "")
    if code in _STACK_GONE:
        return f"{exc.operation_name}: {_STACK_GONE[code]}: {message} ({stack_hint})"
    if code in _NOT_ALLOWED:
        return f"{exc.operation_name}: not allowed with these credentials ({code}): {message}"
    return f"{exc.operation_name} failed: {code}: {message}"


def explain(exc: BaseException, stack_hint: str) -> str:
    """One line for an error the operator can fix."""
    if isinstance(exc, ClientError):
        return _client_error(exc, stack_hint)
    if isinstance(exc, EndpointConnectionError):
        endpoint = exc.kwargs.get("endpoint_url", "the endpoint")
        return f"cannot reach {endpoint}: is the stack running there? ({stack_hint})"
    messages: dict[type[BaseException], str] = {
        CliError: str(exc),
        NoCredentialsError: "no AWS credentials: configure a profile (AWS_PROFILE), SSO, or "
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (an emulator takes any values)",
        PartialCredentialsError: f"incomplete AWS credentials: {exc}",
        NoRegionError: "no AWS region: set AWS_REGION or AWS_DEFAULT_REGION, or pass --region",
        ProfileNotFound: f"{exc} (check AWS_PROFILE or --profile)",
        BotoCoreError: f"AWS: {exc} ({stack_hint})",
        OSError: str(exc),
    }
    return next(
        (text for kind, text in messages.items() if isinstance(exc, kind)),
        f"{type(exc).__name__}: {exc}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The console script's entry point."""
    args = parser().parse_args(argv)
    hint = (
        ""
        if args.command == "plan"
        else (
            f"stack {args.stack or os.environ.get('FANOUT_STACK') or 'fanout'} at "
            f"{args.endpoint_url or os.environ.get('AWS_ENDPOINT_URL') or 'AWS'}"
        )
    )
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (CliError, BotoCoreError, ClientError, OSError) as exc:
        print(f"fanout {args.command}: {explain(exc, hint)}", file=sys.stderr)
        return EXIT_FAILED if isinstance(exc, PartlyDoneError) else EXIT_UNUSABLE


if __name__ == "__main__":
    sys.exit(main())
