"""Exit-code contract of every entry point: 0 ok, 2 bad config/arguments, 1 failure.

Whatever a command raises ends here as one line on stderr, `featurestream: <what>: <cause>` (a
config error: one line per mistake of the file), never a traceback unless `--debug` asks for it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable
from types import ModuleType

from featurestream.cli.failures import describe, first_line
from featurestream.cli.helptext import DocFormatter
from featurestream.errors import ConfigError, FeatureStreamError
from featurestream.ops.secrets import redact

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
DEBUG_HELP = "show the traceback of a failure (default: one line)"


def _say(line: str) -> None:
    # A driver's message may quote a URL with its credentials: masked before anyone sees it.
    line = redact(line)
    # Jobs log JSON lines: the failure goes there too. Without handlers logging's last resort
    # would print it a second time, so only when someone configured logging.
    if logging.getLogger().handlers:
        log.error("%s", line)
    print(line, file=sys.stderr)


def run_entry(body: Callable[[], int | None], what: str = "featurestream", debug: bool = False) -> int:
    """Run `body` (the command `what`); failures become one line and an exit code.

    2 for a ConfigError (each mistake of the file on its line), 1 for everything else: our own
    errors with their message, known families (AWS credentials and endpoints, Spark and py4j,
    Kafka, files) translated by featurestream.cli.failures, anything else by type and first line.
    """
    try:
        return body() or EXIT_OK
    except ConfigError as exc:
        if debug:
            traceback.print_exc()
        for problem in exc.problems:
            print(redact(f"featurestream: config error: {problem}"), file=sys.stderr)
        return EXIT_CONFIG
    except FeatureStreamError as exc:
        if debug:
            traceback.print_exc()
        _say(f"featurestream: {first_line(exc)}")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"featurestream: {what}: interrupted", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:
        if debug:
            traceback.print_exc()
        _say(f"featurestream: {what}: {describe(exc)}")
        return EXIT_FAILURE


def add_debug_flag(parser: argparse.ArgumentParser, *, default: object = False) -> None:
    parser.add_argument("--debug", action="store_true", default=default, help=DEBUG_HELP)


def run_command(prog: str, command: ModuleType, argv: list[str] | None = None) -> int:
    """The body of a spark-submit script: `command`'s flags (its add_arguments), then its run.

    `command` is a module of featurestream.cli.commands, so a job script and the CLI share flags and code.
    """
    parser = argparse.ArgumentParser(prog=prog, description=command.__doc__,
                                     formatter_class=DocFormatter)
    command.add_arguments(parser)
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    return run_entry(lambda: command.run(args), prog, debug=args.debug)
