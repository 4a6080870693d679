"""Real-time ML features on Spark: SageMaker feature groups, the streaming job, backfill,
compaction, training sets, consistency checks.

Exit codes: 0 ok, 2 bad configuration or arguments (one line per mistake), 1 a failure (one
line: what failed and why; --debug shows the traceback), 3 a check ran and found its threshold
exceeded (`consistency`). `featurestream COMMAND --help` describes each command's flags.
"""

# `stack` and `generate` belong to the development layer (featurestream.dev), which production code
# never imports: they are found through the `featurestream.cli_plugins` entry points, so the CLI
# lists them wherever the package is installed and stays free of their imports.

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import PackageNotFoundError, entry_points, version

from featurestream.cli.commands import backfill, compact, consistency, feature_groups, stream, training_set
from featurestream.cli.entrypoint import add_debug_flag, run_entry
from featurestream.cli.helptext import DocFormatter

Handler = Callable[[argparse.Namespace], int]
PLUGIN_GROUP = "featurestream.cli_plugins"


def _plugins(sub: argparse._SubParsersAction) -> dict[str, Handler]:
    """Subcommands contributed by entry points: each `register(sub)` adds its parser, returns its handler."""
    handlers: dict[str, Handler] = {}
    for entry in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        handlers[entry.name] = entry.load()(sub)
    return handlers


def _each_parser(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser and every subcommand parser under it, once each (aliases share a parser)."""
    seen: set[int] = set()
    stack = [parser]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())


def package_version() -> str:
    try:
        return version("featurestream")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    parser = argparse.ArgumentParser(prog="featurestream", description=__doc__, formatter_class=DocFormatter)
    parser.add_argument("--version", action="version", version=f"featurestream {package_version()}")
    add_debug_flag(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="`featurestream COMMAND --help` describes each")
    handlers: dict[str, Handler] = {}
    for name, module, help_text in (
        ("feature-groups", feature_groups, "create or describe SageMaker feature groups"),
        ("stream", stream, "run the streaming feature job"),
        ("backfill", backfill, "compute a feature group's history over a time range into its offline store"),
        ("compact", compact, "compact the SageMaker offline store (dedup, sorted, right-sized Parquet)"),
        ("training-set", training_set, "build a point-in-time training set from RDS labels (or --export-history)"),
        ("consistency", consistency, "check online records against the definition and the offline store"),
    ):
        module.add_arguments(sub.add_parser(name, help=help_text, description=module.__doc__))
        handlers[name] = module.run
    handlers.update(_plugins(sub))
    for child in _each_parser(parser):
        if child is not parser:
            # Docstrings hold command lines: keep their layout. `--debug` also after the command
            # (SUPPRESS: absent there, the global flag's value stays).
            child.formatter_class = DocFormatter
            add_debug_flag(child, default=argparse.SUPPRESS)
    return parser, handlers


def _what(args: argparse.Namespace) -> str:
    """The command as the user typed it, e.g. `feature-groups plan`, for the failure line."""
    action = getattr(args, "fg_command", None) or getattr(args, "action", None)
    return f"{args.command} {action}" if isinstance(action, str) else str(args.command)


def main(argv: Sequence[str] | None = None) -> int:
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    return run_entry(lambda: handlers[args.command](args), _what(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
