"""`featurestream stream` and `spark-submit jobs/stream_features.py`: the same flags, the same code.

Around the queries of `featurestream.engine.pipeline`: the Prometheus endpoint and a query listener,
OpenLineage run events, graceful shutdown (SIGTERM/SIGINT or a stop file: the batch in flight
finishes, then the job ends; restart continues from the checkpoint), Kafka security options from
secrets, and the checks of what an existing checkpoint fixes. `--feature-group` may be repeated to
run several feature groups in one job: one Spark application, one query per source (the groups on
one topic share its read, see `featurestream.engine.pipeline`).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from featurestream import iceberg
from featurestream.cli.failures import kafka_data_loss, summarise_error
from featurestream.cli.job_session import job_session
from featurestream.cli.lineage_option import add_sagemaker_lineage_argument, sagemaker_lineage
from featurestream.cli.profile_option import add_env_argument, profile_name
from featurestream.config import load_feature_group, load_profile
from featurestream.config.feature_group import FeatureGroupSpec, KafkaSourceSpec, with_transport
from featurestream.config.loader import resolve_profile_path
from featurestream.config.profile import EnvironmentProfile
from featurestream.durations import parse_duration_ms
from featurestream.errors import ConfigError, DataLossError
from featurestream.io import paths
from featurestream.logs import configure_json_logging
from featurestream.ops import lineage as ol
from featurestream.ops.secrets import install_redactor, kafka_security_options

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from featurestream.iceberg import IcebergCatalog

log = logging.getLogger(__name__)

# Spark's interval words, and our own duration spelling (5s, 500ms) which we normalise.
_SPARK_INTERVAL = re.compile(r"^\s*(\d+)\s*(millisecond|second|minute|hour)s?\s*$", re.IGNORECASE)
_UNIT_MS = {"millisecond": 1, "second": 1_000, "minute": 60_000, "hour": 3_600_000}
# How often the supervising loop looks at the queries (and the stop file, at its own pace).
_TICK_S = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--feature-group", required=True, metavar="FILE", action="append", dest="feature_groups",
                        help="conf/feature_groups/<name>.yaml (repeat to run several groups in one job)")
    add_env_argument(parser)
    add_sagemaker_lineage_argument(parser)
    parser.add_argument("--source", choices=("kafka", "kinesis"), default=None,
                        help="read the group's events from this transport instead of the declared one "
                             "(the topic name is the stream name)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--available-now", action="store_true",
                      help="process what is in the topic now, then stop (backfills, tests)")
    mode.add_argument("--duration", type=float, metavar="SECONDS",
                      help="stop gracefully after this many seconds (demo); default: run until stopped")


def trigger_ms(text: str, profile_file: str) -> int:
    """`spark.trigger_interval` in ms: Spark's `5 seconds` or our `5s`; anything else is exit 2."""
    match = _SPARK_INTERVAL.match(text)
    if match:
        value = int(match.group(1)) * _UNIT_MS[match.group(2).lower()]
    else:
        try:
            value = parse_duration_ms(text)
        except ValueError:
            raise ConfigError(profile_file, "spark.trigger_interval",
                              f"{text!r} is not an interval (e.g. '10 seconds', '500 milliseconds', 10s)") from None
    if value <= 0:
        raise ConfigError(profile_file, "spark.trigger_interval", "must be greater than zero")
    return value


def prepare_profile(profile: EnvironmentProfile, profile_file: str) -> EnvironmentProfile:
    """The profile the queries run with: trigger normalised, Kafka security options resolved.

    Secret values are read here (environment or secret file) and masked in logs from now on;
    they live only in this in-memory copy, never in a file we write.
    """
    interval = f"{trigger_ms(profile.spark.trigger_interval, profile_file)} milliseconds"
    extra = kafka_security_options(profile.security, dict(profile.kafka.options), profile_file)
    # model_copy skips validation on purpose: the file may not carry secret keys, the job may.
    kafka = profile.kafka.model_copy(update={"options": {**profile.kafka.options, **extra}})
    spark = profile.spark.model_copy(update={"trigger_interval": interval})
    return profile.model_copy(update={"kafka": kafka, "spark": spark})


def _seconds(duration: str) -> float:
    return parse_duration_ms(duration) / 1000.0


def _session(profile: EnvironmentProfile, specs: list[FeatureGroupSpec],
             catalog: IcebergCatalog | None = None) -> tuple[SparkSession, bool]:
    """The job's session and whether we created it (then we also stop it)."""
    return job_session("featurestream-stream-" + "+".join(spec.name for spec in specs), profile,
                       (profile.checkpoint_root, profile.dlq_path),
                       with_aws_connector=profile.feature_store.sink == "sagemaker-connector", catalog=catalog)


