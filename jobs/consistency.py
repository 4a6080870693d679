"""spark-submit entry point of the consistency check (same flags as `featurestream consistency`).

    spark-submit --packages <see README> jobs/consistency.py --feature-group FILE --env aws \
        --from-files s3a://bucket/events --sample 1000 --report /tmp/consistency.html

Exit 0 within the thresholds, 3 when one is exceeded, 2 bad arguments, 1 the check could not run.
"""

from __future__ import annotations

import sys

from featurestream.cli.commands import consistency
from featurestream.cli.entrypoint import run_command


def main(argv: list[str] | None = None) -> int:
    return run_command("consistency", consistency, argv)


if __name__ == "__main__":
    sys.exit(main())
