"""The `featurestream` command: feature-groups, stream, compact, training-set; plus stack and generate.

`stack` and `generate` belong to the development layer (featurestream.dev), which production code
never imports: they are found through the `featurestream.cli_plugins` entry points, so the CLI
lists them wherever the package is installed and stays free of their imports.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from featurestream.cli.commands import compact, feature_groups, stream, training_set
from featurestream.cli.entrypoint import run_entry

Handler = Callable[[argparse.Namespace], int]
PLUGIN_GROUP = "featurestream.cli_plugins"


def _plugins(sub: argparse._SubParsersAction) -> dict[str, Handler]:
    """Subcommands contributed by entry points: each `register(sub)` adds its parser, returns its handler."""
    handlers: dict[str, Handler] = {}
    for entry in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        handlers[entry.name] = entry.load()(sub)
    return handlers


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    parser = argparse.ArgumentParser(prog="featurestream", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    handlers: dict[str, Handler] = {}
    for name, module, help_text in (
        ("feature-groups", feature_groups, "create or describe SageMaker feature groups"),
        ("stream", stream, "run the streaming feature job"),
        ("compact", compact, "compact the SageMaker offline store (dedup, sorted, right-sized Parquet)"),
        ("training-set", training_set, "build a point-in-time training set from RDS labels (or --export-history)"),
    ):
        module.add_arguments(sub.add_parser(name, help=help_text, description=module.__doc__))
        handlers[name] = module.run
    handlers.update(_plugins(sub))
    return parser, handlers


def main(argv: Sequence[str] | None = None) -> int:
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    return run_entry(lambda: handlers[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