def archive_catalog(specs: list[FeatureGroupSpec], profile: EnvironmentProfile,
                    profile_file: str) -> IcebergCatalog | None:
    """The catalog of the raw event archive when a group asks for one; checked now (exit 2), before Spark."""
    if not any(spec.archive for spec in specs):
        return None
    catalog = iceberg.from_profile(profile, profile_file)
    iceberg.spark_settings(catalog)  # reads the catalog password: a missing secret is a config error
    return catalog


def _datasets(specs: list[FeatureGroupSpec], profile: EnvironmentProfile) -> tuple[list[ol.DatasetRef],
                                                                                    list[ol.DatasetRef]]:
    inputs: dict[tuple[str, str], ol.DatasetRef] = {}
    outputs: list[ol.DatasetRef] = []
    account = ol.account_of(profile.feature_store.role_arn)
    for spec in specs:
        fields = tuple(spec.source.schema_.items())
        if isinstance(spec.source, KafkaSourceSpec):
            source = ol.kafka_topic(profile.kafka.bootstrap_servers, spec.source.topic, fields)
        else:
            source = ol.DatasetRef(f"kinesis://{profile.feature_store.region}", spec.source.stream, fields)
        inputs[(source.namespace, source.name)] = source
        features = [(name, "feature") for f in spec.features for name, _ in f.output_names()]
        outputs.append(ol.feature_group(spec.online_store.feature_group_name, profile.feature_store.region, account,
                                        [(spec.entity.key, "record identifier"),
                                         (spec.event_time.field, "event time"), *features]))
        outputs.append(ol.path_dataset(paths.join(profile.dlq_path, spec.name)))
    return list(inputs.values()), outputs


def _record_sagemaker(args: argparse.Namespace, specs: list[FeatureGroupSpec], profile: EnvironmentProfile,
                      sources: list[ol.DatasetRef], metrics: Any, catalog: IcebergCatalog | None) -> None:
    """Each group's source ContributedTo its stream action (one per group and definition), which
    Produced the feature group (its ARN and definition fingerprint) and, with `archive: true`, the
    raw event archive (`iceberg://<catalog>/<namespace>.<table>`). Once per start, before the
    queries: a warning when it fails, unless lineage.sagemaker.required."""
    from featurestream.config.fingerprint import fingerprint
    from featurestream.ops import sagemaker_lineage as sm

    recorder = sagemaker_lineage(args, profile.lineage, profile.feature_store.region)
    if recorder is None:
        return
    recorder.on_error = metrics.lineage_errors.inc
    for spec, source in zip(specs, _sources(specs, sources), strict=True):
        name, digest = spec.online_store.feature_group_name, fingerprint(spec)
        action = sm.Action(job="stream", subject=name, identity=digest, uri=f"featurestream://stream/{name}",
                           properties={"definition_fingerprint": digest})
        inputs = {"source": sm.dataset_artifact(source.namespace, source.name, sm.DATA_SOURCE)}
        archive = None
        if spec.archive and catalog is not None:
            from featurestream.engine.archive import source_table

            table = source_table(spec, profile, catalog)
            archive = sm.Artifact(uri=f"iceberg://{table.replace('.', '/', 1)}", type=sm.RAW_ARCHIVE,
                                  properties={"table": table})
        recorded = sm.record_run(
            recorder, action, partial(dict, inputs),
            partial(_group_artifact, recorder.client, name, digest, archive))
        if recorded is not None:
            log.info(json.dumps({"event": "sagemaker_lineage_recorded", "feature_group": name,
                                 **recorded.describe()}))


def _group_artifact(client: Any, name: str, digest: str, archive: Any = None) -> dict[str, Any]:
    from featurestream.ops import sagemaker_lineage as sm

    found = {"feature_group": sm.feature_group_artifact(client, name, digest)}
    return {**found, "raw_archive": archive} if archive is not None else found


def _sources(specs: list[FeatureGroupSpec], inputs: list[ol.DatasetRef]) -> list[ol.DatasetRef]:
    """Each spec's source dataset (`_datasets` lists a shared topic once)."""
    by_name = {(d.namespace, d.name): d for d in inputs}
    found = []
    for spec in specs:
        topic = spec.source.topic if isinstance(spec.source, KafkaSourceSpec) else spec.source.stream
        found.append(next(d for (_, n), d in by_name.items() if n == topic))
    return found


def _supervise(queries: list[Any], stop: Any, available_now: bool, duration_s: float | None) -> str:
    """Wait until the job should end; returns why: stop, finished, duration, failed or ended."""
    deadline = time.monotonic() + duration_s if duration_s else None
    while True:
        if stop.wait(_TICK_S):
            return "stop"
        ended = [q for q in queries if not q.isActive]
        if any(q.exception() is not None for q in ended):
            return "failed"
        if ended and not available_now:
            return "ended"  # a continuous query ended without an error: stop the others too
        if available_now and len(ended) == len(queries):
            return "finished"
        if deadline is not None and time.monotonic() >= deadline:
            return "duration"


