"""spark-submit entry point of the streaming feature job (same flags as `featurestream stream`).

    spark-submit --packages <see README> jobs/stream_features.py --feature-group FILE --env aws
"""

from __future__ import annotations

import sys

from featurestream.cli.commands import stream
from featurestream.cli.entrypoint import run_command


def main(argv: list[str] | None = None) -> int:
    return run_command("stream_features", stream, argv)


if __name__ == "__main__":
    sys.exit(main())
