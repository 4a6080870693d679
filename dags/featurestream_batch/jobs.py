"""The batch jobs the DAGs can schedule: one entry per job, the same names as the CLI and jobs/.

A new job is one more entry here and one more DAG built from it: see how `featurestream_local.py`
and `featurestream_aws.py` build theirs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchJob:
    # The `featurestream` subcommand (`featurestream compact ...`).
    command: str
    # Its spark-submit entry point under jobs/ (`make dist` ships them in build/dist/jobs/).
    script: str
    # Maven coordinates it needs on a cluster beyond the cluster's Spark (--packages).
    packages: tuple[str, ...] = ()
    # Our own jars it needs (--jars; from `make dist`'s jars/).
    jars: tuple[str, ...] = ()


# Must equal the versions in featurestream.io.jars.CLUSTER_PACKAGES (tests/unit/test_dag_jobs.py).
JDBC_DRIVER = ("org.postgresql:postgresql:42.7.14",)
# Every batch job may read or write an Iceberg table: `compact` writes its compacted tables, the
# others read (`training-set`, `consistency`) or write (`backfill`) Iceberg-format feature groups,
# and the `aws` profile's catalog is Glue with S3FileIO (the AWS bundle).
ICEBERG = ("org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.12.0", "org.apache.iceberg:iceberg-aws-bundle:1.12.0")

COMPACT = BatchJob("compact", "compact_offline.py", packages=ICEBERG)
TRAINING_SET = BatchJob("training-set", "build_training_set.py",
                        packages=JDBC_DRIVER + ICEBERG, jars=("featurestream-tiles.jar",))
# The JDBC driver for `--from-jdbc-url`; the tile engine computes the features.
BACKFILL = BatchJob("backfill", "backfill_features.py",
                    packages=JDBC_DRIVER + ICEBERG, jars=("featurestream-tiles.jar",))
# Recomputes with the backfill's engine (the tile engine); JDBC for `--from-jdbc-url`.
CONSISTENCY = BatchJob("consistency", "consistency.py",
                       packages=JDBC_DRIVER + ICEBERG, jars=("featurestream-tiles.jar",))
JOBS = (COMPACT, TRAINING_SET, BACKFILL, CONSISTENCY)
