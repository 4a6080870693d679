"""Run one compaction in this process and SIGKILL it at a named phase (used by test_crash.py).

    python -m tests.compaction.crash_run '<json spec>'

`phase` "write" kills while Spark's write is under way, before Iceberg's commit: as soon as the
first new data file appears under `data/` (the run's ledger segment and `latest/` files are
written by then). Any other phase kills when the run reports that phase ("committed": right
after the commit, before snapshot expiry and the sweep).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import Any

from featurestream import iceberg
from featurestream.compaction import CompactionSettings, FeatureGroupTarget, TableRef, compact_feature_group
from featurestream.compaction.progress import Progress
from featurestream.compaction.schema import offline_schema
from featurestream.config import load_profile
from featurestream.config.profile import SparkSpec
from featurestream.connectors.offline_store import StoreUri, list_files
from featurestream.io.s3a import configure_session, endpoint_from_env
from featurestream.spark import local_session


def die() -> None:
    # The whole process group: the driver JVM is our child and would otherwise finish the job.
    os.killpg(os.getpgid(0), signal.SIGKILL)


def data_files(output: StoreUri) -> set[str]:
    try:
        return {str(f.uri) for f in list_files(output.join("data")) if f.uri.key.endswith(".parquet")}
    except OSError:
        return set()


def watch_for_new_data_files(output: StoreUri) -> None:
    before = data_files(output)

    def poll() -> None:
        while True:
            if data_files(output) - before:
                die()
            threading.Event().wait(0.005)

    threading.Thread(target=poll, daemon=True).start()


def main(spec: dict[str, Any]) -> None:
    output = StoreUri.parse(spec["output"])
    phase = spec["phase"]

    def hook(group: str, name: str, detail: str) -> None:
        if name == phase == "write":
            watch_for_new_data_files(output)
        elif name == phase:
            die()

    spark = local_session("compaction-crash", SparkSpec(master="local[1]", shuffle_partitions=2))
    if spec.get("bucket"):
        configure_session(spark, endpoint_from_env(), spec["settings"]["region"], [spec["bucket"]])
    from tests.compaction.conftest import renamed

    iceberg.configure_session(spark, renamed(iceberg.from_profile(load_profile("local")), spec["table"]["catalog"]))
    ref = TableRef(**{**spec["table"], "location": output})
    target = FeatureGroupTarget(spec["name"], StoreUri.parse(spec["source"]), output, "id", "ts",
                                offline_schema(spec["features"]), ref)
    compact_feature_group(spark, target, CompactionSettings(**spec["settings"]), Progress(hooks=[hook]))
    print("not killed", file=sys.stderr)
    sys.exit(3)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
