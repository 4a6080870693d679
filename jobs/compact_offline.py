"""spark-submit entry point of the offline-store compaction (same flags as `featurestream compact`).

    spark-submit --packages org.apache.hadoop:hadoop-aws:3.3.4 jobs/compact_offline.py \
        --config conf/compaction/aws.yaml [--feature-group-name NAME] [--since 48h --until 2026-11-26]
"""

from __future__ import annotations

import sys

from featurestream.cli.commands import compact
from featurestream.cli.entrypoint import run_command


def main(argv: list[str] | None = None) -> int:
    return run_command("compact_offline", compact, argv)


if __name__ == "__main__":
    sys.exit(main())
