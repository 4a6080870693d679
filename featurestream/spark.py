"""SparkSession set-up. Library code adjusts a Builder; nobody builds a session at import time.

Every process of a job computes in UTC, whatever the machine's zone: Spark SQL through
`spark.sql.session.timeZone`; the driver and executor JVMs through `-Duser.timezone=UTC`, merged
into the JVM options the job was given; the driver JVM once more at run time (`start_session`),
because under spark-submit it is running before our code is; the executors' Python workers
through `TZ=UTC`. The JVM's default zone is not cosmetic: the JDBC drivers read a
`timestamp without time zone` value as a wall-clock time in it (labels from RDS moved by the
machine's UTC offset until this was set).

Under spark-submit the launch decides where the job runs: its master, deploy mode and (when given)
shuffle partitions win over the profile's (see `submitted_settings`). Only a session this process
launches on a local master gets the loopback settings, `SPARK_LOCAL_IP` and, unless the user chose
one, this interpreter for the Python workers.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from featurestream.config.profile import SparkSpec
from featurestream.io.jars import ENGINE_JAR, aws_connector_jars, module_jar, spark_jars

log = logging.getLogger(__name__)

UTC_JAVA_OPTION = "-Duser.timezone=UTC"
JAVA_OPTION_KEYS = ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions")
_ZONE_OPTION = re.compile(r"(?:^|\s+)(-Duser\.timezone=\S*)")
# A spark-defaults.conf line (java.util.Properties): key, then `=`, `:` or blanks, then the value.
_PROPERTY = re.compile(r"^\s*([^\s=:#!][^\s=:]*)\s*[=:\s]\s*(.*)$")
# What spark-submit decides over a profile: where the job runs, and the partitions when given.
SUBMIT_WINS = ("spark.master", "spark.submit.deployMode", "spark.sql.shuffle.partitions")
# Settings that only mean something when a JVM is launched, never in a running one.
_LAUNCH_ONLY = ("spark.master", "spark.submit.deployMode")


def submitted_settings() -> dict[str, str] | None:
    """The Spark settings spark-submit started this process with, or None when it did not.

    spark-submit (any master and deploy mode; also EMR steps and a Kubernetes driver pod) starts
    the driver JVM first, then this Python process with PYSPARK_GATEWAY_PORT set: the variable
    pyspark itself takes to mean "the JVM exists, do not launch one". That JVM carries the
    launch's settings as system properties: `--master` as spark.master (local[*] when not given),
    `--deploy-mode` as spark.submit.deployMode, every `--conf` and spark-defaults.conf.
    """
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        return None
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()
    return {str(key): str(value) for key, value in SparkConf().getAll()}


def submitted_master() -> str | None:
    """spark-submit's master (`--master`, else spark-submit's default), or None outside spark-submit."""
    settings = submitted_settings()
    return None if settings is None else settings.get("spark.master", "local[*]")


def _is_local(master: str | None) -> bool:
    return bool(master) and str(master).startswith("local")


def with_utc_zone(options: str | None) -> str:
    """`options` with `-Duser.timezone=UTC` at the end and any other unquoted -Duser.timezone dropped.

    Everything else is kept verbatim, quoting included. The JVM takes the last -D of a name, so ours
    also wins over a zone option hidden in quotes.
    """
    given = options or ""
    others = [m for m in _ZONE_OPTION.findall(given) if m != UTC_JAVA_OPTION]
    if others:
        log.warning("JVM options: %s replaced by %s (the jobs compute in UTC)", " ".join(others), UTC_JAVA_OPTION)
    return f"{_ZONE_OPTION.sub('', given).strip()} {UTC_JAVA_OPTION}".strip()


def _launch_setting(key: str) -> str | None:
    """The value `key` has where Spark will look for it if the builder did not set it.

    Under spark-submit (or with a gateway already up) the JVM carries spark-submit's --conf and
    spark-defaults.conf as system properties; otherwise the gateway we are about to launch reads
    spark-defaults.conf itself. Setting the key on the builder replaces that value, so it is read
    here and merged, not dropped (clusters put GC and OOM options there).
    """
    from pyspark import SparkContext

    if SparkContext._jvm is not None or "PYSPARK_GATEWAY_PORT" in os.environ:
        SparkContext._ensure_initialized()
        assert SparkContext._jvm is not None
        value = SparkContext._jvm.java.lang.System.getProperty(key)
        return None if value is None else str(value)
    conf_dir = os.environ.get("SPARK_CONF_DIR")
    if not conf_dir:
        import pyspark

        conf_dir = str(Path(os.environ.get("SPARK_HOME") or Path(pyspark.__file__).parent) / "conf")
    defaults = Path(conf_dir) / "spark-defaults.conf"
    if not defaults.is_file():
        return None
    found = None
    for line in defaults.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _PROPERTY.match(line)
        if match and match.group(1) == key:
            found = match.group(2).strip()  # java.util.Properties: the last one wins
    return found


def configure_builder(
    builder: SparkSession.Builder,
    spark: SparkSpec,
    *,
    with_aws_connector: bool = False,
) -> SparkSession.Builder:
    """Apply a profile's Spark settings, the UTC settings and the local jars to `builder`.

    `master` is left alone when the profile has none, and under spark-submit, whose master, deploy
    mode, `--conf spark.sql.shuffle.partitions` and jars win over the profile and the checkout (a
    profile's `local[2]` must not pull a job submitted to YARN onto its driver).
    """
    submitted = submitted_settings()
    master = spark.master if submitted is None else submitted.get("spark.master")
    if submitted is None and spark.master:
        builder = builder.master(spark.master)
    # Under spark-submit its --jars and --packages are the classpath: jars set here would replace
    # them for the executors and never reach the driver's JVM, which is already running.
    jars = [] if submitted is not None else spark_jars() + (aws_connector_jars() if with_aws_connector else [])
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    settings = {
        "spark.sql.shuffle.partitions": str(spark.shuffle_partitions),
        # Event times are UTC end to end; the online record's EventTime is written with a `Z`.
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.streaming.stateStore.providerClass":
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
        # Each batch uploads the state's changes, not new SST files; snapshots are made in the
        # background. Much less checkpoint I/O for a job that runs for months, on s3a:// above all.
        "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
        # Plans and errors print source options; Kafka SASL/SSL secrets must not be among them.
        "spark.sql.redaction.options.regex": "(?i)url|password|secret|token|jaas|credential|key",
    }
    launching_local = submitted is None and _is_local(master)
    if launching_local:
        settings.update({
            "spark.ui.enabled": "false",
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.sql.adaptive.enabled": "false",
        })
    settings.update(spark.conf)
    if submitted is not None:
        _drop_what_submit_decides(settings, submitted)
    # The JVMs' default zone (see the module doc). The executors' options reach them whenever the
    # SparkContext starts after this (also under spark-submit, any deploy mode); the driver's
    # options only when the builder launches the JVM: start_session covers the other case.
    already = getattr(builder, "_options", {})
    for key in JAVA_OPTION_KEYS:
        given = settings.get(key, already.get(key))
        settings[key] = with_utc_zone(given if given is not None else _launch_setting(key))
    # Python workers: pyspark's non-Arrow conversions of timestamps use the process's local zone.
    settings["spark.executorEnv.TZ"] = "UTC"
    if launching_local:
        _local_files_without_forks(settings, already)
    for key, value in settings.items():
        builder = builder.config(key, value)
    if launching_local:
        # Loopback only where we launch a local JVM: on a cluster node (a Kubernetes driver pod
        # above all) the driver must advertise an address its executors can reach.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        key = "spark.pyspark.python"
        _python_for_workers(settings.get(key) or already.get(key) or _launch_setting(key))
    return builder


def _drop_what_submit_decides(settings: dict[str, str], submitted: dict[str, str]) -> None:
    """Leave spark-submit's master, deploy mode and given shuffle partitions in force (logged)."""
    for key in SUBMIT_WINS:
        ours = settings.get(key)
        if ours is None or (key not in _LAUNCH_ONLY and key not in submitted):
            continue
        del settings[key]
        theirs = submitted.get(key)
        if theirs is not None and theirs != ours:
            log.info("%s: spark-submit's %s wins over the profile's %s", key, theirs, ours)


def _python_for_workers(configured: object) -> None:
    """The local workers' Python: the user's choice, else this interpreter.

    pyspark starts its workers with PYSPARK_PYTHON, read once when the SparkContext starts
    (`spark.pyspark.python` is only read by spark-submit), defaulting to `python3` from PATH: run
    as `.venv/bin/featurestream` without an activated venv, that is a Python without pyspark or
    featurestream and every Python task dies with ModuleNotFoundError.
    """
    if "PYSPARK_PYTHON" not in os.environ:
        os.environ["PYSPARK_PYTHON"] = str(configured) if configured else sys.executable


# The local file system (scheme `file`) of local sessions: Hadoop's, with permissions set in the
# JVM instead of by a `chmod` process per file and folder (engine-jvm, io.featurestream.fs).
LOCAL_FS_KEY, LOCAL_FS_CLASS = "spark.hadoop.fs.file.impl", "io.featurestream.fs.NioLocalFileSystem"
_DRIVER_CLASSPATH = "spark.driver.extraClassPath"


def _local_files_without_forks(settings: dict[str, str], already: dict[str, Any]) -> None:
    """Name NioLocalFileSystem for `file` paths when this builder launches the driver's JVM.

    Without Hadoop's native library (pyspark ships none) Hadoop's local file system forks `chmod`
    for every file and folder it creates: ~9 processes for a one-file Parquet write, a third of its
    time (bench-free measure: 79 vs 123 ms a write, same session). The class must be on the
    JVM's own classpath (`spark.driver.extraClassPath`): spark-submit opens `spark.jars` with the
    file system before it loads them. A class the profile or spark-defaults names is kept; so is
    Hadoop's when a JVM already runs (its classpath is fixed) or the engine jar is not built.
    """
    from pyspark import SparkContext

    jar = module_jar(ENGINE_JAR)
    if (LOCAL_FS_KEY in settings or LOCAL_FS_KEY in already or _launch_setting(LOCAL_FS_KEY) is not None
            or SparkContext._jvm is not None or "PYSPARK_GATEWAY_PORT" in os.environ or not jar.is_file()):
        return
    given = settings.get(_DRIVER_CLASSPATH) or already.get(_DRIVER_CLASSPATH) or _launch_setting(_DRIVER_CLASSPATH)
    settings[_DRIVER_CLASSPATH] = os.pathsep.join([*([str(given)] if given else []), str(jar)])
    settings[LOCAL_FS_KEY] = LOCAL_FS_CLASS


def start_session(builder: SparkSession.Builder) -> SparkSession:
    """`builder.getOrCreate()`, with the driver JVM's default zone set to UTC.

    Under spark-submit the driver JVM started before the job, with the machine's zone unless it
    was given -Duser.timezone=UTC at launch; in local mode it also runs the tasks (the JDBC reads
    among them). Setting the default here is early enough: nothing has read data yet.

    The Python driver's own TZ is left alone: our code never turns a timestamp into local time on
    the Python side (times cross py4j as unix micros or aware datetimes, Arrow uses the session
    zone), and the process's zone is the user's, for their logs and terminal.
    """
    session = builder.getOrCreate()
    jvm = session.sparkContext._jvm
    assert jvm is not None
    jvm.java.util.TimeZone.setDefault(jvm.java.util.TimeZone.getTimeZone("UTC"))
    jvm.java.lang.System.setProperty("user.timezone", "UTC")
    return session


def local_session(app_name: str, spark: SparkSpec | None = None, *, with_aws_connector: bool = False) -> SparkSession:
    builder = configure_builder(SparkSession.builder.appName(app_name), spark or SparkSpec(),
                                with_aws_connector=with_aws_connector)
    session = start_session(builder)
    session.sparkContext.setLogLevel("WARN")
    return session
