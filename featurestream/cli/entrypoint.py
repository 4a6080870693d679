"""Exit-code contract of every entry point: 0 ok, 2 bad config/arguments, 1 failure."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from types import ModuleType

from featurestream.errors import ConfigError, FeatureStreamError

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


def run_entry(body: Callable[[], int | None]) -> int:
    """Run `body`; print a ConfigError as its one line and return 2, other failures return 1."""
    try:
        return body() or EXIT_OK
    except ConfigError as exc:
        print(f"featurestream: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except FeatureStreamError as exc:
        log.error("%s", exc)
        print(f"featurestream: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE


def run_command(prog: str, command: ModuleType, argv: list[str] | None = None) -> int:
    """The body of a spark-submit script: `command`'s flags (its add_arguments), then its run.

    `command` is a module of featurestream.cli.commands, so a job script and the CLI share flags and code.
    """
    parser = argparse.ArgumentParser(prog=prog, description=command.__doc__)
    command.add_arguments(parser)
    args = parser.parse_args(argv)
    return run_entry(lambda: command.run(args))
