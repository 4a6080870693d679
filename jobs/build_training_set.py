"""spark-submit entry point that builds a training set (same flags as `featurestream training-set`).

    spark-submit --packages <see README> jobs/build_training_set.py --config FILE --env aws
"""

from __future__ import annotations

import sys

from featurestream.cli.commands import training_set
from featurestream.cli.entrypoint import run_command


def main(argv: list[str] | None = None) -> int:
    return run_command("build_training_set", training_set, argv)


if __name__ == "__main__":
    sys.exit(main())