def run(args: argparse.Namespace) -> int:
    configure_json_logging()
    install_redactor()
    # Everything that can be wrong with the configuration is found here, before Spark starts.
    specs = [load_feature_group(path) for path in args.feature_groups]
    if getattr(args, "source", None):
        specs = [with_transport(spec, args.source) for spec in specs]
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ConfigError("command line", "--feature-group", "the same feature group is given twice")
    args.env = profile_name(args.env)
    profile_file = str(resolve_profile_path(args.env))
    profile = prepare_profile(load_profile(args.env), profile_file)
    catalog = archive_catalog(specs, profile, profile_file)
    from featurestream.engine.pipeline import by_source, check_shared_source

    files = dict(zip(names, args.feature_groups, strict=True))
    for group in by_source(specs):
        check_shared_source(group, files)

    from featurestream.ops.metrics import job_metrics
    from featurestream.ops.server import start_metrics_server, write_textfile
    from featurestream.ops.shutdown import StopSignal

    metrics = job_metrics()
    metrics.freshness.window_s = _seconds(profile.metrics.freshness_window)
    stop = StopSignal(profile.shutdown.stop_file, poll_s=_seconds(profile.shutdown.poll_interval))
    stop.install()
    server = (start_metrics_server(metrics.registry, profile.metrics.host, profile.metrics.port)
              if profile.metrics.enabled else None)
    run_lineage = ol.LineageRun(
        profile.lineage, "stream." + "+".join(names), "STREAMING", on_error=metrics.lineage_errors.inc,
        properties={"profile": profile.name, "feature_groups": names, "checkpoint_root": profile.checkpoint_root,
                    "trigger_interval": profile.spark.trigger_interval,
                    "shuffle_partitions": profile.spark.shuffle_partitions},
    )
    try:
        return _run_queries(args, specs, profile, profile_file, stop, run_lineage, metrics, catalog)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            run_lineage.abort("interrupted")
            raise
        loss = _as_data_loss(exc)
        run_lineage.fail(loss or exc)
        if loss is not None and loss is not exc:
            raise loss from exc
        raise
    finally:
        stop.restore()
        if profile.metrics.textfile:
            write_textfile(metrics.registry, profile.metrics.textfile)
        if server is not None:
            server.stop()


def _archive_table(group: list[FeatureGroupSpec], profile: EnvironmentProfile,
                   catalog: IcebergCatalog | None) -> str | None:
    """The raw event archive table of a source's groups, if one of them asks for it."""
    from featurestream.engine.archive import source_table

    archived = [spec for spec in group if spec.archive]
    return source_table(archived[0], profile, catalog) if archived and catalog is not None else None


def _start_all(spark: SparkSession, specs: list[FeatureGroupSpec], profile: EnvironmentProfile,
               available_now: bool, stop: Any, metrics: Any, catalog: IcebergCatalog | None = None) -> list[Any]:
    """One query per source, whatever the number of groups reading it (its archive included)."""
    from featurestream.engine.pipeline import by_source, start_source_query

    queries: list[Any] = []
    for group in by_source(specs):
        if stop.requested:
            break
        started = start_source_query(spark, group, profile, available_now=available_now,
                                     archive_table=_archive_table(group, profile, catalog))
        queries += started.all()
        # Each group's running totals (dlq, late, duplicates, ...), labelled by group.
        for spec, totals in zip(started.specs, started.metrics, strict=True):
            metrics.watch_engine(f"{spec.name}-features", totals)
    return queries


def _first_error(queries: list[Any]) -> tuple[str, str] | None:
    for query in queries:
        error = query.exception()
        if error is not None:
            return str(query.name), summarise_error(str(error)) or type(error).__name__
    return None


def _data_loss(where: str, query: str | None = None) -> DataLossError:
    return DataLossError(
        f"stream: {f'query {query}: ' if query else ''}Kafka records were deleted before the job read them "
        f"({where}; retention or a deleted topic) and kafka.fail_on_data_loss is true; set it to false in the "
        "profile to skip them (they are logged and counted in featurestream_events_lost_total)")


def _check_data_loss(queries: list[Any]) -> None:
    """A query that failed because Kafka deleted unread records ends the job: no restart helps."""
    for query in queries:
        error = query.exception()
        where = kafka_data_loss(str(error)) if error is not None else None
        if where is not None:
            raise _data_loss(where, str(query.name))


