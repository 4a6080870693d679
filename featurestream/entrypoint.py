"""Exit-code contract of every entry point: 0 ok, 2 bad config/arguments, 1 failure."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

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
