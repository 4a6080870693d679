"""The UTC settings `configure_builder` adds, merged into the JVM options a job is given (no Spark
started: the builder's options are read back). tests/integration/test_time_zone.py runs the jobs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark import SparkContext
from pyspark.sql import SparkSession

from featurestream.config.profile import SparkSpec
from featurestream.spark import configure_builder, with_utc_zone

DRIVER, EXECUTOR = "spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions"


def test_the_zone_option_is_appended_and_replaces_another_zone() -> None:
    assert with_utc_zone(None) == "-Duser.timezone=UTC"
    assert with_utc_zone("") == "-Duser.timezone=UTC"
    kept = "-XX:+UseG1GC -XX:OnOutOfMemoryError='kill -9 %p'"
    assert with_utc_zone(kept) == f"{kept} -Duser.timezone=UTC"
    assert with_utc_zone(f"-Duser.timezone=America/New_York {kept}") == f"{kept} -Duser.timezone=UTC"
    assert with_utc_zone(f"{kept}  -Duser.timezone=Europe/Paris -Dx=1") == f"{kept} -Dx=1 -Duser.timezone=UTC"
    assert with_utc_zone(with_utc_zone(kept)) == with_utc_zone(kept)
    # Not a zone option, only a look-alike name.
    assert with_utc_zone("-Duser.timezoneX=1") == "-Duser.timezoneX=1 -Duser.timezone=UTC"


@pytest.fixture
def no_gateway(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """As before the JVM is launched: spark-defaults.conf is read from SPARK_CONF_DIR."""
    monkeypatch.setattr(SparkContext, "_jvm", None)
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    return tmp_path


def _options(spec: SparkSpec) -> dict[str, str]:
    builder = configure_builder(SparkSession.Builder(), spec)
    return {k: str(v) for k, v in builder._options.items()}


def test_profile_options_are_merged_not_replaced(no_gateway: Path) -> None:
    options = _options(SparkSpec(master="local[1]", conf={EXECUTOR: "-XX:+UseG1GC", "spark.executorEnv.TZ": "EST"}))
    assert options[EXECUTOR] == "-XX:+UseG1GC -Duser.timezone=UTC"
    assert options[DRIVER] == "-Duser.timezone=UTC"
    assert options["spark.executorEnv.TZ"] == "UTC"
    assert options["spark.sql.session.timeZone"] == "UTC"


def test_spark_defaults_options_are_merged(no_gateway: Path) -> None:
    (no_gateway / "spark-defaults.conf").write_text(
        "# cluster defaults\n"
        f"{EXECUTOR}   -verbose:gc -XX:OnOutOfMemoryError='kill -9 %p'\n"
        f"{DRIVER}=-Dold=1\n{DRIVER}=-Dnew=2 -Duser.timezone=Asia/Tokyo\n"
    )
    options = _options(SparkSpec(master="local[1]"))
    assert options[EXECUTOR] == "-verbose:gc -XX:OnOutOfMemoryError='kill -9 %p' -Duser.timezone=UTC"
    assert options[DRIVER] == "-Dnew=2 -Duser.timezone=UTC"


def test_local_sessions_name_the_file_system_without_forks(no_gateway: Path) -> None:
    from featurestream.io.jars import ENGINE_JAR, module_jar
    from featurestream.spark import LOCAL_FS_CLASS, LOCAL_FS_KEY

    jar = str(module_jar(ENGINE_JAR))
    (no_gateway / "spark-defaults.conf").write_text("spark.driver.extraClassPath /opt/site/extra.jar\n")
    options = _options(SparkSpec(master="local[1]"))
    assert options[LOCAL_FS_KEY] == LOCAL_FS_CLASS
    # On the JVM's own classpath, after the cluster's entry (spark-submit opens spark.jars first).
    assert options["spark.driver.extraClassPath"] == f"/opt/site/extra.jar:{jar}"
    # A class the profile names is kept, and nothing is added for it.
    mine = _options(SparkSpec(master="local[1]", conf={LOCAL_FS_KEY: "org.apache.hadoop.fs.LocalFileSystem"}))
    assert mine[LOCAL_FS_KEY] == "org.apache.hadoop.fs.LocalFileSystem"
    assert "spark.driver.extraClassPath" not in mine
    # Not for a cluster master.
    assert LOCAL_FS_KEY not in _options(SparkSpec(master="spark://10.0.0.1:7077"))