def _as_data_loss(exc: BaseException) -> DataLossError | None:
    """The same failure when it surfaces as an exception of a Spark call (stopping a query, say)."""
    if isinstance(exc, DataLossError):
        return exc
    java = getattr(exc, "java_exception", None)
    try:
        text = f"{exc}\n{java.toString() if java is not None else ''}"
    except Exception:  # the JVM may be gone
        text = str(exc)
    where = kafka_data_loss(text)
    return _data_loss(where) if where is not None else None


def _shuffle_partitions(spark: SparkSession, profile: EnvironmentProfile, profile_file: str) -> tuple[int, str]:
    """The session's shuffle partitions and who set them: the profile, or spark-submit's --conf (which wins)."""
    value = int(spark.conf.get("spark.sql.shuffle.partitions") or profile.spark.shuffle_partitions)
    return value, profile_file if value == profile.spark.shuffle_partitions else "spark-submit --conf"


def _run_queries(args: argparse.Namespace, specs: list[FeatureGroupSpec], profile: EnvironmentProfile,
                 profile_file: str, stop: Any, run_lineage: ol.LineageRun, metrics: Any,
                 catalog: IcebergCatalog | None = None) -> int:
    from featurestream.engine.archive_switch import check_switch
    from featurestream.engine.pipeline import by_source, definition_dir, job_key, source_checkpoint
    from featurestream.io import hadoop_fs
    from featurestream.ops.checkpoint_layout import check_layout
    from featurestream.ops.checkpoints import check_fixed_settings
    from featurestream.ops.definitions import check_checkpoint_definition
    from featurestream.ops.listener import OpsListener, drain
    from featurestream.ops.recovery import RestartBudget
    from featurestream.ops.shutdown import stop_after_current_batch

    spark, owned = _session(profile, specs, catalog)
    stop.check_file_with(lambda uri: hadoop_fs.exists(spark, uri))
    listener = OpsListener(metrics)
    spark.streams.addListener(listener)
    recovery = profile.recovery
    budget = RestartBudget(recovery.max_restarts, _seconds(recovery.window), _seconds(recovery.backoff),
                           _seconds(recovery.backoff_max))
    timeout_s = _seconds(profile.shutdown.timeout)
    try:
        inputs, outputs = _datasets(specs, profile)
        run_lineage.start(inputs, outputs)
        _record_sagemaker(args, specs, profile, inputs, metrics, catalog)
        sources = by_source(specs)
        for group in sources:
            check_layout(spark, profile.checkpoint_root, profile.dlq_path, [spec.name for spec in group], profile_file)
            table = _archive_table(group, profile, catalog)
            if table is not None:  # the archive's own checkpoint of before, retired or exit 2
                check_switch(spark, profile, table, source_checkpoint(profile, group), profile_file)
        check_fixed_settings(spark, [paths.join(profile.checkpoint_root, job_key(group)) for group in sources],
                             *_shuffle_partitions(spark, profile, profile_file))
        # Every group's checkpoint against its definition before any query starts (exit 2 on a change).
        files = dict(zip([spec.name for spec in specs], args.feature_groups, strict=True))
        for group in sources:
            for spec in group:
                check_checkpoint_definition(spark, definition_dir(profile, group, spec), spec, files[spec.name])
        while True:
            queries = _start_all(spark, specs, profile, args.available_now, stop, metrics, catalog)
            log.info(json.dumps({"event": "stream_started", "feature_groups": [s.name for s in specs],
                                 "queries": [{"name": q.name, "id": str(q.id)} for q in queries],
                                 "lineage_run_id": run_lineage.run_id, "restarts": budget.used}))
            why = _supervise(queries, stop, args.available_now, args.duration) if queries else "stop"
            began = stop.requested_at or time.monotonic()
            stopped = stop_after_current_batch(queries, timeout_s)
            failure = _first_error(queries)
            if failure is None or stop.requested:
                break
            _check_data_loss(queries)
            wait = budget.next_wait(time.monotonic())
            log.error(json.dumps({"event": "query_failed", "query": failure[0], "error": failure[1],
                                  "restart_in_s": wait, "restarts_used": budget.used}))
            if wait is None or stop.wait(wait):
                break
            metrics.restarts.inc()
        metrics.shutdown_seconds.set(time.monotonic() - began)
        log.info(json.dumps({"event": "stream_ended", "why": why, "reason": stop.reason,
                             "graceful": all(s.graceful for s in stopped),
                             "failed": [failure[0]] if failure else [], "restarts": budget.used}))
        if failure is not None and not stop.requested:
            run_lineage.fail(f"query {failure[0]} failed: {failure[1]}")
            return 1
        if all(s.graceful for s in stopped):
            run_lineage.complete()
        else:
            run_lineage.abort("stopped before the batch in flight finished (it is replayed at the next start)")
        return 0
    finally:
        try:
            drain(spark)
            spark.streams.removeListener(listener)
        finally:
            if owned:
                spark.stop()
