"""Where the JVM jars are on this machine: Maven resolves them into `build/jars/` at set-up.

On a cluster the same Maven coordinates go to `spark-submit --packages` instead (README).
"""

from __future__ import annotations

import os
from pathlib import Path

# Must equal iceberg.version in conf/jars/pom.xml.
ICEBERG_VERSION = "1.12.0"

# Maven coordinates matching conf/jars/pom.xml, for `--packages` on a cluster. Clusters also get
# Iceberg's AWS bundle (the Glue catalog and S3FileIO of the `aws` profile's catalog, 69 MB):
# local runs use the JDBC catalog and S3A, and leave it out of their classpath.
CLUSTER_PACKAGES = (
    "org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.7",
    "org.apache.spark:spark-avro_2.12:3.5.7",
    "org.apache.hadoop:hadoop-aws:3.3.4",
    "org.postgresql:postgresql:42.7.14",
    f"org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:{ICEBERG_VERSION}",
    f"org.apache.iceberg:iceberg-aws-bundle:{ICEBERG_VERSION}",
)


# Our own JVM modules, as `make` builds them from the checkout (paths relative to its root).
ENGINE_JAR = Path("engine-jvm/target/featurestream-tiles.jar")
KINESIS_SOURCE_JAR = Path("connectors/kinesis-source/target/featurestream-kinesis-source.jar")
MODULE_JARS = (ENGINE_JAR, KINESIS_SOURCE_JAR)


def project_root() -> Path:
    """The checkout this package runs from (editable install), or FEATURESTREAM_HOME."""
    home = os.environ.get("FEATURESTREAM_HOME")
    return Path(home) if home else Path(__file__).resolve().parents[2]


def module_jar(relative: Path) -> Path:
    """One of MODULE_JARS in this checkout (it may not be built)."""
    return project_root() / relative


def spark_jars() -> list[str]:
    """Jars for `spark.jars` in local runs: Kafka source, S3A, JDBC driver, our JVM modules."""
    root = project_root()
    jars = sorted(str(p) for p in (root / "build" / "jars" / "spark").glob("*.jar"))
    for relative in MODULE_JARS:
        if (root / relative).is_file():
            jars.append(str(root / relative))
    return jars


def aws_connector_jars() -> list[str]:
    """The sagemaker-feature-store-pyspark jar for our pyspark, when that extra is installed."""
    try:
        import feature_store_pyspark
    except ImportError:
        return []
    return [str(p) for p in feature_store_pyspark.classpath_jars()]
