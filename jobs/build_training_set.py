"""spark-submit entry point that builds a training set (same flags as `featurestream training-set`).

    spark-submit --packages <see README> jobs/build_training_set.py --config FILE --env aws
"""

from __future__ import annotations

import argparse
import sys

from featurestream.commands import training_set
from featurestream.entrypoint import run_entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build_training_set")
    training_set.add_arguments(parser)
    args = parser.parse_args(argv)
    return run_entry(lambda: training_set.run(args))


if __name__ == "__main__":
    sys.exit(main())
