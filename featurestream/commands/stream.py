"""`featurestream stream` and `spark-submit jobs/stream_features.py`: the same flags, the same code."""

from __future__ import annotations

import argparse
import logging
import time

from featurestream.aggregation import single_window_ms
from featurestream.config import load_feature_group, load_profile
from featurestream.logs import configure_json_logging

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--feature-group", required=True, metavar="FILE",
                        help="conf/feature_groups/<name>.yaml")
    parser.add_argument("--env", default="local", metavar="PROFILE",
                        help="environment profile: a name in conf/environments or a path (default: local)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--available-now", action="store_true",
                      help="process what is in the topic now, then stop (backfills, tests)")
    mode.add_argument("--duration", type=float, metavar="SECONDS",
                      help="stop after this many seconds (demo); default: run until stopped")


def run(args: argparse.Namespace) -> int:
    configure_json_logging()
    # Everything that can be wrong with the configuration is found here, before Spark starts.
    spec = load_feature_group(args.feature_group)
    profile = load_profile(args.env)
    single_window_ms(spec)

    from featurestream.pipeline import start_stream
    from featurestream.spark import local_session

    spark = local_session(f"featurestream-stream-{spec.name}", profile.spark)
    queries = start_stream(spark, spec, profile, available_now=args.available_now)
    log.info('{"event": "stream_started", "feature_group": "%s", "queries": ["%s", "%s"]}',
             spec.name, queries.features.id, queries.dlq.id)
    try:
        if args.available_now:
            for query in queries.all():
                query.awaitTermination()
        elif args.duration:
            deadline = time.monotonic() + args.duration
            for query in queries.all():
                query.awaitTermination(max(0.0, deadline - time.monotonic()))
        else:
            spark.streams.awaitAnyTermination()
    finally:
        for query in queries.all():
            if query.isActive:
                query.stop()
    for query in queries.all():
        if query.exception() is not None:
            log.error("query %s failed: %s", query.name, query.exception())
            return 1
    return 0
