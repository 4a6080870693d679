"""spark-submit entry point of the offline-store compaction (same flags as `featurestream compact`).

    spark-submit --packages org.apache.hadoop:hadoop-aws:3.3.4 jobs/compact_offline.py \
        --config conf/compaction/aws.yaml [--feature-group NAME] [--since 48h --until 2026-11-26]
"""

from __future__ import annotations

import argparse
import sys

from featurestream.commands import compact
from featurestream.entrypoint import run_entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="compact_offline", description=compact.__doc__)
    compact.add_arguments(parser)
    args = parser.parse_args(argv)
    return run_entry(lambda: compact.run(args))


if __name__ == "__main__":
    sys.exit(main())
