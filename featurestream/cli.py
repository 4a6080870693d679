"""The `featurestream` command: stack, feature-groups, stream, generate, demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from featurestream.commands import compact, feature_groups, generate, stream, training_set
from featurestream.entrypoint import run_entry


def _stack_parser(sub: argparse._SubParsersAction) -> Callable[[argparse.Namespace], int]:
    from local_stack.cli import add_stack_parser, run_stack

    add_stack_parser(sub)
    return run_stack


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], int]]]:
    parser = argparse.ArgumentParser(prog="featurestream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {"stack": _stack_parser(sub)}
    for name, module, help_text in (
        ("feature-groups", feature_groups, "create or describe SageMaker feature groups"),
        ("stream", stream, "run the streaming feature job"),
        ("generate", generate, "produce realistic events to Kafka"),
        ("compact", compact, "compact the SageMaker offline store (dedup, sorted, right-sized Parquet)"),
        ("training-set", training_set, "build a point-in-time training set from RDS labels (or --export-history)"),
    ):
        module.add_arguments(sub.add_parser(name, help=help_text))
        handlers[name] = module.run
    return parser, handlers


def main(argv: Sequence[str] | None = None) -> int:
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    return run_entry(lambda: handlers[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
