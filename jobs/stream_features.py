"""spark-submit entry point of the streaming feature job (same flags as `featurestream stream`).

    spark-submit --packages <see README> jobs/stream_features.py --feature-group FILE --env aws
"""

from __future__ import annotations

import argparse
import sys

from featurestream.commands import stream
from featurestream.entrypoint import run_entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stream_features")
    stream.add_arguments(parser)
    args = parser.parse_args(argv)
    return run_entry(lambda: stream.run(args))


if __name__ == "__main__":
    sys.exit(main())
