"""`python -m featurestream.dev.feature_store [--host ..] [--port ..] [--state-dir ..] ...`"""

from __future__ import annotations

import logging
import sys

from featurestream.dev.feature_store.app import run
from featurestream.dev.feature_store.config import ConfigError, parse_args
from featurestream.errors import ConfigError as ProfileError


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = parse_args(argv)
    except ConfigError as exc:
        print(f"feature store emulator: {exc}", file=sys.stderr)
        return 2
    try:
        run(config)
    except ProfileError as exc:  # --catalog-profile: the profile or its catalog section is wrong
        print(f"feature store emulator: config error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        logging.getLogger("featurestream.dev.feature_store").error("cannot start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
