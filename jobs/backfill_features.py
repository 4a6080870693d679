"""spark-submit entry point of the backfill job (same flags as `featurestream backfill`).

    spark-submit --packages <see README> jobs/backfill_features.py --feature-group FILE --env aws \
        --from-files s3a://bucket/events --start 2026-11-01 --end 2026-12-01
"""

from __future__ import annotations

import sys

from featurestream.cli.commands import backfill
from featurestream.cli.entrypoint import run_command


def main(argv: list[str] | None = None) -> int:
    return run_command("backfill_features", backfill, argv)


if __name__ == "__main__":
    sys.exit(main())
