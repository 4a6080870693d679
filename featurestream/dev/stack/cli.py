"""`featurestream stack up|down|status|env`, mounted on the CLI by the `register` entry point.

Exit codes: 0 ok, 2 bad arguments or environment (unknown service, bad port), 1 failure (a
service did not start, a prerequisite is missing); `status` exits 1 when a listed service is not
healthy, so scripts can wait on it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any

from featurestream.dev.stack import manager
from featurestream.dev.stack.errors import StackConfigError, StackError
from featurestream.dev.stack.services import SERVICE_NAMES

ACTIONS = ("up", "down", "status", "env")


def add_stack_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `stack` command to an argparse subparsers object; returns its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "stack",
        help="start/stop/inspect the local services (Kafka, Kinesis, S3, PostgreSQL, Feature Store)",
        description=(
            "Local services without Docker, state and logs in $FEATURESTREAM_STATE_DIR "
            "(default ./.state); ports from FEATURESTREAM_<SERVICE>_PORT. "
            f"Services: {', '.join(SERVICE_NAMES)}."
        ),
    )
    parser.add_argument("action", choices=ACTIONS, help="up | down | status | env")
    parser.add_argument(
        "services", nargs="*", metavar="SERVICE",
        help=f"any of {', '.join(SERVICE_NAMES)} (default: all; ignored by env)",
    )
    return parser


def run_stack(args: argparse.Namespace) -> int:
    """Carry out a parsed `stack` command; returns the process exit code."""
    services: list[str] = list(getattr(args, "services", None) or [])
    try:
        if args.action == "env":
            print(manager.format_env(manager.env()))
            return 0
        if args.action == "up":
            reports = manager.start_reports(services)
            for report in reports:
                print(f"{report.name}: {report.action} ({report.seconds:.1f}s)", file=sys.stderr)
            rows = manager.status(services)
        elif args.action == "down":
            rows = manager.down(services)
        else:
            rows = manager.status(services)
        print(manager.format_status(rows))
        if args.action == "down":
            return 0 if all(r.pid is None for r in rows) else 1
        return 0 if all(r.healthy for r in rows) else 1
    except StackConfigError as exc:
        print(f"featurestream stack: {exc}", file=sys.stderr)
        return 2
    except StackError as exc:
        print(f"featurestream stack {args.action}: {exc}", file=sys.stderr)
        if args.action == "up":
            # Show what did come up, so the user sees which service to look at.
            print(manager.format_status(manager.status(services)))
        return 1


def register(sub: argparse._SubParsersAction) -> Callable[[argparse.Namespace], int]:
    """The `featurestream.cli_plugins` entry point: adds `stack` to the CLI."""
    add_stack_parser(sub)
    return run_stack


def main(argv: list[str] | None = None) -> int:
    """`python -m featurestream.dev.stack ACTION [SERVICE...]`, the same as `featurestream stack ...`."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m featurestream.dev.stack")
    sub = parser.add_subparsers(dest="command", required=True)
    add_stack_parser(sub)
    return run_stack(parser.parse_args(["stack", *(sys.argv[1:] if argv is None else argv)]))
